"""Benchmark suite: determinism, bad input, inpainting, implantation, stratified
scoring, the benchmark hook and the training guard."""

import json
import re

import numpy as np
import pytest
import scipy.io

from lrrjax import benchmark, cli, io, metrics, suite
from lrrjax.errors import ConfigError, SceneError
from lrrjax.suite import background, implant, largescene, make, stratified
from lrrjax.suite import manifest as mf


def _toy_scene(seed, h=50, w=50, bands=20):
  """A smooth two-material background with two bright labelled blobs."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:h, :w] / max(h, w)
  e = rng.uniform(200, 800, size=(2, bands))
  a = (0.5 + 0.4 * np.sin(3 * yy + seed))[..., None]
  cube = a * e[0] + (1 - a) * e[1] + rng.normal(0, 5, (h, w, bands))
  gt = np.zeros((h, w), np.uint8)
  for r, c, s in ((10, 12, 3), (30 + seed % 5, 35, 2)):
    cube[r:r + s, c:c + s] = 3000 + 100 * rng.random(bands)
    gt[r:r + s, c:c + s] = 1
  return cube.astype(np.float32), gt


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp("toy")
  for i, name in enumerate(("toy-a", "toy-b", "toy-c")):
    cube, gt = _toy_scene(i)
    scipy.io.savemat(d / f"{name}.mat", {"data": cube, "map": gt})
  cube, gt = _toy_scene(7, bands=21)  # alone in its band set: cannot host
  scipy.io.savemat(d / "odd-x.mat", {"data": cube, "map": gt})
  return d


@pytest.fixture(scope="module")
def toy_suite(toy_dir, tmp_path_factory):
  out = tmp_path_factory.mktemp("suites") / "s0"
  return out, make.make_suite(out, toy_dir, seed=3, size="small")


def _bytes(folder):
  return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
          if p.name != "provenance.json"}


def test_same_seed_same_bytes(toy_dir, toy_suite, tmp_path):
  out, manifest = toy_suite
  again = make.make_suite(tmp_path / "again", toy_dir, seed=3, size="small")
  assert _bytes(out) == _bytes(tmp_path / "again")
  assert again == manifest
  other = make.make_suite(tmp_path / "other", toy_dir, seed=4, size="small")
  assert other["scenes"][0]["sha256"] != manifest["scenes"][0]["sha256"]


def test_manifest_describes_files(toy_dir, toy_suite):
  out, manifest = toy_suite
  assert manifest["version"] == mf.VERSION
  assert manifest["training"]["allowed"] is False
  assert [e["name"] for e in manifest["excluded"]] == ["odd-x"]
  assert "21 bands" in manifest["excluded"][0]["reason"]
  files = [r["file"] for r in manifest["scenes"]]
  assert files == ["bg-toy-a-v0.mat", "bg-toy-b-v0.mat", "bg-toy-c-v0.mat",
                   "synthetic-128x128x100.mat"]
  assert mf.verify(out) == manifest
  for rec in manifest["scenes"]:
    scene = io.load_scene(out / rec["file"])
    assert mf.sha256_file(out / rec["file"]) == rec["sha256"]
    want = np.zeros(scene.gt.shape, bool)
    for t in rec["targets"]:
      s = t["size"]
      assert not want[t["row"]:t["row"] + s, t["col"]:t["col"] + s].any()
      want[t["row"]:t["row"] + s, t["col"]:t["col"] + s] = True
      if rec["kind"] == "real-background":
        host = rec["background"]["source"]
        assert t["spectrum"]["scene"] != host  # transplanted from another scene
        assert t["spectrum"]["scene"].startswith("toy-")
    np.testing.assert_array_equal(scene.gt, want)
  counts = make.composition(manifest)
  assert sum(v for k, v in counts.items() if k.startswith("size=")) == sum(
      r["n_targets"] for r in manifest["scenes"])


def test_transplant_formula(toy_dir, toy_suite):
  """A full-pixel target holds the donor's pixel; a sub-pixel one mixes f t + (1-f) b."""
  out, manifest = toy_suite
  rec = manifest["scenes"][0]
  scene = io.load_scene(out / rec["file"])
  full = [t for t in rec["targets"] if t["fill"] == 1.0]
  for t in full:
    donor = io.load_scene(toy_dir / (t["spectrum"]["scene"] + ".mat"))
    pr, pc = t["spectrum"]["purest"]
    np.testing.assert_allclose(scene.cube[t["row"], t["col"]], donor.cube[pr, pc],
                               rtol=1e-6)


