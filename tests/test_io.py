"""Tests for lrrjax.io: formats, key detection, validation, normalisation, real scenes."""

import csv
import pathlib

import h5py
import numpy as np
import pytest
import scipy.io

from lrrjax import io
from lrrjax.errors import ConfigError, SceneError

H, W, B = 7, 5, 4  # all different, so any axis mix-up changes the shape


def _cube(dtype=np.uint16, seed=0):
  rng = np.random.default_rng(seed)
  return rng.integers(1, 200, size=(H, W, B)).astype(dtype)


def _gt():
  gt = np.zeros((H, W), np.uint8)
  gt[2, 3] = gt[5, 1] = 1
  return gt


def write_mat73(path, arrays):
  """Writes arrays as MATLAB v7.3 does: HDF5 with a 512-byte header, column-major.

  MATLAB stores an H x W x B array column-major; through h5py (row-major)
  that is the transposed array, of shape B x W x H.
  """
  classes = {"float64": "double", "float32": "single", "bool": "logical"}
  with h5py.File(path, "w", userblock_size=512) as f:
    for k, a in arrays.items():
      a = np.asarray(a)
      stored = a.astype(np.uint8) if a.dtype == bool else a
      d = f.create_dataset(k, data=stored.T)
      d.attrs["MATLAB_class"] = np.bytes_(classes.get(a.dtype.name, a.dtype.name))
  head = (b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Jan  1 "
          b"00:00:00 2025 HDF5 schema 1.00 .").ljust(116, b" ")
  head += b"\x00" * 8 + b"\x00\x02" + b"IM"
  with open(path, "r+b") as f:
    f.write(head.ljust(512, b"\x00"))


ENVI_CODES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2",
              13: "u4", 14: "i8", 15: "u8"}


def write_envi(folder, cube, interleave="bsq", order=0, code=2, offset=0,
               stem="scene", data_ext=".img", extra=""):
  """Writes an ENVI header + binary with numpy only; returns (hdr, data) paths."""
  dt = np.dtype(("<" if order == 0 else ">") + ENVI_CODES[code])
  arr = cube.astype(dt)
  arr = {"bsq": arr.transpose(2, 0, 1), "bil": arr.transpose(0, 2, 1),
         "bip": arr}[interleave]
  data = folder / (stem + data_ext)
  data.write_bytes(b"\x7f" * offset + arr.tobytes(order="C"))
  h, w, b = cube.shape
  wl = ",\n  ".join(f"{400 + 10 * i:.1f}" for i in range(b))
  hdr = folder / (stem + ".hdr")
  hdr.write_text(
      "ENVI\n"
      "description = {\n  test scene,\n  written by numpy}\n"
      f"samples = {w}\nlines   = {h}\nbands   = {b}\n"
      f"header offset = {offset}\nfile type = ENVI Standard\n"
      f"data type = {code}\ninterleave = {interleave}\n"
      f"byte order = {order}\n"
      f"wavelength units = Nanometers\nwavelength = {{\n  {wl}}}\n" + extra)
  return hdr, data


# ------------------------------------------------------------------ Scene --


def test_scene_properties_and_x_bn_row_major():
  cube = np.arange(H * W * B, dtype=np.float64).reshape(H, W, B)
  s = io.Scene(cube=cube, gt=_gt(), name="t")
  assert s.cube.dtype == np.float32 and s.gt.dtype == bool
  assert s.shape == (H, W, B) and (s.height, s.width, s.bands) == (H, W, B)
  assert s.n_pixels == H * W
  x = s.x_bn()
  assert x.shape == (B, H * W) and x.dtype == np.float32
  for r, c in [(0, 0), (0, W - 1), (3, 2), (H - 1, W - 1)]:
    np.testing.assert_array_equal(x[:, r * W + c], cube[r, c])
  np.testing.assert_array_equal(x.T.reshape(H, W, B), cube)


