"""Lazy strip reads, streamed statistics, tiled detection and its CLI errors."""

import os

import numpy as np
import pytest
import scipy.io

from lrrjax import cli, detectors, io, streaming, synthetic
from lrrjax.errors import ConfigError, SceneError
from lrrjax.io import lazy, stream
from test_io import write_envi, write_mat73  # tests/ is on sys.path (rootdir conftest)

H, W, B = 23, 17, 9


def _raw(seed=0):
  rng = np.random.default_rng(seed)
  return rng.integers(1, 500, size=(H, W, B)).astype(np.uint16)


def _scene(h=40, w=30, b=16, seed=3):
  return synthetic.make_scene(h, w, b, n_targets=5, seed=seed)


# ---------------------------------------------------------------- readers --


@pytest.mark.parametrize("fmt", ["npy", "npy-fortran", "bsq", "bil", "bip", "mat73"])
def test_lazy_strips_equal_the_whole_load(tmp_path, fmt):
  cube = _raw()
  if fmt.startswith("npy"):
    path = tmp_path / "c.npy"
    np.save(path, np.asfortranarray(cube) if fmt == "npy-fortran" else cube)
  elif fmt == "mat73":
    path = tmp_path / "c.mat"
    write_mat73(path, {"data": cube, "map": np.eye(H, W, dtype=bool)})
  else:
    path, _ = write_envi(tmp_path, cube, interleave=fmt, order=1, code=12)
  lz = lazy.open_cube(path, bad_bands=[2, 5])
  whole = io.load_scene(path, bad_bands=[2, 5])
  assert lz.shape == whole.shape == (H, W, B - 2)
  got = np.concatenate([lz.read_rows(r, min(H, r + 4)) for r in range(0, H, 4)])
  np.testing.assert_array_equal(got, whole.cube)
  assert got.dtype == np.float32
  if fmt == "mat73":
    np.testing.assert_array_equal(lz.gt, whole.gt)
  lz.close()


def test_formats_that_cannot_stream_report_their_shape(tmp_path):
  cube = _raw()
  scipy.io.savemat(tmp_path / "v5.mat", {"data": cube})
  np.savez(tmp_path / "z.npz", data=cube, map=np.zeros((H, W), np.uint8))
  for name, fmt in (("v5.mat", "mat-v5"), ("z.npz", "npz")):
    assert lazy.open_cube(tmp_path / name) is None
    assert lazy.whole_cube_shape(tmp_path / name) == ((H, W, B), fmt)


def test_non_finite_value_in_a_strip_names_pixel_and_band(tmp_path):
  cube = _raw().astype(np.float32)
  cube[11, 4, 6] = np.nan
  np.save(tmp_path / "c.npy", cube)
  with lazy.open_cube(tmp_path / "c.npy") as lz:
    lz.read_rows(0, 10)
    with pytest.raises(SceneError, match=r"row 11, col 4\), band 6"):
      lz.read_rows(10, 20)


# ------------------------------------------------------------- statistics --


def test_stream_stats_are_exact():
  cube = _scene().cube
  x = cube.reshape(-1, cube.shape[2]).astype(np.float64)
  st = stream.stream_stats(cube, 7, sample=50, seed=4, preview_pixels=100)
  np.testing.assert_allclose(st.mean, x.mean(0), rtol=1e-12)
  np.testing.assert_allclose(st.cov, np.cov(x.T, bias=True), rtol=1e-9, atol=1e-12)
  np.testing.assert_array_equal(st.band_min, x.min(0))
  np.testing.assert_array_equal(st.band_max, x.max(0))
  np.testing.assert_array_equal(st.sample_index, stream.sample_indices(x.shape[0], 50, 4))
  np.testing.assert_array_equal(st.sample_pb, cube.reshape(-1, cube.shape[2])[st.sample_index])
  s = st.preview_step
  assert s > 1
  np.testing.assert_array_equal(st.preview_hwb, cube[::s, ::s])
  for mode in ("global", "band", "none"):
    strips = np.concatenate([stream.normalize_tile(cube[r:r + 7], st, mode)
                             for r in range(0, cube.shape[0], 7)])
    np.testing.assert_array_equal(strips, io.normalize(cube, mode))