def test_refuses_other_suites_and_changed_files(toy_dir, toy_suite, tmp_path):
  out, manifest = toy_suite
  # the very same suite: verified and left as it is
  assert make.make_suite(out, toy_dir, seed=3, size="small") == manifest
  with pytest.raises(ConfigError, match="seed: 3 there, 4 asked"):
    make.make_suite(out, toy_dir, seed=4, size="small")
  with pytest.raises(ConfigError, match="unknown suite size"):
    make.make_suite(tmp_path / "x", toy_dir, size="huge")
  copy = tmp_path / "copy"
  copy.mkdir()
  for name, data in _bytes(out).items():
    (copy / name).write_bytes(data)
  old = json.loads((copy / "suite.json").read_text())
  (copy / "suite.json").write_text(json.dumps({**old, "version": "lrrjax-suite/0"}))
  with pytest.raises(ConfigError, match="lrrjax-suite/0"):
    make.make_suite(copy, toy_dir, seed=3, size="small")
  (copy / "suite.json").write_text(json.dumps(old))
  raw = bytearray((copy / "bg-toy-b-v0.mat").read_bytes())
  raw[-3] ^= 1
  (copy / "bg-toy-b-v0.mat").write_bytes(bytes(raw))
  with pytest.raises(SceneError, match="bg-toy-b-v0.mat: sha256"):
    make.make_suite(copy, toy_dir, seed=3, size="small")
  assert (copy / "bg-toy-b-v0.mat").read_bytes() == bytes(raw)  # not overwritten
  with pytest.raises(SceneError, match="sha256"):
    benchmark.run_benchmark(copy, ["grx"], tmp_path / "b", progress=False)
  (copy / "bg-toy-b-v0.mat").write_bytes(_bytes(out)["bg-toy-b-v0.mat"])
  (copy / "stray.mat").write_bytes(_bytes(out)["bg-toy-a-v0.mat"])
  with pytest.raises(SceneError, match="stray.mat are not in the suite manifest"):
    suite.verify(copy)
  other = tmp_path / "other"
  other.mkdir()
  (other / "notes.txt").write_text("mine")
  with pytest.raises(ConfigError, match="holds no suite.json"):
    make.make_suite(other, toy_dir)


def test_scene_that_cannot_host(toy_dir, tmp_path):
  with pytest.raises(SceneError, match="'odd-x'.*cannot host a transplant"):
    make.make_suite(tmp_path / "s", toy_dir, scenes=["toy-a", "odd-x"])
  assert not (tmp_path / "s").exists()
  with pytest.raises(SceneError, match="cannot host a transplant"):
    implant.pick_donor(np.random.default_rng(0), {"toy-a": []}, {"toy-a"}, "toy-a")


def test_inpaint_removes_labelled_anomalies():
  cube, gt = _toy_scene(1)
  gt = gt.astype(bool)
  res = background.inpaint(cube, gt, np.random.default_rng(0))
  assert res.filled.sum() > gt.sum()  # dilated by one pixel
  np.testing.assert_array_equal(res.cube[~res.filled], cube[~res.filled])
  bg = cube[~res.filled]
  z = np.abs(res.cube[gt] - bg.mean(0)) / bg.std(0)
  assert z.max() < 6.0  # the 3000-level blobs are gone
  assert metrics.auc_df(np.linalg.norm(res.cube - bg.mean(0), axis=2), gt) < 0.9
  assert metrics.auc_df(np.linalg.norm(cube - bg.mean(0), axis=2), gt) == 1.0


def test_implant_places_near_bright_and_mixes():
  h, w, b = 60, 60, 4
  cube = np.full((h, w, b), 100.0, np.float32)
  cube[20:40, 20:40] = 1000.0   # one large bright structure
  t = np.array([[10.0, 20.0, 30.0, 40.0]], np.float32)
  specs = [implant.TargetSpec(3, 0.25, True), implant.TargetSpec(2, 1.0, False)]
  out, gt, recs = implant.implant_targets(
      np.random.default_rng(1), cube, np.zeros((h, w), bool), specs,
      lambda _r, _a, _b, _s: (t, {"scene": "x"}))
  assert [r["size"] for r in recs] == [3, 2]
  assert recs[0]["context"] == "near-bright"
  r0 = recs[0]
  patch = out[r0["row"]:r0["row"] + 3, r0["col"]:r0["col"] + 3]
  np.testing.assert_allclose(patch, np.broadcast_to(0.25 * t[0] + 0.75 * 100.0,
                                                   patch.shape), rtol=1e-6)
  assert not gt[20:40, 20:40].any()   # never on the bright structure
  assert gt.sum() == 9 + 4


