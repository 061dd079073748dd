"""The `lrrjax` command: detect / info / train in-process, the console script, errors."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lrrjax import cli, detectors, metrics, synthetic
from lrrjax.errors import ConfigError
from lrrjax.lrr import config as lrr_config


def _script() -> str:
  """The installed console script next to this interpreter."""
  path = pathlib.Path(sys.executable).parent / "lrrjax"
  assert path.exists(), f"console script not installed at {path} (pip install -e .)"
  return str(path)


@pytest.fixture(scope="module")
def grx_run(tmp_path_factory):
  out = tmp_path_factory.mktemp("detect") / "grx"
  import contextlib
  import io
  buf = io.StringIO()
  with contextlib.redirect_stdout(buf):
    rc = cli.main(["detect", "synthetic", "--method", "grx", "--out", str(out)])
  return rc, out, buf.getvalue()


def test_detect_writes_everything(grx_run):
  rc, out, stdout = grx_run
  assert rc == 0
  for name in ("scores.npy", "detection.png", "metrics.json", "roc.png"):
    assert (out / name).stat().st_size > 0, name
  scene = synthetic.make_scene()
  scores = np.load(out / "scores.npy")
  assert scores.shape == (64, 64) and scores.dtype == np.float32
  np.testing.assert_array_equal(scores, detectors.run_method("grx", scene))
  m = json.loads((out / "metrics.json").read_text())
  for k in ("method", "scene", "auc_df", "auc_ft", "auc_dt", "auc_odp", "auc_snpr",
            "seconds", "provenance", *metrics.roc3d(scores.ravel(), scene.gt.ravel())):
    assert k in m, k
  assert m["method"] == "grx" and m["scene"] == "synthetic"
  assert m["shape"] == [64, 64, 100]
  assert m["auc_df"] == pytest.approx(roc_auc_score(scene.gt.ravel(), scores.ravel()),
                                      abs=1e-12)
  assert m["provenance"]["versions"]["numpy"] == np.__version__
  # One summary line naming method, scene, shape, AUC, seconds and out dir.
  lines = stdout.strip().splitlines()
  assert len(lines) == 1
  line = lines[0]
  for part in ("grx", "synthetic", "64x64x100", f"AUC(D,F)={m['auc_df']:.4f}",
               str(out)):
    assert part in line, (part, line)
  assert "s ->" in line


def test_default_out_dir_and_set(tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)
  assert cli.main(["detect", "synthetic", "--method", "lrx",
                   "--set", "inner=3", "--set", "outer=7"]) == 0
  out = tmp_path / "runs" / "synthetic-lrx"
  m = json.loads((out / "metrics.json").read_text())
  assert m["params"] == {"inner": 3, "outer": 7}
  np.testing.assert_array_equal(
      np.load(out / "scores.npy"),
      detectors.run_method("lrx", synthetic.make_scene(), inner=3, outer=7))
  assert "synthetic-lrx" in capsys.readouterr().out


def test_detect_real_scene_without_metrics_when_no_gt(tmp_path, capsys):
  s = synthetic.make_scene(height=16, width=12, bands=20, n_targets=2)
  np.save(tmp_path / "cube.npy", s.cube)
  assert cli.main(["detect", str(tmp_path / "cube.npy"), "--method", "grx",
                   "--out", str(tmp_path / "o")]) == 0
  assert (tmp_path / "o" / "scores.npy").exists()
  assert (tmp_path / "o" / "detection.png").exists()
  assert not (tmp_path / "o" / "metrics.json").exists()
  assert "no ground truth" in capsys.readouterr().out


def test_info_real_scene(data_dir, capsys):
  assert cli.main(["info", str(data_dir / "abu-airport-1.mat")]) == 0
  out = capsys.readouterr().out
  for part in ("data: 100x100x205 uint16", "map: 100x100 uint8",
               "100 x 100 x 205", "anomaly pixels: 144 of 10000", "range [0, 6604]"):
    assert part in out, (part, out)


def test_info_synthetic(capsys):
  assert cli.main(["info", "synthetic"]) == 0
  out = capsys.readouterr().out
  n = int(synthetic.make_scene().gt.sum())
  assert "64 x 64 x 100" in out and f"anomaly pixels: {n} of 4096" in out


@pytest.mark.parametrize("argv, message", [
    (["detect", "no/such/file.mat", "--method", "grx"], "not found"),
    (["info", "no/such/file.mat"], "not found"),
    (["detect", "synthetic", "--method", "no-such-method"], "unknown method"),
    (["detect", "synthetic", "--method", "grx", "--set", "inner"], "key=value"),
    (["detect", "synthetic", "--method", "grx", "--set", "bogus=1"], "bogus"),
    (["detect", "synthetic", "--method", "grx", "--checkpoint", "x"], "trained method"),
    (["detect", "synthetic", "--checkpoint", "no/such/dir"], "not found"),
    (["info", "synthetic", "--key", "data"], "synthetic"),
    (["train", "synthetic", "--workdir", "w", "--set", "model.stagez=3"], "stagez"),
    (["benchmark", "no/such/dir", "--out", "o"], "not found"),
    (["benchmark", ".", "--out", "o", "--methods", "grx,nope"], "nope"),
])
def test_errors_exit_2_without_traceback(argv, message, capsys, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert cli.main(argv) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and message in err, err
  assert "Traceback" not in err and err.count("\n") == 1


def test_scene_error_exit_2(tmp_path, capsys):
  (tmp_path / "bad.npy").write_bytes(b"not an npy file")
  assert cli.main(["info", str(tmp_path / "bad.npy")]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and "bad.npy" in err


def test_console_script(tmp_path):
  out = tmp_path / "o"
  res = subprocess.run([_script(), "detect", "synthetic", "--method", "grx",
                        "--out", str(out)], capture_output=True, text=True,
                       timeout=120, check=False)
  assert res.returncode == 0, res.stderr
  assert res.stdout.count("\n") == 1 and "AUC(D,F)=" in res.stdout
  assert json.loads((out / "metrics.json").read_text())["method"] == "grx"
  res = subprocess.run([_script(), "detect", str(tmp_path / "missing.mat")],
                       capture_output=True, text=True, timeout=120, check=False)
  assert res.returncode == 2
  assert res.stderr.startswith("error: ") and "Traceback" not in res.stderr


def test_compile_cache_fills_and_gives_the_same_scores(tmp_path):
  """Two fresh processes with the cache on: the first fills the folder, the
  second reads it; the scores are bit-identical to each other and to a run
  with the cache off."""
  import os  # pylint: disable=import-outside-toplevel
  cube = synthetic.make_scene(24, 20, 30, n_targets=2, seed=3)
  path = tmp_path / "scene.npz"
  np.savez(path, data=cube.cube, map=cube.gt.astype(np.uint8))
  cache = tmp_path / "cache"
  scores = []
  for i, where in enumerate([str(cache), str(cache), "off"]):
    env = {**os.environ, "LRRJAX_COMPILE_CACHE": where}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    res = subprocess.run([_script(), "detect", str(path), "--out", str(tmp_path / f"o{i}")],
                         capture_output=True, text=True, timeout=300, check=False, env=env)
    assert res.returncode == 0, res.stderr
    scores.append(np.load(tmp_path / f"o{i}" / "scores.npy"))
    if i == 0:
      assert any(cache.iterdir())
  np.testing.assert_array_equal(scores[0], scores[1])
  np.testing.assert_array_equal(scores[0], scores[2])


def test_compile_cache_dir_from_environment(monkeypatch, tmp_path):
  from lrrjax.cli import common  # pylint: disable=import-outside-toplevel
  monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
  monkeypatch.setenv("LRRJAX_COMPILE_CACHE", "off")
  assert common.compile_cache_dir() is None
  monkeypatch.setenv("LRRJAX_COMPILE_CACHE", str(tmp_path / "c"))
  assert common.compile_cache_dir() == tmp_path / "c"
  monkeypatch.setenv("LRRJAX_COMPILE_CACHE", "")
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
  assert common.compile_cache_dir() == tmp_path / "x" / "lrrjax" / "jax"
  monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "j"))
  assert common.compile_cache_dir() is None  # JAX uses its own setting


def test_parse_sets_and_overrides():
  assert cli.parse_sets(["a=1", "b.c=0.5", "d=true", "e=x y", "f=(1, 2)", "g=None"]) == {
      "a": 1, "b.c": 0.5, "d": True, "e": "x y", "f": (1, 2), "g": None}
  for bad in ("=1", "a", "a..b=1", "1a=2"):
    with pytest.raises(ConfigError):
      cli.parse_sets([bad])
  c = lrr_config.get_config()
  cli.apply_overrides(c, {"model.stages": 3, "train.lr": 1, "model.learn_dictionary": False})
  assert c.model.stages == 3 and c.train.lr == 1.0 and isinstance(c.train.lr, float)
  assert c.model.learn_dictionary is False
  with pytest.raises(ConfigError, match="model.stagez"):
    cli.apply_overrides(c, {"model.stagez": 3})
  with pytest.raises(ConfigError, match="modle"):
    cli.apply_overrides(c, {"modle.stages": 3})
  with pytest.raises(ConfigError, match="train.steps"):
    cli.apply_overrides(c, {"train.steps": "many"})


def test_train_then_detect_from_checkpoint(tmp_path, capsys):
  work = tmp_path / "work"
  argv = ["train", "synthetic", "--workdir", str(work), "--set", "model.stages=2",
          "--set", "train.steps=2", "--set", "train.checkpoint_every=1"]
  assert cli.main(argv) == 0
  line = capsys.readouterr().out
  assert "trained lrrnet-plus on synthetic: 2 steps" in line and str(work) in line
  rec = json.loads((work / "train.json").read_text())
  assert rec["provenance"]["config"]["model"]["stages"] == 2
  assert any(p.is_dir() for p in work.iterdir())  # orbax checkpoint step folder
  out = tmp_path / "det"
  assert cli.main(["detect", "synthetic", "--checkpoint", str(work),
                   "--out", str(out)]) == 0
  m = json.loads((out / "metrics.json").read_text())
  assert m["method"] == "lrrnet-plus" and m["checkpoint"] == str(work)
  scores = np.load(out / "scores.npy")
  assert scores.shape == (64, 64) and np.isfinite(scores).all()