def test_plan_tiles_cover_rows_once_with_halo():
  tiles = stream.plan_tiles(23, 5, halo=2)
  assert [(t.r0, t.r1) for t in tiles] == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 23)]
  assert [(t.p0, t.p1) for t in tiles][:2] == [(0, 7), (3, 12)]
  assert tiles[-1].p0 == 18 and tiles[-1].p1 == 23
  tiles = stream.plan_tiles(23, 5, halo=3)  # a last strip of <= halo rows is merged
  assert [(t.r0, t.r1) for t in tiles] == [(0, 5), (5, 10), (10, 15), (15, 23)]
  assert [(t.p0, t.p1) for t in tiles] == [(0, 8), (2, 13), (7, 18), (12, 23)]
  with pytest.raises(ConfigError, match="does not fit"):
    stream.plan_tiles(23, 24)
  with pytest.raises(ConfigError, match="at least 3 rows"):
    stream.plan_tiles(23, 2, halo=2)


# ------------------------------------------------------------ tiled forms --


@pytest.mark.parametrize("method, params, rtol", [
    ("grx", {}, 1e-4), ("crd", {"inner": 1, "outer": 5}, 1e-4),
    ("lrx", {"inner": 1, "outer": 5, "n_components": 4}, 1e-4),
    ("lrx", {"inner": 1, "outer": 5, "n_components": None}, 1e-4),
    ("aed", {"area": 4}, 1e-4)])
def test_tiled_form_matches_whole_scene(tmp_path, method, params, rtol):
  scene = _scene()
  np.save(tmp_path / "c.npy", scene.cube)
  spec = detectors.get_method(method)
  ref = detectors.run_method(method, scene, **params)
  full = detectors.resolve_params(spec, params)
  with lazy.open_cube(tmp_path / "c.npy") as lz:
    got, st, info = streaming.detect_tiled(lz, spec, full, tmp_path, 6)
    got = np.array(got)
  assert info["tiles"] == 7 and st.bands == scene.bands
  np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * float(ref.max()))
  assert sorted(os.listdir(tmp_path)) == ["c.npy", "scores.npy"]


def test_cli_tiled_grx_and_one_strip_equal_today(tmp_path, capsys):
  scene = _scene(h=48)
  np.save(tmp_path / "c.npy", scene.cube)
  base = ["detect", str(tmp_path / "c.npy"), "--method", "grx"]
  assert cli.main(base + ["--out", str(tmp_path / "whole")]) == 0
  assert cli.main(base + ["--out", str(tmp_path / "one"), "--tile-rows", "48"]) == 0
  assert cli.main(base + ["--out", str(tmp_path / "strips"), "--tile-rows", "5",
                          "--progress"]) == 0
  err = capsys.readouterr().err
  assert "px/s" in err and "ETA" in err and "(100%)" in err
  whole = np.load(tmp_path / "whole" / "scores.npy")
  np.testing.assert_array_equal(np.load(tmp_path / "one" / "scores.npy"), whole)
  strips = np.load(tmp_path / "strips" / "scores.npy")
  np.testing.assert_allclose(strips, whole, rtol=1e-4, atol=1e-4 * float(whole.max()))
  assert (tmp_path / "strips" / "detection.png").stat().st_size > 0
  # over a tiny budget the same file is tiled automatically
  assert cli.main(base + ["--out", str(tmp_path / "auto"), "--memory-budget", "0.2M"]) == 0
  np.testing.assert_allclose(np.load(tmp_path / "auto" / "scores.npy"), whole,
                             rtol=1e-4, atol=1e-4 * float(whole.max()))