def test_plan_covers_the_grid():
  specs = implant.plan(np.random.default_rng(0), 30, 2)
  assert [s.size for s in specs[:2]] == [implant.LARGE] * 2
  small = specs[2:]
  assert sorted({(s.size, implant.fill_bin_of(s.fill)) for s in small}) == sorted(
      {(z, implant.fill_bin_label(*bn)) for z in implant.SIZES
       for bn in implant.FILL_BINS})
  assert all(implant.FILL_BINS[0][0] <= s.fill <= 1.0 for s in small)


def test_threshold_and_stratified_rates():
  rng = np.random.default_rng(0)
  scores = rng.random((40, 50))
  gt = np.zeros((40, 50), bool)
  targets = [{"row": 1, "col": 1, "size": 2, "fill": 0.07, "context": "open"},
             {"row": 10, "col": 10, "size": 1, "fill": 1.0, "context": "near-bright"},
             {"row": 20, "col": 20, "size": 1, "fill": 0.4, "context": "open"}]
  for t in targets:
    gt[t["row"]:t["row"] + t["size"], t["col"]:t["col"] + t["size"]] = True
  scores[1, 1] = scores[2, 2] = 5.0       # half of target 0 far above
  scores[10, 10] = 5.0                    # target 1 found
  scores[20, 20] = -1.0                   # target 2 missed
  for far in stratified.FARS:
    tau = stratified.threshold(scores[~gt], far)
    assert np.sum(scores[~gt] > tau) <= far * np.sum(~gt)
  manifest = {"version": mf.VERSION, "scenes": [{"file": "s.mat", "targets": targets}]}
  recs = stratified.stratified_records(manifest, {("s", "m"): scores}, {"s": gt},
                                       ["m"], ["s"])
  by = {r["stratum"]: r for r in recs}
  assert by["all"]["n_targets"] == 3
  assert by["all"]["pd_at_far_1e-3"] == pytest.approx((0.5 + 1 + 0) / 3)
  assert by["size=2x2"]["pd_at_far_1e-2"] == 0.5
  assert by["fill=1.0"]["pd_at_far_1e-2"] == 1.0
  assert by["fill=0.05-0.5"]["n_targets"] == 2
  assert by["context=near-bright"]["pd_at_far_1e-3"] == 1.0
  assert [r["stratum"] for r in recs][:3] == ["all", "size=1x1", "size=2x2"]


def test_benchmark_reports_strata(toy_suite, tmp_path):
  out, manifest = toy_suite
  res = tmp_path / "bench"
  benchmark.run_benchmark(out, ["grx"], res, progress=False)
  data = json.loads((res / "results.json").read_text())
  assert data["suite"] == {"version": mf.VERSION, "seed": 3, "size": "small"}
  strat = data["stratified"]
  assert {"method", "stratum", "pd_at_far_1e-3", "pd_at_far_1e-2", "n_targets"} <= set(
      strat[0])
  n_all = sum(r["n_targets"] for r in manifest["scenes"])
  assert next(r for r in strat if r["stratum"] == "all")["n_targets"] == n_all
  md = (res / "results.md").read_text()
  assert "## Detection rate per stratum" in md and "Sub-pixel targets" in md
  assert (res / "stratified.png").stat().st_size > 0
  cell = res / "cells" / "bg-toy-b-v0__grx.json"
  assert json.loads(cell.read_text())["scene_sha256"] == manifest["scenes"][1]["sha256"]
  cell.write_text(cell.read_text().replace(manifest["scenes"][1]["sha256"], "0" * 64))
  lines = []
  benchmark.run_benchmark(out, ["grx"], res, progress=lines.append, figures=False)
  tags = {ln.split()[1]: re.search(r"\((done|cached)\)", ln).group(0)
          for ln in lines if ln.startswith("[")}
  assert tags["bg-toy-b-v0"] == "(done)" and tags["bg-toy-a-v0"] == "(cached)"


