"""Smoke tests of the scripts that regenerate the reported LRR numbers."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest
import scipy.io

from lrrjax import metrics, synthetic

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[1] / "experiments"


def _script(name):
  spec = importlib.util.spec_from_file_location(f"lrrjax_script_{name}", EXPERIMENTS / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope="module")
def data(tmp_path_factory):
  folder = tmp_path_factory.mktemp("scenes")
  scene = synthetic.make_scene(24, 24, 20, n_targets=6, seed=2)
  scipy.io.savemat(folder / "tiny.mat", {"data": scene.cube, "map": scene.gt.astype(np.uint8)})
  return folder


def test_ablation_script_writes_table_and_auc_curve(data, tmp_path):
  out = tmp_path / "abl"
  _script("lrr_ablation").main(["--out", str(out), "--data-dir", str(data),
                                "--variants", "admm10-robust,T5"])
  records = json.loads((out / "ablation.json").read_text())["records"]
  assert [r["variant"] for r in records] == ["admm10-robust", "T5"]
  assert records[0]["steps"] == 0 and len(records[0]["auc_by_step"]) == 1
  assert len(records[1]["auc_by_step"]) == records[1]["steps"] + 1
  table = (out / "ablation.md").read_text()
  assert "| tiny |" in table and f"{records[1]['auc_df']:.4f}" in table
  assert (out / "auc_vs_step.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_convergence_script_untrained_equals_admm(data, tmp_path):
  out = tmp_path / "conv"
  _script("convergence").main(["--scene", "tiny", "--iters", "20", "--out", str(out),
                               "--data-dir", str(data)])
  res = json.loads((out / "convergence.json").read_text())
  curves = res["curves"]
  untrained = curves["LRR-Net+ (untrained)"]["rel_error"]
  admm = curves["LRR ADMM (model-based)"]["rel_error"]
  assert len(untrained) == res["stages"] and len(admm) == 20
  # rel_error is ||X - D L - S|| / ||X||: below ~1e-4 the two float32 paths (one
  # lax.scan vs jitted stages) round the column norms differently, hence atol
  np.testing.assert_allclose(untrained, admm[:res["stages"]], rtol=1e-3, atol=1e-6)
  assert res["provenance"]["config"]["train"]["loss"] == "distill"


def test_timing_script_reports_compile_and_run(data, tmp_path):
  out = tmp_path / "timing.json"
  _script("timing").main(["--out", str(out), "--scenes", "tiny", "--repeats", "1",
                          "--data-dir", str(data)])
  rec = json.loads(out.read_text())["records"][0]
  assert rec["median_train_detect_s"] > 0 and rec["median_detect_trained_s"] > 0
  assert 0.0 <= rec["auc_df"] <= 1.0 and rec["max_rss_gib"] > 0


def test_sweep_script_writes_model_and_score_variants(data, tmp_path):
  out = tmp_path / "sweep"
  _script("lrr_sweep").main(["--out", str(out), "--data-dir", str(data), "--iters", "20",
                             "--models", "default,beta0.1"])
  records = json.loads((out / "sweep.json").read_text())["records"]
  variants = [r["variant"] for r in records]
  assert variants == ["default", "rx-residual", "whitened-residual", "mean3x3", "beta0.1"]
  assert all(0.0 <= r["auc_df"] <= 1.0 for r in records)
  fa = records[0]["false_alarms"]
  gt = synthetic.make_scene(24, 24, 20, n_targets=6, seed=2).gt
  assert fa["anomaly_pixels"] == int(gt.sum())
  assert 0 < fa["largest_block"] <= fa["background_above_p99"]
  assert 0 <= fa["anomaly_above_p99"] <= fa["anomaly_pixels"]
  table = (out / "sweep.md").read_text()
  best = max(r["auc_df"] for r in records if r["variant"] in ("default", "beta0.1"))
  assert "| tiny |" in table and table.splitlines()[2].endswith(f"| {best:.4f} |")


def test_false_alarm_profile_counts_blocks_and_targets():
  scores = np.random.default_rng(0).random((20, 20))   # background in [0, 1)
  scores[0, 0:3] = 5.0              # a 3-pixel bright background block
  scores[15, 15] = 4.0              # one isolated bright background pixel
  labels = np.zeros((20, 20), bool)
  labels[10, 10] = labels[10, 11] = True
  scores[10, 10], scores[10, 11] = 4.5, 0.5   # one target above the background's p99, one not
  fa = _script("lrr_sweep").false_alarm_profile(scores.ravel(), labels.ravel(), 20, 20)
  # 398 background pixels: the 4 bright ones are the top 1%, p99 falls just below them
  assert 1.0 < fa["background_p99"] < 4.0
  assert fa["background_above_p99"] == 4 and fa["largest_block"] == 3
  assert fa["anomaly_pixels"] == 2 and fa["anomaly_above_p99"] == 1
  assert fa["anomaly_median"] == 2.5


def test_kernel_variants_agree_with_the_shipped_strip(tmp_path):
  """The timed alternatives compute the shipped values (the version-1 (B, n) Y1
  form of the stages to float32 rounding, the box sums to summation order); no
  timing is checked."""
  cube = tmp_path / "cube.npy"
  np.save(cube, synthetic.make_scene(40, 48, 20, n_targets=4, seed=3).cube)
  out = tmp_path / "kv.json"
  _script("kernel_variants").main(["--out", str(out), "--cube", str(cube), "--rows", "16",
                                   "--repeats", "1"])
  rec = json.loads(out.read_text())["record"]
  assert rec["pixels"] == 16 * 48
  assert set(rec["stages_gflops"]) == {"shipped", "shipped_2048", "y1_form_2048",
                                       "shipped_norms", "matmul_skeleton"}
  assert set(rec["stages_max_rel_diff"]) == {"shipped_2048", "y1_form_2048"}
  assert all(d < 1e-4 for d in rec["stages_max_rel_diff"].values())
  scale = rec["residual_std"] * 19 * 19
  assert rec["box_max_abs_diff"]["shifted_slices"] <= 1e-5 * scale
  assert rec["box_max_abs_diff"]["nested_slices"] <= 1e-5 * scale
  assert rec["box_max_abs_diff"]["summed_area"] <= 1e-3 * scale
  assert rec["ratio_strip_shipped"] > 0 and len(rec["matmul_gflops_around"]) == 2


def test_low_far_script_partial_auc_and_pd(data, tmp_path):
  """Partial AUC over FAR <= 1e-2 against a hand count, and the script's record."""
  low = _script("low_far")
  labels = np.zeros(1000, bool)
  labels[:10] = True
  perfect = np.where(labels, 2.0, np.linspace(0, 1, 1000))
  assert metrics.partial_auc_df(perfect, labels) == pytest.approx(1.0)
  # half the targets above every background pixel, half below all of them
  half = np.where(labels, 0.0, np.linspace(0.1, 1, 1000))
  half[:5] = 2.0
  assert metrics.partial_auc_df(half, labels) == pytest.approx(0.5)
  rec = low.scene_record(half.reshape(20, 50), labels.reshape(20, 50))
  assert rec["pd_at_far_0.01"] == pytest.approx(0.5) and rec["pd_at_far_0.001"] == pytest.approx(0.5)
  out = tmp_path / "low.json"
  low.main(["--out", str(out), "--data", str(data), "--methods", "grx"])
  got = json.loads(out.read_text())
  assert [r["scene"] for r in got["records"]] == ["tiny"]
  assert 0.0 <= got["mean"]["grx"]["partial_auc_1e-2"] <= 1.0