def test_tiled_constant_band_dropped_with_notice(tmp_path, capsys):
  cube = _scene().cube.copy()
  cube[:, :, 3] = 7.0
  np.save(tmp_path / "c.npy", cube)
  argv = ["detect", str(tmp_path / "c.npy"), "--method", "grx", "--tile-rows", "8",
          "--out", str(tmp_path / "o")]
  assert cli.main(argv) == 0
  assert "dropped 1 constant band(s) [3]" in capsys.readouterr().err
  ref = detectors.run_method("grx", io.Scene(np.delete(cube, 3, axis=2)))
  np.testing.assert_allclose(np.load(tmp_path / "o" / "scores.npy"), ref,
                             rtol=1e-4, atol=1e-4 * float(ref.max()))
  assert cli.main(argv + ["--keep-constant-bands"]) == 2
  err = capsys.readouterr().err
  assert "constant band(s) at file indices [3]" in err and "Traceback" not in err
  assert not (tmp_path / "o" / "scores.npy").exists()


# ----------------------------------------------------------------- errors --


def _error(argv, capsys):
  assert cli.main(argv) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1
  return err


def test_bad_tile_and_budget_errors(tmp_path, capsys):
  scene = _scene(h=20, w=12, b=8)
  np.save(tmp_path / "c.npy", scene.cube)
  scipy.io.savemat(tmp_path / "v5.mat", {"data": scene.cube})
  c = str(tmp_path / "c.npy")
  out = ["--out", str(tmp_path / "o")]
  assert "does not fit the scene of 20 rows" in _error(
      ["detect", c, "--method", "grx", "--tile-rows", "21"] + out, capsys)
  assert "at least 3 rows" in _error(
      ["detect", c, "--method", "crd", "--tile-rows", "2", "--set", "inner=1",
       "--set", "outer=5"] + out, capsys)
  assert "more than the memory budget" in _error(
      ["detect", c, "--method", "grx", "--tile-rows", "10", "--memory-budget", "0.01M"]
      + out, capsys)
  msg = _error(["detect", c, "--method", "lrasr", "--memory-budget", "0.005M"] + out, capsys)
  assert "has no tiled form" in msg and "'c'" in msg
  msg = _error(["detect", str(tmp_path / "v5.mat"), "--method", "grx",
                "--memory-budget", "0.005M"] + out, capsys)
  assert "can only be read whole" in msg and "v7.3" in msg
  assert "--memory-budget" in _error(
      ["detect", c, "--method", "grx", "--memory-budget", "lots"] + out, capsys)


def test_truncated_file_at_open_and_mid_stream(tmp_path, capsys):
  scene = _scene(h=30, w=12, b=8)
  path = tmp_path / "c.npy"
  np.save(path, scene.cube)
  full = path.read_bytes()
  path.write_bytes(full[:len(full) // 2])
  msg = _error(["detect", str(path), "--method", "grx", "--tile-rows", "5",
                "--out", str(tmp_path / "o")], capsys)
  assert "c.npy" in msg and "truncated" in msg
  # cut while the scores are being written (6 strips of statistics, then the
  # third scoring strip): the read fails and no partial scores.npy is left
  path.write_bytes(full)
  lz = lazy.open_cube(path)
  (tmp_path / "o").mkdir(exist_ok=True)
  real_read = lz._reader  # pylint: disable=protected-access
  calls = []

  def cut_then_read(r0, r1):
    calls.append(r0)
    if len(calls) == 9:
      with open(path, "r+b") as fh:
        fh.truncate(len(full) // 2)
    return real_read(r0, r1)

  lz._reader = cut_then_read  # pylint: disable=protected-access
  with lz, pytest.raises(SceneError, match="truncated"):
    streaming.detect_tiled(lz, detectors.get_method("grx"), {}, tmp_path / "o", 5)
  assert len(calls) == 9 and calls[6:] == [0, 5, 10]
  assert os.listdir(tmp_path / "o") == []
