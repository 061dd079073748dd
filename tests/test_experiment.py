"""Experiment driver, configs, absl entry point and provenance records."""

import importlib.util
import json
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lrrjax import detectors, experiment, provenance, synthetic
from lrrjax.lrr import config as lrr_config

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = REPO / "experiments" / "configs"
TINY = dict(height=20, width=16, bands=24, n_endmembers=3, n_targets=4, seed=3)


def _config_module(name):
  spec = importlib.util.spec_from_file_location(f"cfg_{name}", CONFIGS / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _tiny_config(method="lrrnet-plus"):
  c = _config_module("default").get_config()
  c.synthetic.update(TINY)
  c.method = method
  c.lrr.model.stages = 2
  c.lrr.train.steps = 2
  c.lrr.train.checkpoint_every = 1
  c.lrr.train.log_every = 1
  return c


# ------------------------------------------------------------------ configs --


def test_default_config_matches_lrr_config():
  c = _config_module("default").get_config()
  assert c.scene == "synthetic" and c.method == "lrrnet-plus" and c.seed == 0
  ref = lrr_config.get_config().to_dict()
  assert c.lrr.to_dict() == ref
  c.seed = 7  # lrr.seed follows the experiment seed
  assert c.lrr.seed == 7


@pytest.mark.parametrize("name, path, value", [
    ("fixed_dictionary", ("model", "learn_dictionary"), False),
    ("tied", ("model", "tie_stages"), True),
    ("loss_mse", ("train", "loss"), "mse"),
])
def test_ablation_configs_change_one_field(name, path, value):
  c = _config_module(name).get_config().to_dict()
  d = _config_module("default").get_config().to_dict()
  assert c["lrr"][path[0]][path[1]] == value != d["lrr"][path[0]][path[1]]
  c["lrr"][path[0]][path[1]] = d["lrr"][path[0]][path[1]]
  assert c == d


@pytest.mark.parametrize("stages", [5, 20, 40])
def test_stages_config_string(stages):
  m = _config_module("stages")
  assert m.get_config(str(stages)).lrr.model.stages == stages
  assert m.get_config().lrr.model.stages == lrr_config.get_config().model.stages


# --------------------------------------------------------------- experiment --


def test_train_and_evaluate_lrrnet_plus_smoke(tmp_path):
  c = _tiny_config()
  res = experiment.train_and_evaluate(c, tmp_path)
  sdir = tmp_path / "synthetic"
  for name in ("metrics.json", "scores.npy", "detection.png", "training_curve.png",
               "history.json"):
    assert (sdir / name).stat().st_size > 0, name
  assert [p for p in sdir.iterdir() if p.is_dir()], "no orbax checkpoint written"
  m = json.loads((sdir / "metrics.json").read_text())
  scene = synthetic.make_scene(**TINY)
  scores = np.load(sdir / "scores.npy")
  assert scores.shape == (20, 16) and np.isfinite(scores).all()
  assert m["auc_df"] == pytest.approx(roc_auc_score(scene.gt.ravel(), scores.ravel()),
                                      abs=1e-12)
  assert m["method"] == "lrrnet-plus" and math.isfinite(m["final_loss"])
  assert res["records"][0]["auc_df"] == m["auc_df"] == res["mean_auc_df"]
  cfg = json.loads((tmp_path / "config.json").read_text())
  assert cfg["lrr"]["model"]["stages"] == 2
  prov = json.loads((tmp_path / "provenance.json").read_text())
  assert prov["seed"] == 0 and prov["config"] == cfg and prov["jax"]["backend"]


def test_train_and_evaluate_registry_method_on_folder(tmp_path):
  data = tmp_path / "data"
  data.mkdir()
  for i, name in enumerate(("s1", "s2")):
    s = synthetic.make_scene(**{**TINY, "seed": i})
    np.savez(data / f"{name}.npz", data=s.cube, map=s.gt.astype(np.uint8))
  c = _tiny_config("grx")
  c.scene = str(data)
  res = experiment.train_and_evaluate(c, tmp_path / "w")
  assert [r["scene"] for r in res["records"]] == ["s1", "s2"]
  for i, r in enumerate(res["records"]):
    s = synthetic.make_scene(**{**TINY, "seed": i})
    ref = detectors.run_method("grx", s)
    np.testing.assert_array_equal(np.load(tmp_path / "w" / r["scene"] / "scores.npy"), ref)
    assert r["auc_df"] == pytest.approx(roc_auc_score(s.gt.ravel(), ref.ravel()), abs=1e-12)
    assert not (tmp_path / "w" / r["scene"] / "training_curve.png").exists()
  assert res["mean_auc_df"] == pytest.approx(np.mean([r["auc_df"] for r in res["records"]]))
  summary = json.loads((tmp_path / "w" / "summary.json").read_text())
  assert summary["mean_auc_df"] == pytest.approx(res["mean_auc_df"])


# ------------------------------------------------------------- entry point --


def _main(*args, cwd=REPO):
  return subprocess.run([sys.executable, str(REPO / "experiments" / "main.py"), *args],
                        capture_output=True, text=True, timeout=300, cwd=cwd, check=False)


def test_main_rejects_config_typo(tmp_path):
  res = _main(f"--config={CONFIGS / 'default.py'}", "--config.lrr.model.stagez=3",
              f"--workdir={tmp_path}")
  assert res.returncode != 0
  assert "stagez" in res.stderr
  assert not (tmp_path / "config.json").exists()


def test_main_runs_tiny_config(tmp_path):
  res = _main(f"--config={CONFIGS / 'stages.py'}:3", "--config.method=grx",
              "--config.synthetic.height=16", "--config.synthetic.width=12",
              "--config.synthetic.bands=20", "--config.synthetic.n_targets=3",
              "--config.seed=5",
              f"--workdir={tmp_path}", cwd=tmp_path)
  assert res.returncode == 0, res.stderr[-3000:]
  cfg = json.loads((tmp_path / "config.json").read_text())
  assert cfg["lrr"]["model"]["stages"] == 3 and cfg["seed"] == 5 == cfg["lrr"]["seed"]
  m = json.loads((tmp_path / "synthetic" / "metrics.json").read_text())
  assert m["method"] == "grx" and m["shape"] == [16, 12, 20]


# --------------------------------------------------------------- provenance --


def test_provenance_record():
  rec = provenance.record(config=lrr_config.get_config(), seed=4)
  for k in ("jax", "jaxlib", "flax", "optax", "numpy", "scipy", "orbax-checkpoint",
            "ml-collections", "h5py"):
    assert rec["versions"][k], k
  assert rec["versions"]["numpy"] == np.__version__
  assert rec["python"] == sys.version.split()[0]
  assert rec["jax"]["backend"] and rec["jax"]["devices"]
  assert rec["seed"] == 4 and rec["config"]["model"]["stages"] == 10
  assert rec["time_utc"].endswith("+00:00")
  head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                        text=True, check=False)
  if head.returncode == 0:
    assert rec["git"]["revision"] == head.stdout.strip()
    assert isinstance(rec["git"]["dirty"], bool)
  json.dumps(rec, allow_nan=False)


def test_git_revision_outside_repo(tmp_path):
  assert provenance.git_revision(tmp_path) == {"revision": None, "dirty": None}


def test_write_json_atomic_and_non_finite(tmp_path, monkeypatch):
  path = tmp_path / "sub" / "x.json"
  provenance.write_json(path, {"a": float("nan"), "b": [float("inf"), -float("inf")],
                               "c": np.float32(0.5), "d": np.arange(3), "e": (1, 2),
                               "p": tmp_path})
  assert json.loads(path.read_text()) == {"a": None, "b": ["inf", "-inf"], "c": 0.5,
                                          "d": [0, 1, 2], "e": [1, 2], "p": str(tmp_path)}
  assert [p.name for p in path.parent.iterdir()] == ["x.json"]  # no temp left
  # A failure at the final rename leaves the old file intact and no temp file.
  def broken_replace(src, dst):
    raise OSError("disk full")
  monkeypatch.setattr(provenance.os, "replace", broken_replace)
  with pytest.raises(OSError, match="disk full"):
    provenance.write_json(path, {"c": 1.0})
  monkeypatch.undo()
  assert json.loads(path.read_text())["c"] == 0.5
  assert [p.name for p in path.parent.iterdir()] == ["x.json"]