def test_scene_rejects_bad_shapes():
  with pytest.raises(SceneError, match=r"3-D.*\(7, 5\)"):
    io.Scene(cube=np.zeros((H, W)), name="t")
  with pytest.raises(SceneError, match=r"gt shape \(5, 7\).*\(7, 5\)"):
    io.Scene(cube=np.zeros((H, W, B)), gt=np.zeros((W, H)), name="t")
  with pytest.raises(SceneError, match=r"values \{0, 2\}"):
    io.Scene(cube=np.zeros((H, W, B)), gt=np.full((H, W), 2) * (_gt() == 0))


# ----------------------------------------------------------------- formats --


def test_mat_v5(tmp_path):
  p = tmp_path / "s.mat"
  scipy.io.savemat(p, {"data": _cube(), "map": _gt()})
  s = io.load_scene(p)
  np.testing.assert_array_equal(s.cube, _cube().astype(np.float32))
  np.testing.assert_array_equal(s.gt, _gt() == 1)
  m = s.metadata
  assert (m["format"], m["cube_key"], m["gt_key"], m["dtype"]) == (
      "mat-v5", "data", "map", "uint16")
  assert m["n_anomaly"] == 2 and m["file"] == str(p) and s.name == "s"
  assert m["value_range"] == (float(_cube().min()), float(_cube().max()))


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.float32, np.float64])
def test_mat_v73_equals_v5(tmp_path, dtype):
  cube = _cube(dtype)
  if np.issubdtype(dtype, np.floating):
    cube = cube + np.float32(0.25)
  gt = _gt() == 1
  extra = np.arange(6.0).reshape(2, 3)  # a non-square 2-D array, transposed too
  arrays = {"data": cube, "map": gt, "other": extra}
  p5, p73 = tmp_path / "v5.mat", tmp_path / "v73.mat"
  scipy.io.savemat(p5, arrays)
  write_mat73(p73, arrays)
  assert h5py.is_hdf5(p73)
  a5, _ = io.read_arrays(p5)
  a73, meta = io.read_arrays(p73)
  assert meta["format"] == "mat-v7.3"
  assert sorted(a5) == sorted(a73)
  for k in a5:
    assert a73[k].shape == a5[k].shape, k
    np.testing.assert_array_equal(a73[k] != 0 if k == "map" else a73[k],
                                  a5[k] != 0 if k == "map" else a5[k])
  s5, s73 = io.load_scene(p5), io.load_scene(p73)
  assert s73.shape == (H, W, B)
  np.testing.assert_array_equal(s73.cube, s5.cube)
  np.testing.assert_array_equal(s73.gt, s5.gt)
  assert s73.metadata["dtype"] == s5.metadata["dtype"] == np.dtype(dtype).name


def test_npy_with_separate_gt(tmp_path):
  p = tmp_path / "cube.npy"
  np.save(p, _cube(np.float32))
  s = io.load_scene(p)
  assert s.gt is None and s.shape == (H, W, B) and s.metadata["format"] == "npy"
  s = io.load_scene(p, gt=_gt())
  np.testing.assert_array_equal(s.gt, _gt() == 1)
  gp = tmp_path / "gt.npy"
  np.save(gp, _gt())
  s = io.load_scene(p, gt=gp)
  assert s.metadata["n_anomaly"] == 2
  with pytest.raises(SceneError, match=r"gt=.*shape \(5, 7\).*\(7, 5\)"):
    io.load_scene(p, gt=np.zeros((W, H)))


def test_npz_detects_like_mat(tmp_path):
  p = tmp_path / "s.npz"
  np.savez(p, hsi=_cube(), hsi_gt=_gt())
  s = io.load_scene(p)
  assert (s.metadata["cube_key"], s.metadata["gt_key"]) == ("hsi", "hsi_gt")
  assert s.metadata["format"] == "npz" and s.gt.sum() == 2


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
@pytest.mark.parametrize("order", [0, 1])
def test_envi_interleave_and_byte_order(tmp_path, interleave, order):
  cube = _cube(np.int16) - 100
  hdr, data = write_envi(tmp_path, cube, interleave, order, code=2)
  for path in (hdr, data):  # header or binary path
    s = io.load_scene(path)
    np.testing.assert_array_equal(s.cube, cube.astype(np.float32))
    assert s.metadata["interleave"] == interleave
    assert s.metadata["byte_order"] == order and s.name == "scene"
  assert s.metadata["wavelength"] == [400.0 + 10 * i for i in range(B)]