def test_training_guard(toy_suite, tmp_path, capsys):
  out, _ = toy_suite
  scene = out / "bg-toy-a-v0.mat"
  for p in (out, scene, out / "suite.json"):
    with pytest.raises(ConfigError, match="never training data"):
      suite.check_not_suite(p)
  assert suite.check_not_suite(scene, allow=True) == out
  assert suite.check_not_suite(tmp_path) is None
  rc = cli.main(["train", str(scene), "--workdir", str(tmp_path / "w")])
  assert rc == 2
  assert "--allow-suite-data" in capsys.readouterr().err
  assert not (tmp_path / "w").exists()
  with pytest.raises(ConfigError, match="is a suite folder"):
    make.make_suite(tmp_path / "s2", out)


def test_large_files_are_streamable_and_deterministic(tmp_path):
  rng = np.random.default_rng(0)
  cube = rng.normal(500, 50, (512, 512, 3)).astype(np.float32)
  gt = np.zeros((512, 512), bool)
  gt[5:8, 9:11] = True
  (tmp_path / "a").mkdir()
  (tmp_path / "b").mkdir()
  fa, sa = make.write_scene(tmp_path / "a", "big", cube, gt)
  _, sb = make.write_scene(tmp_path / "b", "big", cube, gt)
  assert sa == sb
  arrays, meta = io.read_arrays(tmp_path / "a" / fa)
  assert meta["format"] == "mat-v7.3"
  scene = io.load_scene(tmp_path / "a" / fa)
  np.testing.assert_array_equal(scene.cube, np.rint(cube))
  np.testing.assert_array_equal(scene.gt, gt)
  assert arrays["data"].dtype == np.int16


def test_complex_synthetic_and_mosaic():
  bg, info = largescene.make_complex(np.random.default_rng(0), 96, 80, 40)
  io.validate_cube(bg.cube)
  assert bg.cube.shape == (96, 80, 40)
  dead = info["dead_bands"]
  assert bg.cube[:, :, dead].mean() < 0.05 * bg.cube.mean()
  assert implant.bright_structures(bg.cube).any()
  spectra = info["target_spectra"](np.random.default_rng(1), 4)
  assert spectra.shape == (4, 40)
  tiles = [(f"t{i}", np.full((30, 30, 3), i, np.float32), np.zeros((30, 30), bool))
           for i in range(3)]
  mos = largescene.mosaic(np.random.default_rng(0), tiles, 70, 65)
  assert mos.cube.shape == (70, 65, 3)
  np.testing.assert_array_equal(mos.cube[..., 0], mos.source)
  assert mos.blocked[29:31].all() and mos.blocked[:, 29:31].all()  # seams
  assert not mos.blocked[:29, :29].any()
  with pytest.raises(ConfigError, match="different band counts"):
    largescene.mosaic(np.random.default_rng(0),
                      tiles[:1] + [("z", np.zeros((30, 30, 4), np.float32),
                                    np.zeros((30, 30), bool))], 40, 40)


@pytest.mark.realdata
def test_real_host_is_cleaned_and_transplanted(data_dir, tmp_path):
  m = make.make_suite(tmp_path / "s", data_dir, seed=0, scenes=["abu-urban-3"])
  rec = m["scenes"][0]
  assert rec["file"] == "bg-abu-urban-3-v0.mat"
  assert {t["spectrum"]["scene"] for t in rec["targets"]} == {"abu-airport-4"}
  host = io.load_scene(data_dir / "abu-urban-3.mat")
  cleaned = background.inpaint(host.cube, host.gt, np.random.default_rng(0))
  # the real anomalies are gone: global RX no longer separates them
  from lrrjax import detectors  # pylint: disable=import-outside-toplevel
  before = metrics.auc_df(np.asarray(detectors.run_method("grx", host)), host.gt)
  after = metrics.auc_df(np.asarray(detectors.run_method(
      "grx", io.Scene(cleaned.cube, host.gt))), host.gt)
  assert before > 0.9 and after < 0.7
  excluded = {e["name"]: e["reason"] for e in m["excluded"]}
  assert "162 bands" in excluded["hydice-urban"]
  assert excluded["abu-airport-1"] == "not asked for (--scenes)"