def test_false_alarm_script_splits_the_score_into_features(data, tmp_path):
  """The weighted contributions add up to the head's score (it is linear), and
  the top background share is counted over background pixels only."""
  out = tmp_path / "fa.json"
  _script("false_alarms").main(["--out", str(out), "--data", str(data), "--scenes", "tiny",
                                "--top", "0.05"])
  got = json.loads(out.read_text())
  rec = got["records"][0]
  assert rec["scene"] == "tiny" and rec["shape"] == [24, 24]
  n_bg = 24 * 24 - rec["targets"]
  assert rec["top_background_pixels"] == round(0.05 * n_bg)
  assert sum(rec["contribution_targets"]) == pytest.approx(rec["mean_score_targets"], rel=1e-4)
  assert sum(rec["contribution_top_background"]) == pytest.approx(
      rec["mean_score_top_background"], rel=1e-4)
  assert 0.0 <= rec["top_background_near_border"] <= 1.0
  assert rec["image_near_border"] == pytest.approx(1 - (18 / 24) ** 2)


def test_compile_profile_reports_both_programs(data, tmp_path):
  """One cold run (a child process) of the default: both programs compiled,
  kernels counted, the collector's seconds and the warm time recorded."""
  out = tmp_path / "cp.json"
  _script("compile_profile").main(["--out", str(out), "--data", str(data), "--scene", "tiny",
                                   "--rounds", "1", "--variants", "default"])
  got = json.loads(out.read_text())
  run = got["runs"]["default"][0]
  assert "error" not in run, run
  for prog in ("scene_base", "network"):
    assert run[prog]["kernels"] > 10 and run[prog]["compile_s"] > 0
  assert run["gc_s_load_to_first_scores"] >= 0 and run["warm_median_s"] > 0
  assert run["host_dictionary_s"] > 0
  assert got["medians"]["default"]["kernels"] == [run["scene_base"]["kernels"],
                                                  run["network"]["kernels"]]


def test_compile_profile_parts_compiles_every_piece(data, tmp_path):
  """``--parts`` (one child process): every piece is traced and compiled anew
  (none is served from a jit cache filled earlier in the child)."""
  out = tmp_path / "parts.json"
  _script("compile_profile").main(["--parts", "--out", str(out), "--data", str(data),
                                   "--scene", "tiny", "--rounds", "1"])
  got = json.loads(out.read_text())
  assert got["parts"] and len(got["runs"]) == 1
  assert {"scene_context", "network", "network: ten stages",
          "scene: dictionary selection, traced twin"} <= set(got["medians"])
  for name, med in got["medians"].items():
    assert med["compile_s"] > 0.005 and med["lower_s"] > 0, name


def test_border_candidate_counts_border_components_as_large():
  """The ``border`` ablation's opening: a small bright blob touching the
  border leaves no top-hat, the same blob inside the image keeps it."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import area  # pylint: disable=import-outside-toplevel
  f = np.zeros((20, 20), np.float32)
  f[0:3, 5:8] = 2.0
  f[10:13, 10:13] = 2.0
  t = area._ladder(tuple(k / 16 for k in range(65)))  # pylint: disable=protected-access
  opening = area._openings_desc  # pylint: disable=protected-access
  plain = f - np.asarray(opening(jnp.asarray(f), (25,), t)[0])
  _script("head_features").patch_border()
  try:
    border = f - np.asarray(area._openings_desc(jnp.asarray(f), (25,), t)[0])  # pylint: disable=protected-access
  finally:
    area._openings_desc = opening  # pylint: disable=protected-access
  assert plain[1, 6] == 2.0 and plain[11, 11] == 2.0
  assert border[1, 6] == 0.0 and border[11, 11] == 2.0
  np.testing.assert_array_equal(border[5:, :], plain[5:, :])
