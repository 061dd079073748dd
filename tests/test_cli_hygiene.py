"""Band selection and constant bands on the command line, errors that name the
scene, and progress lines (rate, ETA)."""

import io as std_io

import numpy as np
import pytest

from lrrjax import benchmark, cli, detectors, io, progress, synthetic
from lrrjax.errors import ConfigError, SceneError


def _cube_file(tmp_path, constant=(7,)):
  s = synthetic.make_scene(30, 24, 20, n_targets=4, seed=2)
  cube = s.cube.copy()
  for b in constant:
    cube[:, :, b] = 5.0
  np.savez(tmp_path / "flight.npz", data=cube, map=s.gt.astype(np.uint8))
  return tmp_path / "flight.npz", cube, s.gt


def _error(argv, capsys):
  assert cli.main(argv) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1
  return err


def test_parse_band_list():
  assert io.parse_band_list("0-3,7, 2") == [0, 1, 2, 3, 7]
  for bad in ("", "a", "5-2", "-1", "3-x"):
    with pytest.raises(ConfigError, match="--bad-bands"):
      io.parse_band_list(bad, "--bad-bands")


def test_load_scene_band_selection_and_metadata(tmp_path):
  path, cube, _ = _cube_file(tmp_path)
  s = io.load_scene(path, bands=range(0, 12), bad_bands=[1, 2], drop_constant_bands=True)
  keep = [0, 3, 4, 5, 6, 8, 9, 10, 11]  # 7 constant, dropped
  np.testing.assert_array_equal(s.cube, cube[:, :, keep])
  assert s.metadata["bands"] == [0, 3, 4, 5, 6, 7, 8, 9, 10, 11]
  assert s.metadata["dropped_bands"] == [7]
  with pytest.raises(SceneError, match=r"constant band\(s\) at indices \[7\]"):
    io.load_scene(path, bad_bands=[1])  # file index, not position after selection
  with pytest.raises(SceneError, match="20 bands"):
    io.load_scene(path, bands=[3, 25])
  with pytest.raises(SceneError, match="no band left"):
    io.load_scene(path, bands=[1], bad_bands=[1])


def test_detect_drops_constant_bands_with_a_notice(tmp_path, capsys):
  path, cube, gt = _cube_file(tmp_path, constant=(7, 12))
  out = tmp_path / "o"
  assert cli.main(["detect", str(path), "--method", "grx", "--out", str(out)]) == 0
  captured = capsys.readouterr()
  notes = [l for l in captured.err.splitlines() if l.startswith("note:")]
  assert notes == ["note: flight: dropped 2 constant band(s) [7, 12] (zero variance)"]
  ref = detectors.run_method("grx", io.Scene(np.delete(cube, [7, 12], axis=2), gt))
  np.testing.assert_array_equal(np.load(out / "scores.npy"), ref)
  err = _error(["detect", str(path), "--method", "grx", "--keep-constant-bands",
                "--out", str(out)], capsys)
  assert "[7, 12]" in err and "--keep-constant-bands" in err
  # --bad-bands removes them without a notice; --bands keeps a range
  assert cli.main(["detect", str(path), "--method", "grx", "--bad-bands", "7,12",
                   "--out", str(out)]) == 0
  assert "note:" not in capsys.readouterr().err
  np.testing.assert_array_equal(np.load(out / "scores.npy"), ref)
  assert cli.main(["detect", str(path), "--method", "grx", "--bands", "0-6,8-11",
                   "--out", str(out)]) == 0
  ref = detectors.run_method("grx", io.Scene(cube[:, :, [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11]]))
  np.testing.assert_array_equal(np.load(out / "scores.npy"), ref)
  assert "--bands names band(s) [40]" in _error(
      ["detect", str(path), "--method", "grx", "--bands", "0-3,40", "--out", str(out)],
      capsys)
  assert "--bad-bands" in _error(
      ["detect", str(path), "--method", "grx", "--bad-bands", "x", "--out", str(out)],
      capsys)
  assert "do not apply to the synthetic" in _error(
      ["detect", "synthetic", "--method", "grx", "--bands", "1-3", "--out", str(out)],
      capsys)
  assert cli.main(["info", str(path), "--bad-bands", "0"]) == 0
  text = capsys.readouterr().out
  assert "dropped constant bands: [7, 12]" in text and "bands kept (file indices)" in text


def test_errors_name_the_scene(tmp_path, capsys):
  s = synthetic.make_scene(12, 10, 8, n_targets=2, seed=1)
  np.savez(tmp_path / "allgt.npz", data=s.cube, map=np.ones((12, 10), np.uint8))
  err = _error(["detect", str(tmp_path / "allgt.npz"), "--method", "grx",
                "--out", str(tmp_path / "o")], capsys)
  assert "scene 'allgt'" in err and "no background" in err
  rng = np.random.default_rng(0)
  np.savez(tmp_path / "tiny.npz", data=rng.random((4, 3, 6)),
           map=np.eye(4, 3, dtype=np.uint8))
  err = _error(["detect", str(tmp_path / "tiny.npz"), "--method", "lrasr",
                "--out", str(tmp_path / "o")], capsys)
  assert "scene 'tiny'" in err and "N=12" in err
  scene = io.load_scene(tmp_path / "allgt.npz")
  with pytest.raises(SceneError, match="scene 'allgt'.*no background"):
    benchmark.run_cell(scene, "grx")


def test_progress_meter_lines():
  buf = std_io.StringIO()
  meter = progress.Progress(1000, "px", "detect grx", enabled=True, interval=0.0,
                            stream=buf)
  meter.update(250)
  meter.update(750)
  lines = buf.getvalue().splitlines()
  assert len(lines) == 2
  assert lines[0].startswith("detect grx: 250/1k px (25%)") and "px/s" in lines[0]
  assert "ETA" in lines[0] and "(100%)" in lines[1]
  quiet = std_io.StringIO()
  meter = progress.Progress(10, enabled=progress.enabled(False, quiet), stream=quiet)
  meter.update(10)
  assert quiet.getvalue() == ""
  assert progress.fmt_time(3725) == "1:02:05" and progress.fmt_time(65) == "1:05"


def test_detect_progress_only_when_asked(capsys, tmp_path):
  path, _, _ = _cube_file(tmp_path, constant=())
  out = str(tmp_path / "o")
  assert cli.main(["detect", str(path), "--method", "grx", "--out", out]) == 0
  assert capsys.readouterr().err == ""  # stderr is not a terminal under pytest
  assert cli.main(["detect", str(path), "--method", "grx", "--out", out,
                   "--progress"]) == 0
  err = capsys.readouterr().err
  assert "detect grx on flight" in err and "px/s" in err and "(100%)" in err


def test_train_progress_has_rate_and_eta(capsys):
  args = cli.build_parser().parse_args(
      ["train", "synthetic", "--workdir", "w", "--set", "train.steps=4", "--progress"])
  show = cli.train_progress(args)
  show(2, {"loss": 0.5})
  show(4, {"loss": 0.25})
  lines = capsys.readouterr().err.splitlines()
  assert lines[0].startswith("train: 2/4 steps (50%)") and "ETA" in lines[0]
  assert lines[0].endswith("loss=0.5") and "(100%)" in lines[1]
