"""Scene loading, validation and normalisation.

A :class:`Scene` holds one hyperspectral cube ``cube`` of shape ``(H, W, B)``
(float32) and an optional ground-truth mask ``gt`` of shape ``(H, W)`` (bool,
True = anomaly). Pixels are ordered row-major (raster):
``x_bn = cube.reshape(H * W, B).T``.

Supported files (:func:`load_scene`):

* MATLAB ``.mat`` v4/v5/v7 (``scipy.io.loadmat``) and v7.3 (HDF5, ``h5py``).
  MATLAB writes arrays column-major, so h5py sees every v7.3 array with its
  axes reversed; they are transposed back so that a v7.3 file yields exactly
  the arrays ``scipy.io.loadmat`` gives for the same variables in a v5 file.
* NumPy ``.npy`` (the cube only; pass ``gt=`` separately) and ``.npz``
  (named arrays, detected like ``.mat`` variables).
* ENVI: a text ``.hdr`` header and a raw binary data file (BSQ, BIL or BIP
  interleave, either byte order, ``header offset``). Either path is accepted.

Which array is the cube and which the ground truth is decided by shape, not by
name (see :func:`detect_keys`); ``key=`` and ``gt_key=`` override it.
Every unusable input raises :class:`lrrjax.errors.SceneError` naming the
file, the key and the shape at fault.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from typing import Any, Mapping

import numpy as np

from lrrjax.errors import ConfigError, SceneError

PathLike = str | os.PathLike

# Names that mark a 2-D array as ground truth. Detection is by shape and
# values; this list only breaks ties between several valid candidates (the
# earliest name wins) and flags a gt-named array whose values or shape are wrong.
GT_NAMES = (
    "map", "gt", "groundtruth", "ground_truth", "hsi_gt", "mask", "label",
    "labels", "anomaly_map", "anomaly", "anomalies", "target", "targets",
    "truth", "y",
)

MAT_EXTS = (".mat",)
ENVI_DATA_EXTS = (".img", ".dat", ".raw", ".bsq", ".bil", ".bip", "")
SCENE_EXTS = (".mat", ".npz", ".hdr")

# ENVI "data type" codes -> numpy kind (byte order applied separately).
ENVI_DTYPES = {
    1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8",
    15: "u8",
}
ENVI_COMPLEX = {6: "complex64", 9: "complex128"}

_MAX_LISTED = 12


# ------------------------------------------------------------------- Scene --


@dataclasses.dataclass(frozen=True)
class Scene:
  """One hyperspectral scene.

  Attributes:
    cube: ``(H, W, B)`` float32 cube (raw sensor values unless normalised).
    gt: ``(H, W)`` bool anomaly mask (True = anomaly) or None.
    name: short name (default: the file stem).
    source: where it came from (file path, or ``synthetic``).
    metadata: free-form facts (original dtype, keys used, value range, ...).
  """

  cube: np.ndarray
  gt: np.ndarray | None = None
  name: str = "scene"
  source: str = ""
  metadata: dict = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    cube = np.asarray(self.cube)
    where = f"scene {self.name!r}" + (f" ({self.source})" if self.source else "")
    if cube.ndim != 3:
      raise SceneError(
          f"{where}: cube must be 3-D (H, W, B); got shape {cube.shape}")
    if min(cube.shape) == 0:
      raise SceneError(f"{where}: cube shape {cube.shape} is empty")
    if not (np.issubdtype(cube.dtype, np.number) or cube.dtype == bool) or (
        np.issubdtype(cube.dtype, np.complexfloating)):
      raise SceneError(f"{where}: cube dtype {cube.dtype} is not real numeric")
    object.__setattr__(self, "cube", cube.astype(np.float32, copy=False))
    if self.gt is not None:
      gt = np.asarray(self.gt)
      if gt.shape != cube.shape[:2]:
        raise SceneError(
            f"{where}: gt shape {gt.shape} does not match the cube's H x W "
            f"{cube.shape[:2]} (cube shape {cube.shape})")
      if gt.dtype != bool:
        values = np.unique(gt)
        if not np.all(np.isin(values, (0, 1))):
          raise SceneError(
              f"{where}: gt must be bool or 0/1; got values {_fmt_values(values)}")
        gt = gt != 0
      object.__setattr__(self, "gt", gt)
    object.__setattr__(self, "metadata", dict(self.metadata))

  @property
  def shape(self) -> tuple[int, int, int]:
    """``(H, W, B)``."""
    return tuple(self.cube.shape)

  @property
  def height(self) -> int:
    return self.cube.shape[0]

  @property
  def width(self) -> int:
    return self.cube.shape[1]

  @property
  def bands(self) -> int:
    return self.cube.shape[2]

  @property
  def n_pixels(self) -> int:
    """``N = H * W``."""
    return self.cube.shape[0] * self.cube.shape[1]

  def x_bn(self, mode: str = "none") -> np.ndarray:
    """Pixels as columns: ``(B, N)`` float32, ``x_bn[:, r * W + c] = cube[r, c]``.

    ``mode`` normalises the cube first (:func:`normalize`: "global", "band" or
    "none"); the scene itself is never changed.
    """
    cube = self.cube if mode == "none" else normalize(self.cube, mode)
    return np.ascontiguousarray(cube.reshape(self.n_pixels, self.bands).T)


# --------------------------------------------------------------- helpers --


def _fmt_values(values: np.ndarray, limit: int = 10) -> str:
  vals = [v.item() if hasattr(v, "item") else v for v in values[:limit]]
  more = f", ... ({len(values)} distinct)" if len(values) > limit else ""
  return "{" + ", ".join(repr(v) for v in vals) + more + "}"


def _fmt_indices(idx, limit: int = 20) -> str:
  idx = [int(i) for i in idx]
  more = f", ... ({len(idx)} in all)" if len(idx) > limit else ""
  return "[" + ", ".join(map(str, idx[:limit])) + more + "]"


def _describe(arrays: Mapping[str, np.ndarray]) -> str:
  """One line per array: ``'key' (shape) dtype``."""
  if not arrays:
    return "(no arrays)"
  return ", ".join(
      f"{k!r} {tuple(np.shape(v))} {getattr(v, 'dtype', type(v).__name__)}"
      for k, v in arrays.items())


def _is_real_numeric(a: np.ndarray) -> bool:
  return (isinstance(a, np.ndarray) and a.dtype != object
          and (np.issubdtype(a.dtype, np.integer)
               or np.issubdtype(a.dtype, np.floating) or a.dtype == bool))


def _check_exists(path: pathlib.Path) -> None:
  if not path.exists():
    raise SceneError(f"{path}: file not found")
  if path.is_dir():
    raise SceneError(f"{path}: is a directory, not a scene file")


# ---------------------------------------------------------------- readers --


def _read_mat(path: pathlib.Path) -> tuple[dict[str, np.ndarray], dict]:
  """All numeric variables of a MATLAB file, v7.3 transposed to scipy layout."""
  import h5py  # pylint: disable=import-outside-toplevel
  import scipy.io  # pylint: disable=import-outside-toplevel

  try:
    is_h5 = h5py.is_hdf5(str(path))
  except Exception:  # pylint: disable=broad-except
    is_h5 = False
  if is_h5:
    return _read_mat73(path), {"format": "mat-v7.3"}
  try:
    raw = scipy.io.loadmat(str(path), mat_dtype=False)
  except Exception as e:  # pylint: disable=broad-except
    raise SceneError(
        f"{path}: cannot read MATLAB file (truncated, corrupt or not a .mat "
        f"file): {type(e).__name__}: {e}") from e
  arrays = {k: v for k, v in raw.items()
            if not k.startswith("__") and isinstance(v, np.ndarray)}
  return arrays, {"format": "mat-v5"}


def _read_mat73(path: pathlib.Path) -> dict[str, np.ndarray]:
  """Reads a v7.3 (HDF5) MAT file; every array is transposed (``a.T``).

  MATLAB stores an ``H x W x B`` array column-major, which HDF5 (row-major)
  reports as ``B x W x H``; reversing all axes restores MATLAB's order, the
  same array ``scipy.io.loadmat`` returns for a v5 file.
  """
  import h5py  # pylint: disable=import-outside-toplevel

  arrays: dict[str, np.ndarray] = {}
  try:
    with h5py.File(str(path), "r") as f:

      def visit(name, obj):
        if not isinstance(obj, h5py.Dataset):
          return
        if name.startswith("#"):  # '#refs#', '#subsystem#'
          return
        mclass = obj.attrs.get("MATLAB_class", b"")
        if isinstance(mclass, bytes):
          mclass = mclass.decode("ascii", "replace")
        if mclass in ("char", "cell", "struct", "function_handle"):
          return
        if obj.attrs.get("MATLAB_empty", 0):
          return
        if obj.dtype.kind not in "biuf":
          return
        data = obj[()]
        if mclass == "logical":
          data = data.astype(bool)
        arrays[name] = np.asarray(data).T

      f.visititems(visit)
  except SceneError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise SceneError(
        f"{path}: cannot read MATLAB v7.3 (HDF5) file (truncated or corrupt): "
        f"{type(e).__name__}: {e}") from e
  return arrays


def _read_npy(path: pathlib.Path) -> tuple[dict[str, np.ndarray], dict]:
  try:
    with open(path, "rb") as fh:  # own handle: np.load leaks it on errors
      arr = np.load(fh, allow_pickle=False)
  except Exception as e:  # pylint: disable=broad-except
    raise SceneError(
        f"{path}: cannot read .npy file (truncated, corrupt or pickled "
        f"objects): {type(e).__name__}: {e}") from e
  return {"array": arr}, {"format": "npy"}


def _read_npz(path: pathlib.Path) -> tuple[dict[str, np.ndarray], dict]:
  try:
    with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
      arrays = {k: z[k] for k in z.files}
  except Exception as e:  # pylint: disable=broad-except
    raise SceneError(
        f"{path}: cannot read .npz file (truncated, corrupt or pickled "
        f"objects): {type(e).__name__}: {e}") from e
  return arrays, {"format": "npz"}


def parse_envi_header(text: str, path: PathLike = "<header>") -> dict[str, Any]:
  """Parses ENVI header text into ``{lower-case key: str | list[str]}``.

  ``key = value`` lines; a value in braces may span lines and becomes a list
  of its comma-separated, stripped items (``description`` stays one string).
  Lines starting with ``;`` are comments.

  Raises:
    SceneError: the text does not start with ``ENVI`` or a brace is unclosed.
  """
  lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
  i = 0
  while i < len(lines) and not lines[i].strip():
    i += 1
  if i >= len(lines) or lines[i].strip().upper() != "ENVI":
    raise SceneError(f"{path}: not an ENVI header (first line must be 'ENVI')")
  out: dict[str, Any] = {}
  i += 1
  while i < len(lines):
    line = lines[i]
    i += 1
    if not line.strip() or line.lstrip().startswith(";") or "=" not in line:
      continue
    key, value = line.split("=", 1)
    key = " ".join(key.strip().lower().split())
    value = value.strip()
    if value.startswith("{"):
      while "}" not in value:
        if i >= len(lines):
          raise SceneError(f"{path}: unclosed '{{' in the value of {key!r}")
        value += "\n" + lines[i]
        i += 1
      inner = value[1:value.rindex("}")]
      if key == "description":
        out[key] = " ".join(inner.split())
      else:
        out[key] = [s.strip() for s in inner.split(",") if s.strip()]
    else:
      out[key] = value
  return out


def _envi_paths(path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path | None]:
  """(header, data file or None when not found) for a .hdr or binary path."""
  if path.suffix.lower() == ".hdr":
    return path, None
  for hdr in (path.with_name(path.name + ".hdr"), path.with_suffix(".hdr"),
              path.with_suffix(".HDR")):
    if hdr.exists() and hdr != path:
      return hdr, path
  raise SceneError(
      f"{path}: unknown scene format (extension {path.suffix or '(none)'!r}) "
      f"and no ENVI header {path.with_suffix('.hdr').name!r} next to it; "
      f"supported: .mat (v5/v7.3), .npy, .npz, ENVI .hdr + binary")


def _envi_int(header: dict, key: str, hdr: pathlib.Path, default=None) -> int:
  if key not in header:
    if default is None:
      raise SceneError(f"{hdr}: ENVI header lacks required field {key!r}")
    return default
  try:
    return int(str(header[key]).strip())
  except ValueError as e:
    raise SceneError(
        f"{hdr}: ENVI field {key!r} = {header[key]!r} is not an integer") from e


def _read_envi(path: pathlib.Path) -> tuple[dict[str, np.ndarray], dict]:
  hdr, data_path = _envi_paths(path)
  _check_exists(hdr)
  try:
    text = hdr.read_text(encoding="utf-8", errors="replace")
  except OSError as e:
    raise SceneError(f"{hdr}: cannot read ENVI header: {e}") from e
  header = parse_envi_header(text, hdr)
  samples = _envi_int(header, "samples", hdr)
  lines = _envi_int(header, "lines", hdr)
  bands = _envi_int(header, "bands", hdr)
  code = _envi_int(header, "data type", hdr)
  offset = _envi_int(header, "header offset", hdr, default=0)
  order = _envi_int(header, "byte order", hdr, default=0)
  interleave = str(header.get("interleave", "bsq")).strip().lower()
  if code in ENVI_COMPLEX:
    raise SceneError(
        f"{hdr}: ENVI data type {code} ({ENVI_COMPLEX[code]}) is complex; only "
        f"real data types {sorted(ENVI_DTYPES)} are supported")
  if code not in ENVI_DTYPES:
    raise SceneError(
        f"{hdr}: unknown ENVI data type {code}; supported {sorted(ENVI_DTYPES)}")
  if order not in (0, 1):
    raise SceneError(f"{hdr}: ENVI byte order must be 0 or 1, got {order}")
  if interleave not in ("bsq", "bil", "bip"):
    raise SceneError(
        f"{hdr}: ENVI interleave {interleave!r} not one of bsq, bil, bip")
  if min(samples, lines, bands) <= 0 or offset < 0:
    raise SceneError(
        f"{hdr}: bad ENVI dimensions samples={samples} lines={lines} "
        f"bands={bands} header offset={offset}")
  if data_path is None:
    candidates = []
    if "data file" in header:
      df = pathlib.Path(str(header["data file"]).strip())
      candidates.append(df if df.is_absolute() else hdr.parent / df)
    candidates += [hdr.with_suffix(e) for e in ENVI_DATA_EXTS]
    candidates += [hdr.with_suffix(e.upper()) for e in ENVI_DATA_EXTS if e]
    data_path = next((c for c in candidates if c.is_file()), None)
    if data_path is None:
      raise SceneError(
          f"{hdr}: ENVI data file not found; tried "
          + ", ".join(c.name for c in candidates))
  _check_exists(data_path)
  dtype = np.dtype(("<" if order == 0 else ">") + ENVI_DTYPES[code])
  count = samples * lines * bands
  need = offset + count * dtype.itemsize
  size = data_path.stat().st_size
  if size != need:
    what = "truncated" if size < need else "larger than the header says"
    raise SceneError(
        f"{data_path}: ENVI data file is {what}: {size} bytes, expected {need} "
        f"(header offset {offset} + {lines} lines x {samples} samples x "
        f"{bands} bands x {dtype.itemsize} bytes, from {hdr.name})")
  try:
    flat = np.fromfile(str(data_path), dtype=dtype, count=count, offset=offset)
  except Exception as e:  # pylint: disable=broad-except
    raise SceneError(f"{data_path}: cannot read ENVI data: {e}") from e
  if interleave == "bsq":
    cube = flat.reshape(bands, lines, samples).transpose(1, 2, 0)
  elif interleave == "bil":
    cube = flat.reshape(lines, bands, samples).transpose(0, 2, 1)
  else:
    cube = flat.reshape(lines, samples, bands)
  cube = np.ascontiguousarray(cube.astype(dtype.newbyteorder("="), copy=False))
  meta = {"format": "envi", "interleave": interleave, "byte_order": order,
          "envi_data_type": code, "header_file": str(hdr),
          "data_file": str(data_path)}
  if "wavelength" in header and len(header["wavelength"]) == bands:
    try:
      meta["wavelength"] = [float(w) for w in header["wavelength"]]
    except ValueError:
      pass
  if "wavelength units" in header:
    meta["wavelength_units"] = str(header["wavelength units"])
  if "band names" in header:
    meta["band_names"] = list(header["band names"])
  return {"cube": cube}, meta


def read_arrays(path: PathLike) -> tuple[dict[str, np.ndarray], dict]:
  """Reads every numeric array of a file, keyed by name, plus format facts.

  ``.npy`` gives one array named ``array``; ENVI one named ``cube``; v7.3
  struct fields are named ``struct/field``.

  Raises:
    SceneError: missing file, unknown format, unreadable/corrupt contents.
  """
  path = pathlib.Path(path)
  _check_exists(path)
  ext = path.suffix.lower()
  if ext in MAT_EXTS:
    arrays, meta = _read_mat(path)
  elif ext == ".npy":
    arrays, meta = _read_npy(path)
  elif ext == ".npz":
    arrays, meta = _read_npz(path)
  else:
    arrays, meta = _read_envi(path)  # .hdr or a binary with a header beside it
  return arrays, meta


# --------------------------------------------------------- key detection --


def _gt_name_rank(key: str) -> int:
  leaf = key.rsplit("/", 1)[-1].lower()
  return GT_NAMES.index(leaf) if leaf in GT_NAMES else len(GT_NAMES)


def _gt_values_ok(a: np.ndarray) -> tuple[bool, np.ndarray]:
  """(is a valid mask, distinct values). Valid: bool, or values within {0, v}, v > 0."""
  if a.dtype == bool:
    return True, np.unique(a)
  if not _is_real_numeric(a) or not np.all(np.isfinite(a)):
    return False, np.unique(a) if _is_real_numeric(a) else np.array([])
  values = np.unique(a)
  nonzero = values[values != 0]
  return (len(nonzero) <= 1 and np.all(nonzero > 0)), values


def detect_keys(arrays: Mapping[str, np.ndarray], path: PathLike = "<arrays>",
                key: str | None = None,
                gt_key: str | None = None) -> tuple[str, str | None]:
  """Chooses the cube key and the ground-truth key (or None).

  Rules (by shape and values, not by name):

  * cube: the single real numeric 3-D array (``key=`` overrides). Zero or
    several 3-D arrays is an error listing every array.
  * gt: among 2-D arrays of the cube's ``H x W``, those that are bool or whose
    distinct values lie in ``{0, v}`` for one ``v > 0`` (so 0/1, 0/255 and an
    all-zero mask qualify; nonzero = anomaly). One candidate: it is the gt.
    Several: the one whose name comes first in :data:`GT_NAMES` wins; if none
    or several share the best name, an error lists every array. None: a
    gt-named array of the right shape but other values is a "non-binary gt"
    error, a gt-named 2-D array of another shape a "gt shape" error; otherwise
    the scene has no gt. ``gt_key=`` overrides and is validated the same way.

  Raises:
    SceneError: naming the file and listing keys with shapes and dtypes.
  """
  listing = _describe(arrays)
  if key is not None:
    if key not in arrays:
      raise SceneError(f"{path}: key {key!r} not found; arrays: {listing}")
    a = arrays[key]
    if np.ndim(a) != 3 or not _is_real_numeric(a) or a.dtype == bool:
      raise SceneError(
          f"{path}: key {key!r} has shape {np.shape(a)} dtype "
          f"{getattr(a, 'dtype', '?')}; the cube must be a real numeric 3-D "
          f"(H, W, B) array")
    cube_key = key
  else:
    cubes = [k for k, a in arrays.items()
             if np.ndim(a) == 3 and _is_real_numeric(a) and a.dtype != bool]
    if not cubes:
      raise SceneError(
          f"{path}: no 3-D numeric array (H, W, B) found; arrays: {listing}")
    if len(cubes) > 1:
      raise SceneError(
          f"{path}: ambiguous cube: {len(cubes)} 3-D arrays "
          f"({', '.join(map(repr, cubes))}); pass key=... to choose. "
          f"Arrays: {listing}")
    cube_key = cubes[0]
  hw = np.shape(arrays[cube_key])[:2]
  cube_shape = np.shape(arrays[cube_key])

  if gt_key is not None:
    if gt_key not in arrays:
      raise SceneError(f"{path}: gt key {gt_key!r} not found; arrays: {listing}")
    _check_gt(arrays[gt_key], cube_shape, path, gt_key)
    return cube_key, gt_key

  two_d = {k: a for k, a in arrays.items() if k != cube_key and np.ndim(a) == 2}
  right = {k: a for k, a in two_d.items() if np.shape(a) == hw}
  cands = [k for k, a in right.items() if _gt_values_ok(a)[0]]
  if len(cands) == 1:
    return cube_key, cands[0]
  if len(cands) > 1:
    ranks = sorted((_gt_name_rank(k), k) for k in cands)
    if ranks[0][0] < len(GT_NAMES) and ranks[0][0] != ranks[1][0]:
      return cube_key, ranks[0][1]
    raise SceneError(
        f"{path}: ambiguous ground truth: {len(cands)} binary {hw} arrays "
        f"({', '.join(map(repr, cands))}) and no single preferred name; pass "
        f"gt_key=... to choose. Arrays: {listing}")
  named = [k for k in two_d if _gt_name_rank(k) < len(GT_NAMES)]
  for k in named:  # a gt-named array that fails: say why instead of ignoring it
    _check_gt(arrays[k], cube_shape, path, k)
  return cube_key, None


def _check_gt(a: np.ndarray, cube_shape, path, gt_key) -> np.ndarray:
  """Validates a gt array against the cube; returns it as bool (nonzero = anomaly)."""
  a = np.asarray(a)
  hw = tuple(cube_shape[:2])
  if a.ndim == 3 and a.shape[2] == 1:
    a = a[:, :, 0]
  if a.shape != hw:
    hint = ""
    if a.shape == tuple(cube_shape[1:]) or a.shape == hw[::-1]:
      hint = " (is the cube band-first, or the gt transposed?)"
    raise SceneError(
        f"{path}: gt key {gt_key!r} has shape {a.shape} but the cube "
        f"{tuple(cube_shape)} needs H x W = {hw}{hint}")
  if not _is_real_numeric(a):
    raise SceneError(
        f"{path}: gt key {gt_key!r} {a.shape} has non-numeric dtype {a.dtype}")
  ok, values = _gt_values_ok(a)
  if not ok:
    if len(values) > 2:
      raise SceneError(
          f"{path}: gt key {gt_key!r} {a.shape} is not binary: "
          f"{len(values)} distinct values {_fmt_values(values)}; expected "
          f"0 = background and one nonzero value = anomaly")
    raise SceneError(
        f"{path}: gt key {gt_key!r} {a.shape} has values {_fmt_values(values)}; "
        f"expected bool or 0 = background and one positive value = anomaly")
  return a != 0


# -------------------------------------------------------------- validation --


def validate_cube(cube_hwb: np.ndarray, path: PathLike = "<cube>",
                  key: str | None = None) -> None:
  """Raises SceneError for non-finite pixels, a constant cube or constant bands.

  A constant band has zero variance, which makes the background covariance
  singular (global/local RX) and carries no information; such bands must be
  dropped explicitly (``drop_constant_bands``).
  """
  where = f"{path}: key {key!r} {cube_hwb.shape}" if key else (
      f"{path}: cube {cube_hwb.shape}")
  finite = np.isfinite(cube_hwb)
  if not finite.all():
    bad = ~finite
    n_nan = int(np.isnan(cube_hwb).sum())
    n_inf = int(bad.sum()) - n_nan
    bad_px = bad.any(axis=2)
    r, c = (int(v) for v in np.argwhere(bad_px)[0])
    b = int(np.argmax(bad[r, c]))
    raise SceneError(
        f"{where} has {int(bad.sum())} non-finite values (NaN: {n_nan}, Inf: "
        f"{n_inf}) in {int(bad_px.sum())} pixels; first at pixel (row {r}, col "
        f"{c}), band {b}")
  lo, hi = cube_hwb.min(axis=(0, 1)), cube_hwb.max(axis=(0, 1))
  if lo.min() == hi.max():
    raise SceneError(
        f"{where} is constant (every value is {lo.min().item()!r})")
  const = np.flatnonzero(lo == hi)
  if const.size:
    raise SceneError(
        f"{where} has {const.size} constant band(s) at indices "
        f"{_fmt_indices(const)} (zero variance makes the background covariance "
        f"singular); drop them with load_scene(..., drop_constant_bands=True) "
        f"or lrrjax.io.drop_constant_bands(scene)")


def constant_bands(cube_hwb: np.ndarray) -> np.ndarray:
  """Indices of bands whose value is the same at every pixel."""
  flat = cube_hwb.reshape(-1, cube_hwb.shape[-1])
  return np.flatnonzero(flat.min(axis=0) == flat.max(axis=0))


def drop_constant_bands(scene: Scene) -> Scene:
  """Returns ``scene`` without its constant bands (unchanged when none).

  ``metadata['dropped_bands']`` lists the original indices removed;
  per-band metadata lists (``wavelength``, ``band_names``) are subset too.

  Raises:
    SceneError: every band is constant.
  """
  const = constant_bands(scene.cube)
  if const.size == 0:
    return scene
  if const.size == scene.bands:
    raise SceneError(
        f"{scene.source or scene.name}: cube {scene.shape} is constant in every "
        f"band; nothing left after dropping constant bands")
  keep = np.setdiff1d(np.arange(scene.bands), const)
  meta = dict(scene.metadata)
  meta["dropped_bands"] = sorted(
      set(meta.get("dropped_bands", [])) | set(int(i) for i in const))
  for k in ("wavelength", "band_names"):
    if isinstance(meta.get(k), list) and len(meta[k]) == scene.bands:
      meta[k] = [meta[k][i] for i in keep]
  return dataclasses.replace(scene, cube=scene.cube[:, :, keep], metadata=meta)


# ------------------------------------------------------------------ loading --


def _load_gt_arg(gt, cube_shape, path) -> tuple[np.ndarray, str]:
  if isinstance(gt, (str, os.PathLike)):
    arrays, _ = read_arrays(gt)
    arrays = {k: (a[:, :, 0] if np.ndim(a) == 3 and np.shape(a)[2] == 1 else a)
              for k, a in arrays.items()}
    two = [k for k, a in arrays.items() if np.ndim(a) == 2]
    if len(two) != 1:
      raise SceneError(
          f"{gt}: expected exactly one 2-D ground-truth array, found "
          f"{len(two)}; arrays: {_describe(arrays)}")
    return _check_gt(arrays[two[0]], cube_shape, gt, two[0]), f"{gt}:{two[0]}"
  return _check_gt(np.asarray(gt), cube_shape, path, "gt="), "gt="


def load_scene(path: PathLike, key: str | None = None,
               gt_key: str | None = None, name: str | None = None, *,
               gt: np.ndarray | PathLike | None = None,
               drop_constant_bands: bool = False) -> Scene:  # pylint: disable=redefined-outer-name
  """Loads and validates one scene; the cube keeps its raw values as float32.

  Args:
    path: ``.mat`` (v5 or v7.3), ``.npy``, ``.npz``, ENVI ``.hdr`` or its
      binary data file.
    key: name of the cube array (default: the single 3-D array).
    gt_key: name of the ground-truth array (default: detected, see
      :func:`detect_keys`).
    name: scene name (default: file stem).
    gt: ground truth given separately (array, or a file holding one 2-D
      array); for ``.npy`` and ENVI, which hold only the cube.
    drop_constant_bands: drop zero-variance bands (recorded in
      ``metadata['dropped_bands']``) instead of raising.

  Returns:
    A :class:`Scene`; ``metadata`` holds file, format, cube_key, gt_key,
    original dtype, value_range (min, max), n_anomaly and dropped_bands.

  Raises:
    SceneError: the file, key, shape or values are unusable (message names them).
  """
  path = pathlib.Path(path)
  arrays, meta = read_arrays(path)
  if gt is not None and gt_key is not None:
    raise SceneError(f"{path}: pass either gt= or gt_key=, not both")
  cube_key, found_gt_key = detect_keys(
      arrays, path, key=key, gt_key=gt_key if gt is None else None)
  raw = arrays[cube_key]
  if gt is not None:
    gt_mask, found_gt_key = _load_gt_arg(gt, raw.shape, path)
  elif found_gt_key is not None:
    gt_mask = _check_gt(arrays[found_gt_key], raw.shape, path, found_gt_key)
  else:
    gt_mask = None
  cube = np.asarray(raw, dtype=np.float32)
  if np.issubdtype(raw.dtype, np.floating) or np.issubdtype(raw.dtype,
                                                              np.integer):
    if np.isfinite(raw).all() and not np.isfinite(cube).all():
      raise SceneError(
          f"{path}: key {cube_key!r} {raw.shape} {raw.dtype} overflows float32 "
          f"(max |value| {float(np.abs(raw).max())!r})")
  dropped: list[int] = []
  if drop_constant_bands:
    finite = np.isfinite(cube).all()
    const = constant_bands(cube) if finite else np.array([], int)
    if finite and 0 < const.size < cube.shape[2]:
      dropped = [int(i) for i in const]
      cube = np.delete(cube, const, axis=2)
  validate_cube(cube, path, cube_key)
  meta.update(
      file=str(path), cube_key=cube_key, gt_key=found_gt_key,
      dtype=str(raw.dtype), original_shape=tuple(int(s) for s in raw.shape),
      value_range=(float(cube.min()), float(cube.max())),
      n_anomaly=None if gt_mask is None else int(gt_mask.sum()),
      dropped_bands=dropped)
  if dropped:
    for k in ("wavelength", "band_names"):
      if isinstance(meta.get(k), list) and len(meta[k]) == raw.shape[2]:
        meta[k] = [v for i, v in enumerate(meta[k]) if i not in set(dropped)]
  return Scene(cube=cube, gt=gt_mask, name=name or _stem(path),
               source=str(path), metadata=meta)


def _stem(path: pathlib.Path) -> str:
  name = path.name
  if name.lower().endswith(".hdr"):
    name = name[:-4]
  return re.sub(r"\.(mat|npy|npz|img|dat|raw|bsq|bil|bip)$", "", name,
                flags=re.IGNORECASE)


# ------------------------------------------------------------ normalisation --


def normalize(cube_hwb: np.ndarray, mode: str = "global") -> np.ndarray:
  """Rescales a cube; returns a new float32 array.

  * ``global``: ``(x - min(x)) / (max(x) - min(x))`` over the whole cube, so
    values lie in ``[0, 1]`` and every spectrum keeps its shape (one affine
    map for all bands).
  * ``band``: the same per band ``b`` over its ``H * W`` values.
  * ``none``: ``x`` as float32.

  A zero range (constant cube or band) maps to 0. Arithmetic is float64.

  Raises:
    ConfigError: unknown ``mode``.
  """
  if mode not in ("global", "band", "none"):
    raise ConfigError(
        f"normalize: unknown mode {mode!r}; use 'global', 'band' or 'none'")
  x = np.asarray(cube_hwb)
  if mode == "none":
    return np.array(x, dtype=np.float32, copy=True)
  x = x.astype(np.float64)
  axes = None if mode == "global" else tuple(range(x.ndim - 1))
  lo = x.min(axis=axes, keepdims=True)
  span = x.max(axis=axes, keepdims=True) - lo
  out = np.where(span > 0, (x - lo) / np.where(span > 0, span, 1.0), 0.0)
  return out.astype(np.float32)


# -------------------------------------------------------------- inspection --


def inspect_file(path: PathLike) -> dict:
  """Describes a scene file for ``lrrjax info`` without validating values.

  Returns:
    ``{"file", "format", "arrays": [{"key", "shape", "dtype", "min", "max"}],
    "cube_key", "gt_key", "shape", "n_anomaly", "error"}``; ``error`` is the
    key-detection or validation message (None when the file loads cleanly).

  Raises:
    SceneError: the file is missing, of unknown format or unreadable.
  """
  path = pathlib.Path(path)
  arrays, meta = read_arrays(path)
  rows = []
  for k, a in arrays.items():
    row = {"key": k, "shape": tuple(int(s) for s in np.shape(a)),
           "dtype": str(a.dtype), "min": None, "max": None}
    if _is_real_numeric(a) and a.size:
      row["min"] = _py(np.nanmin(a)) if np.isfinite(a).any() else None
      row["max"] = _py(np.nanmax(a)) if np.isfinite(a).any() else None
    rows.append(row)
  info = {"file": str(path), "format": meta.get("format"), "arrays": rows,
          "cube_key": None, "gt_key": None, "shape": None, "n_anomaly": None,
          "error": None}
  try:
    cube_key, gt_key = detect_keys(arrays, path)
    info["cube_key"], info["gt_key"] = cube_key, gt_key
    info["shape"] = tuple(int(s) for s in arrays[cube_key].shape)
    if gt_key is not None:
      info["n_anomaly"] = int(np.count_nonzero(arrays[gt_key]))
    validate_cube(np.asarray(arrays[cube_key], np.float32), path, cube_key)
  except SceneError as e:
    info["error"] = str(e)
  return info


def _py(v):
  return v.item() if hasattr(v, "item") else v


# ---------------------------------------------------------------- folders --


def _repo_root(start: pathlib.Path) -> pathlib.Path | None:
  for p in (start, *start.parents):
    if (p / "pyproject.toml").is_file():
      return p
  return None


def data_dir() -> pathlib.Path:
  """The folder of real scenes.

  ``$LRRJAX_DATA_DIR`` if set; else ``../shared/data`` relative to the repo
  root (the folder with ``pyproject.toml``) found from this module, then from
  the working directory; else ``../shared/data`` relative to the working
  directory. The path is returned even when it does not exist.
  """
  env = os.environ.get("LRRJAX_DATA_DIR")
  if env:
    return pathlib.Path(env).expanduser()
  candidates = []
  for start in (pathlib.Path(__file__).resolve().parent,
                pathlib.Path.cwd().resolve()):
    root = _repo_root(start)
    if root is not None:
      candidates.append((root / ".." / "shared" / "data").resolve())
  candidates.append((pathlib.Path.cwd() / ".." / "shared" / "data").resolve())
  return next((c for c in candidates if c.is_dir()), candidates[0])


def list_scenes(folder: PathLike | None = None,
                names: str | list[str] | None = None) -> list[pathlib.Path]:
  """Sorted ``.mat``, ``.npz`` and ``.hdr`` files in ``folder`` (default :func:`data_dir`).

  Hidden files and README*/SOURCES* are ignored; not recursive. ``names``
  (file stems, a list or one comma-separated string; empty = all) keeps only
  those scenes, in the order given.

  Raises:
    SceneError: the folder does not exist, or a name in ``names`` is not a
      scene there.
  """
  folder = pathlib.Path(folder) if folder is not None else data_dir()
  found = _scene_files(folder)
  if not names:
    return found
  wanted = [n for n in (names.split(",") if isinstance(names, str) else names) if n]
  missing = sorted(set(wanted) - {p.stem for p in found})
  if missing:
    raise SceneError(f"scene(s) {missing} not found in {folder}; "
                     f"available: {[p.stem for p in found]}")
  by_stem = {p.stem: p for p in found}
  return [by_stem[n] for n in dict.fromkeys(wanted)]


def _scene_files(folder: pathlib.Path) -> list[pathlib.Path]:
  if not folder.is_dir():
    raise SceneError(f"{folder}: scene folder not found")
  out = []
  for p in folder.iterdir():
    stem = p.name.upper()
    if (p.is_file() and p.suffix.lower() in SCENE_EXTS
        and not p.name.startswith(".")
        and not stem.startswith(("README", "SOURCES"))):
      out.append(p)
  return sorted(out)