@pytest.mark.parametrize("code", sorted(ENVI_CODES))
def test_envi_data_types(tmp_path, code):
  cube = _cube(np.float64)
  if ENVI_CODES[code][0] in "if":
    cube -= 100
  if ENVI_CODES[code][0] == "f":
    cube += 0.5
  hdr, _ = write_envi(tmp_path, cube, "bip", order=1, code=code)
  s = io.load_scene(hdr)
  np.testing.assert_array_equal(s.cube, cube.astype(np.float32))
  assert s.metadata["dtype"] == np.dtype(ENVI_CODES[code]).name
  assert s.metadata["envi_data_type"] == code


def test_envi_offset_data_file_field_and_no_extension(tmp_path):
  cube = _cube()
  hdr, data = write_envi(tmp_path, cube, "bil", code=12, offset=37,
                         data_ext="", extra="data file = other.bin\n")
  data.rename(tmp_path / "other.bin")
  np.testing.assert_array_equal(io.load_scene(hdr).cube, cube)
  (tmp_path / "other.bin").rename(data)  # no 'data file' match: stem, no extension
  hdr.write_text(hdr.read_text().replace("data file = other.bin\n", ""))
  np.testing.assert_array_equal(io.load_scene(hdr).cube, cube)
  np.testing.assert_array_equal(io.load_scene(data).cube, cube)


def test_envi_header_parsing_multiline():
  text = ("ENVI\n; a comment\ndescription = {\n  two\n  lines }\n"
          "Band Names = { a,\n b ,\n c}\nsamples = 3\n")
  h = io.parse_envi_header(text)
  assert h["description"] == "two lines"
  assert h["band names"] == ["a", "b", "c"] and h["samples"] == "3"
  with pytest.raises(SceneError, match="not an ENVI header"):
    io.parse_envi_header("samples = 3\n", "x.hdr")
  with pytest.raises(SceneError, match=r"x.hdr: unclosed.*'wavelength'"):
    io.parse_envi_header("ENVI\nwavelength = {1,\n2\n", "x.hdr")


def test_envi_errors(tmp_path):
  cube = _cube()
  hdr, data = write_envi(tmp_path, cube, code=12)
  full = data.read_bytes()
  data.write_bytes(full[:-10])
  with pytest.raises(SceneError, match=rf"{data}.*truncated.*{len(full) - 10} "
                     rf"bytes, expected {len(full)}"):
    io.load_scene(hdr)
  data.write_bytes(full + b"xx")
  with pytest.raises(SceneError, match="larger than the header says"):
    io.load_scene(hdr)
  data.unlink()
  with pytest.raises(SceneError, match=rf"{hdr}: ENVI data file not found"):
    io.load_scene(hdr)
  data.write_bytes(full)
  text = hdr.read_text()
  for old, new, msg in [("data type = 12", "data type = 6", "complex"),
                        ("data type = 12", "data type = 7", "unknown ENVI data type 7"),
                        ("interleave = bsq", "interleave = xyz", "interleave 'xyz'"),
                        ("byte order = 0", "byte order = 2", "byte order must be"),
                        (f"bands   = {B}\n", "", "lacks required field 'bands'"),
                        ("samples = 5", "samples = five", "'samples'.*not an integer")]:
    hdr.write_text(text.replace(old, new))
    with pytest.raises(SceneError, match=msg):
      io.load_scene(hdr)


# ------------------------------------------------------------ key detection --


@pytest.mark.parametrize("names", [("data", "map"), ("hsi", "hsi_gt"),
                                   ("data", "groundtruth"), ("X", "mask"),
                                   ("cube", "anything")])
def test_detection_by_shape_not_name(tmp_path, names):
  p = tmp_path / "s.npz"
  np.savez(p, **{names[0]: _cube(), names[1]: _gt(),
                 "vector": np.arange(B), "dem": np.arange(H * W).reshape(H, W)})
  s = io.load_scene(p)
  assert (s.metadata["cube_key"], s.metadata["gt_key"]) == names


@pytest.mark.parametrize("gt,expected", [
    (_gt().astype(bool), 2), (_gt() * 255, 2), (np.zeros((H, W), np.uint8), 0),
    (_gt().astype(np.float64), 2)])
def test_gt_value_forms(tmp_path, gt, expected):
  p = tmp_path / "s.npz"
  np.savez(p, data=_cube(), truth=gt)
  s = io.load_scene(p)
  assert s.gt.dtype == bool and int(s.gt.sum()) == expected
  np.testing.assert_array_equal(s.gt, gt != 0)


def test_no_gt_and_non_gt_2d_arrays(tmp_path):
  p = tmp_path / "s.npz"
  np.savez(p, data=_cube(), dem=np.arange(H * W).reshape(H, W),
           small=np.zeros((2, 2)))
  s = io.load_scene(p)
  assert s.gt is None and s.metadata["gt_key"] is None
  assert s.metadata["n_anomaly"] is None


def test_two_cubes_is_ambiguous_and_lists_every_key(tmp_path):
  p = tmp_path / "s.npz"
  np.savez(p, a=_cube(), b=_cube(np.float32), map=_gt())
  with pytest.raises(SceneError) as e:
    io.load_scene(p)
  msg = str(e.value)
  assert str(p) in msg and "ambiguous cube" in msg and "key=" in msg
  for part in ["'a' (7, 5, 4) uint16", "'b' (7, 5, 4) float32",
               "'map' (7, 5) uint8"]:
    assert part in msg
  s = io.load_scene(p, key="b")
  assert s.metadata["cube_key"] == "b" and s.metadata["gt_key"] == "map"


def test_two_gt_candidates(tmp_path):
  p = tmp_path / "s.npz"
  np.savez(p, data=_cube(), foo=_gt(), bar=_gt()[::-1].copy())
  with pytest.raises(SceneError) as e:
    io.load_scene(p)
  msg = str(e.value)
  assert "ambiguous ground truth" in msg and "gt_key=" in msg and str(p) in msg
  for part in ["'data' (7, 5, 4) uint16", "'foo' (7, 5) uint8", "'bar' (7, 5) uint8"]:
    assert part in msg
  assert io.load_scene(p, gt_key="bar").gt[H - 1 - 2, 3]
  # a preferred name breaks the tie; earlier in GT_NAMES wins
  np.savez(p, data=_cube(), foo=_gt(), mask=_gt()[::-1].copy())
  assert io.load_scene(p).metadata["gt_key"] == "mask"
  np.savez(p, data=_cube(), map=_gt(), mask=_gt()[::-1].copy())
  assert io.load_scene(p).metadata["gt_key"] == "map"


def test_key_errors(tmp_path):
  p = tmp_path / "s.npz"
  np.savez(p, data=_cube(), map=_gt())
  with pytest.raises(SceneError, match=r"key 'nope' not found.*'data' \(7, 5, 4\)"):
    io.load_scene(p, key="nope")
  with pytest.raises(SceneError, match=r"key 'map' has shape \(7, 5\)"):
    io.load_scene(p, key="map")
  with pytest.raises(SceneError, match=r"gt key 'nope' not found.*'map' \(7, 5\)"):
    io.load_scene(p, gt_key="nope")
  with pytest.raises(SceneError, match="either gt= or gt_key="):
    io.load_scene(p, gt_key="map", gt=_gt())


# ---------------------------------------------------------------- bad input --


def test_missing_file_and_unknown_format(tmp_path):
  with pytest.raises(SceneError, match=rf"{tmp_path / 'nope.mat'}: file not found"):
    io.load_scene(tmp_path / "nope.mat")
  p = tmp_path / "s.txt"
  p.write_text("hello")
  with pytest.raises(SceneError, match=rf"{p}: unknown scene format.*'.txt'"):
    io.load_scene(p)
  with pytest.raises(SceneError, match="is a directory"):
    io.load_scene(tmp_path)


def _truncate(p, n=None):
  b = p.read_bytes()
  p.write_bytes(b[:len(b) // 2 if n is None else n])


def test_truncated_and_corrupt_files(tmp_path):
  arrays = {"data": np.random.default_rng(0).random((H, W, B)), "map": _gt()}
  cases = []
  p = tmp_path / "v5.mat"
  scipy.io.savemat(p, arrays)
  _truncate(p)
  cases.append((p, "cannot read MATLAB file"))
  p = tmp_path / "junk.mat"
  p.write_bytes(b"not a mat file" * 20)
  cases.append((p, "cannot read MATLAB file"))
  p = tmp_path / "v73.mat"
  write_mat73(p, arrays)
  _truncate(p, 3000)
  cases.append((p, "cannot read MATLAB"))
  p = tmp_path / "s.npz"
  np.savez(p, **arrays)
  _truncate(p)
  cases.append((p, "cannot read .npz"))
  p = tmp_path / "s.npy"
  np.save(p, arrays["data"])
  _truncate(p)
  cases.append((p, "cannot read .npy"))
  p = tmp_path / "obj.npz"
  np.savez(p, data=np.array([{"a": 1}], dtype=object))
  cases.append((p, "cannot read .npz"))
  for path, msg in cases:
    with pytest.raises(SceneError, match=msg) as e:
      io.load_scene(path)
    assert str(path) in str(e.value), path


def test_no_3d_array(tmp_path):
  p = tmp_path / "s.mat"
  scipy.io.savemat(p, {"x": np.zeros((H * W, B)), "map": _gt()})
  with pytest.raises(SceneError, match=rf"{p}: no 3-D numeric array.*'x' "
                     rf"\(35, 4\) float64"):
    io.load_scene(p)


def test_non_finite_pixels(tmp_path):
  cube = _cube(np.float32)
  cube[2, 3, 1] = np.nan
  cube[4, 0, 2] = np.inf
  cube[4, 0, 3] = np.nan
  p = tmp_path / "s.npz"
  np.savez(p, data=cube)
  with pytest.raises(SceneError) as e:
    io.load_scene(p)
  msg = str(e.value)
  assert f"{p}: key 'data' (7, 5, 4)" in msg
  assert "3 non-finite values (NaN: 2, Inf: 1) in 2 pixels" in msg
  assert "first at pixel (row 2, col 3), band 1" in msg


def test_constant_band_error_and_dropping(tmp_path):
  cube = _cube(np.float32)
  cube[:, :, 1] = 5.0
  cube[:, :, 3] = 0.0
  p = tmp_path / "s.npz"
  np.savez(p, data=cube, map=_gt())
  with pytest.raises(SceneError) as e:
    io.load_scene(p)
  msg = str(e.value)
  assert f"{p}: key 'data' (7, 5, 4)" in msg
  assert "2 constant band(s) at indices [1, 3]" in msg
  assert "drop_constant_bands=True" in msg
  s = io.load_scene(p, drop_constant_bands=True)
  assert s.shape == (H, W, 2) and s.metadata["dropped_bands"] == [1, 3]
  np.testing.assert_array_equal(s.cube, cube[:, :, [0, 2]])
  # the helper on a Scene built directly
  s2 = io.drop_constant_bands(io.Scene(cube=cube, gt=_gt(), name="t",
                                       metadata={"wavelength": [1, 2, 3, 4]}))
  np.testing.assert_array_equal(s2.cube, s.cube)
  assert s2.metadata["dropped_bands"] == [1, 3]
  assert s2.metadata["wavelength"] == [1, 3]
  assert io.drop_constant_bands(s) is s
  np.testing.assert_array_equal(io.constant_bands(cube), [1, 3])


def test_constant_cube(tmp_path):
  p = tmp_path / "s.npz"
  np.savez(p, data=np.full((H, W, B), 3, np.int16))
  for drop in (False, True):
    with pytest.raises(SceneError, match=rf"{p}: key 'data' \(7, 5, 4\) is "
                       r"constant \(every value is 3.0\)"):
      io.load_scene(p, drop_constant_bands=drop)
  with pytest.raises(SceneError, match="constant in every band"):
    io.drop_constant_bands(io.Scene(cube=np.ones((H, W, B)), name="t"))


def test_gt_of_another_shape(tmp_path):
  p = tmp_path / "s.mat"
  scipy.io.savemat(p, {"data": _cube(), "map": _gt().T})
  with pytest.raises(SceneError) as e:
    io.load_scene(p)
  msg = str(e.value)
  assert f"{p}: gt key 'map' has shape (5, 7)" in msg
  assert "(7, 5, 4) needs H x W = (7, 5)" in msg and "transposed" in msg
  np.savez(tmp_path / "t.npz", data=_cube(), other=np.zeros((3, 3), np.uint8))
  with pytest.raises(SceneError, match=r"gt key 'other' has shape \(3, 3\)"):
    io.load_scene(tmp_path / "t.npz", gt_key="other")


def test_non_binary_gt(tmp_path):
  gt = _gt().astype(np.int32)
  gt[0, 0] = 2
  gt[1, 1] = 7
  p = tmp_path / "s.npz"
  np.savez(p, data=_cube(), map=gt)
  with pytest.raises(SceneError) as e:
    io.load_scene(p)
  msg = str(e.value)
  assert f"{p}: gt key 'map' (7, 5) is not binary" in msg
  assert "4 distinct values {0, 1, 2, 7}" in msg
  np.savez(p, data=_cube(), labels=_gt() + 1)
  with pytest.raises(SceneError, match=r"'labels' \(7, 5\) has values \{1, 2\}"):
    io.load_scene(p)
  np.savez(p, data=_cube(), anything=_gt() + 1)  # not gt-named: no gt
  assert io.load_scene(p).gt is None
  with pytest.raises(SceneError, match=r"'anything' \(7, 5\) has values \{1, 2\}"):
    io.load_scene(p, gt_key="anything")


# --------------------------------------------------------------- normalize --


def test_normalize_modes():
  rng = np.random.default_rng(1)
  x = rng.normal(100, 30, (H, W, B)) * np.array([1, 2, 5, 10])
  x_before = x.copy()
  g = io.normalize(x)
  assert g.dtype == np.float32 and g.shape == x.shape
  assert g.min() == 0 and g.max() == 1
  np.testing.assert_allclose(g, (x - x.min()) / (x.max() - x.min()), atol=1e-6)
  bnd = io.normalize(x, "band")
  np.testing.assert_array_equal(bnd.min(axis=(0, 1)), np.zeros(B))
  np.testing.assert_array_equal(bnd.max(axis=(0, 1)), np.ones(B))
  lo, hi = x.min(axis=(0, 1)), x.max(axis=(0, 1))
  np.testing.assert_allclose(bnd, (x - lo) / (hi - lo), atol=1e-6)
  n = io.normalize(x, "none")
  assert n.dtype == np.float32
  np.testing.assert_array_equal(n, x.astype(np.float32))
  np.testing.assert_array_equal(x, x_before)  # pure
  # affine invariance: global under one map, band under per-band maps
  np.testing.assert_allclose(io.normalize(3 * x + 7), g, atol=1e-6)
  scale = np.array([0.5, 2, 3, 100])
  np.testing.assert_allclose(io.normalize(x * scale - scale, "band"), bnd,
                             atol=1e-6)
  # spectral shape kept by global: band ratios of differences unchanged
  d, dg = x[0, 0] - x[1, 1], g[0, 0] - g[1, 1]
  np.testing.assert_allclose(dg / dg[0], d / d[0], rtol=1e-4)


def test_normalize_constant_and_unknown_mode():
  x = np.ones((H, W, B))
  assert not io.normalize(x).any() and not io.normalize(x, "band").any()
  y = _cube(np.float64)
  y[:, :, 2] = 4.0
  b = io.normalize(y, "band")
  assert not b[:, :, 2].any() and b[:, :, 0].max() == 1
  with pytest.raises(ConfigError, match="unknown mode 'zscore'"):
    io.normalize(x, "zscore")


# ----------------------------------------------------------------- folders --


def test_inspect_file(tmp_path):
  p = tmp_path / "s.npz"
  np.savez(p, data=_cube(), map=_gt(), v=np.arange(3.0))
  info = io.inspect_file(p)
  assert (info["cube_key"], info["gt_key"], info["n_anomaly"]) == ("data", "map", 2)
  assert info["shape"] == (H, W, B) and info["error"] is None
  rows = {r["key"]: r for r in info["arrays"]}
  assert rows["data"]["shape"] == (H, W, B) and rows["data"]["dtype"] == "uint16"
  assert (rows["data"]["min"], rows["data"]["max"]) == (
      int(_cube().min()), int(_cube().max()))
  assert (rows["v"]["min"], rows["v"]["max"]) == (0.0, 2.0)
  np.savez(p, a=_cube(), b=_cube())
  info = io.inspect_file(p)
  assert info["cube_key"] is None and "ambiguous cube" in info["error"]
  assert len(info["arrays"]) == 2
  with pytest.raises(SceneError, match="file not found"):
    io.inspect_file(tmp_path / "none.mat")


def test_list_scenes_and_data_dir(tmp_path, monkeypatch):
  for n in ["b.mat", "a.npz", "c.hdr", "c.img", "d.npy", "README.md",
            "SOURCES.tsv", ".hidden.mat", "README.mat"]:
    (tmp_path / n).write_bytes(b"")
  (tmp_path / "sub.mat").mkdir()
  assert [p.name for p in io.list_scenes(tmp_path)] == ["a.npz", "b.mat", "c.hdr"]
  with pytest.raises(SceneError, match="scene folder not found"):
    io.list_scenes(tmp_path / "nope")
  assert [p.name for p in io.list_scenes(tmp_path, "c,a")] == ["c.hdr", "a.npz"]
  assert [p.name for p in io.list_scenes(tmp_path, ["b"])] == ["b.mat"]
  assert len(io.list_scenes(tmp_path, "")) == 3
  with pytest.raises(SceneError, match=r"\['zz'\] not found.*available: \['a', 'b', 'c'\]"):
    io.list_scenes(tmp_path, "a,zz")
  monkeypatch.setenv("LRRJAX_DATA_DIR", str(tmp_path))
  assert io.data_dir() == tmp_path
  monkeypatch.delenv("LRRJAX_DATA_DIR")
  repo = pathlib.Path(__file__).resolve().parents[1]
  assert io.data_dir() == (repo / ".." / "shared" / "data").resolve()


# ------------------------------------------------------------- real scenes --


def _sources(data_dir):
  with open(data_dir / "SOURCES.tsv", newline="") as f:
    return {r["file"]: r for r in csv.DictReader(f, delimiter="\t")}


@pytest.mark.realdata
def test_real_scenes_match_sources(data_dir):
  rows = _sources(data_dir)
  files = io.list_scenes(data_dir)
  assert sorted(p.name for p in files) == sorted(rows) and len(files) == 14
  for p in files:
    r = rows[p.name]
    s = io.load_scene(p)
    assert "x".join(map(str, s.shape)) == r["shape"], p.name
    assert s.metadata["dtype"] == r["dtype"], p.name
    assert (s.metadata["cube_key"], s.metadata["gt_key"]) == (
        r["cube_key"], r["gt_key"])
    assert int(s.gt.sum()) == s.metadata["n_anomaly"] == int(r["n_anomaly"])
    assert s.cube.dtype == np.float32 and s.name == p.stem


@pytest.mark.realdata
def test_real_scene_v73_roundtrip_and_inspect(data_dir, tmp_path):
  src = data_dir / "hydice-urban.mat"
  raw = scipy.io.loadmat(src)
  p = tmp_path / "hydice73.mat"
  write_mat73(p, {"data": raw["data"], "map": raw["map"]})
  s5, s73 = io.load_scene(src), io.load_scene(p)
  np.testing.assert_array_equal(s73.cube, s5.cube)
  np.testing.assert_array_equal(s73.gt, s5.gt)
  info = io.inspect_file(src)
  assert info["n_anomaly"] == 17 and info["shape"] == (80, 100, 162)


def test_scene_x_bn_normalises_without_changing_the_scene():
  from lrrjax import synthetic
  scene = synthetic.make_scene(9, 10, 5, n_targets=1, seed=0)
  raw = scene.cube.copy()
  x = scene.x_bn("band")
  np.testing.assert_array_equal(x, io.normalize(raw, "band").reshape(90, 5).T)
  np.testing.assert_array_equal(scene.x_bn(), raw.reshape(90, 5).T)
  np.testing.assert_array_equal(scene.cube, raw)
  with pytest.raises(ConfigError):
    scene.x_bn("zscore")
