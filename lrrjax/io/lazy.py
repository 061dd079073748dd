"""Lazy cubes: a scene file read one strip of rows at a time.

:func:`open_cube` opens a ``.npy``, ENVI or MATLAB v7.3 (HDF5) file without
reading its pixels and returns a :class:`LazyCube` whose
:meth:`LazyCube.read_rows` returns ``cube[r0:r1]`` as float32 (with the band
selection applied). Memory is that of one strip, whatever the file size:

* ``.npy`` (C order) and ENVI: positioned reads (``seek`` + ``readinto``) of
  the strip's bytes; BSQ reads one run per band. Reading through a memory
  map would be simpler, but every page touched stays in the process's
  resident set until the kernel needs it back, so a streamed pass over a
  3 GiB file would show 3 GiB of RSS. Fortran-order ``.npy`` is sliced
  through ``np.load(mmap_mode="r")``.
* MATLAB v7.3: an h5py hyperslab ``dset[:, :, r0:r1]`` (HDF5 holds the
  MATLAB ``H x W x B`` array as ``B x W x H``), transposed back.

MATLAB v5 and ``.npz`` files cannot be read in parts (compressed or
unindexed); :func:`open_cube` returns None for them, and
:func:`whole_cube_shape` gives their cube shape without loading it so that a
caller can refuse a file too large for memory.

Key and ground-truth detection follow :func:`lrrjax.io.detect_keys` (3-D
arrays are stood in for by zero-stride placeholders of the right shape and
dtype; 2-D arrays, ground-truth candidates, are small and read whole).
"""

from __future__ import annotations

import pathlib
import zipfile
from typing import Callable, Sequence

import numpy as np

from lrrjax.errors import SceneError
from lrrjax.io._util import PathLike, _check_exists
from lrrjax.io.bands import select_bands, subset_band_metadata
from lrrjax.io.envi import envi_layout
from lrrjax.io.load import _load_gt_arg, _stem
from lrrjax.io.mat import MAT_EXTS
from lrrjax.io.validate import _check_gt, detect_keys

GiB = float(1 << 30)


def _placeholder(shape, dtype) -> np.ndarray:
  """A read-only array of ``shape``/``dtype`` that uses no memory (stride 0)."""
  return np.broadcast_to(np.zeros((), dtype=dtype), tuple(int(s) for s in shape))


class LazyCube:
  """A cube on disk, read as row strips.

  Attributes:
    path: the file.
    name: scene name (default the file stem).
    file_shape: ``(H, W, B_file)`` as stored.
    kept: the file band indices read (sorted), or None for all.
    dtype: dtype on disk.
    gt: ``(H, W)`` bool ground truth or None.
    metadata: format facts (as :func:`lrrjax.io.load_scene` records them).
  """

  def __init__(self, path: pathlib.Path, file_shape, dtype,
               reader: Callable[[int, int], np.ndarray], *, name: str,
               gt: np.ndarray | None, metadata: dict,
               kept: np.ndarray | None = None, closer=None):
    self.path = path
    self.file_shape = tuple(int(s) for s in file_shape)
    self.dtype = np.dtype(dtype)
    self._reader = reader
    self._closer = closer
    self.name = name
    self.gt = gt
    self.metadata = metadata
    self.kept = kept

  @property
  def shape(self) -> tuple[int, int, int]:
    """``(H, W, B)`` after the band selection."""
    h, w, b = self.file_shape
    return (h, w, b if self.kept is None else len(self.kept))

  @property
  def nbytes_f32(self) -> int:
    """Bytes of the whole (selected) cube as float32."""
    h, w, b = self.shape
    return h * w * b * 4

  @property
  def source(self) -> str:
    return str(self.path)

  def band_index(self) -> np.ndarray:
    """File band index of each selected band."""
    return (np.arange(self.file_shape[2]) if self.kept is None
            else np.asarray(self.kept))

  def with_bands(self, kept: np.ndarray | None) -> "LazyCube":
    """The same file with another selection (``kept`` = file band indices)."""
    return LazyCube(self.path, self.file_shape, self.dtype, self._reader,
                    name=self.name, gt=self.gt, metadata=dict(self.metadata),
                    kept=None if kept is None else np.asarray(kept),
                    closer=self._closer)

  def read_rows(self, r0: int, r1: int) -> np.ndarray:
    """``cube[r0:r1]`` as float32 ``(r1 - r0, W, B)``, selected bands only.

    Raises:
      SceneError: rows out of range, a short read (the file was truncated
        after it was opened) or a read error; non-finite values (naming the
        first pixel and band) or a float32 overflow.
    """
    h, w, _ = self.file_shape
    if not 0 <= r0 < r1 <= h:
      raise SceneError(f"{self.path}: rows [{r0}, {r1}) out of range for H = {h}")
    try:
      raw = self._reader(r0, r1)
    except SceneError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise SceneError(
          f"{self.path}: cannot read rows {r0}..{r1 - 1} (truncated or corrupt "
          f"file?): {type(e).__name__}: {e}") from e
    if self.kept is not None:
      raw = raw[:, :, self.kept]
    tile = np.asarray(raw, dtype=np.float32)
    finite = np.isfinite(tile)
    if not finite.all():
      bad = np.argwhere(~finite)[0]
      r, c, b = int(bad[0]) + r0, int(bad[1]), int(self.band_index()[bad[2]])
      over = bool(np.isfinite(np.asarray(raw)[tuple(bad)]))
      what = "overflows float32" if over else "is not finite (NaN/Inf)"
      raise SceneError(
          f"{self.path}: cube {self.file_shape}: value at pixel (row {r}, col "
          f"{c}), band {b} {what}")
    return tile

  def read_all(self) -> np.ndarray:
    """The whole (selected) cube as float32."""
    return self.read_rows(0, self.file_shape[0])

  def close(self) -> None:
    """Closes the file (a LazyCube is also a context manager)."""
    if self._closer is not None:
      self._closer()
      self._closer = None

  def __enter__(self) -> "LazyCube":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


# ---------------------------------------------------------------- readers --


def _read_exact(fh, pos: int, count: int, dtype: np.dtype, path) -> np.ndarray:
  out = np.empty(count, dtype=dtype)
  fh.seek(pos)
  got = fh.readinto(memoryview(out).cast("B"))
  if got != out.nbytes:
    raise SceneError(
        f"{path}: file truncated: read {got} of {out.nbytes} bytes at offset "
        f"{pos} (the file changed or was cut after it was opened)")
  return out


def _open_npy(path: pathlib.Path):
  try:
    mm = np.load(path, mmap_mode="r", allow_pickle=False)
  except Exception as e:  # pylint: disable=broad-except
    raise SceneError(
        f"{path}: cannot read .npy file (truncated, corrupt or pickled "
        f"objects): {type(e).__name__}: {e}") from e
  if mm.ndim != 3:
    raise SceneError(f"{path}: .npy array has shape {mm.shape}; the cube must be "
                     f"3-D (H, W, B)")
  shape, dtype = mm.shape, mm.dtype
  h, w, b = shape
  if mm.flags.f_contiguous and not mm.flags.c_contiguous:
    fortran = mm  # column-major: rows are not contiguous, read through the memmap
    return shape, dtype, (lambda r0, r1: np.array(fortran[r0:r1])), None
  offset = int(mm.offset)
  del mm
  fh = open(path, "rb")  # pylint: disable=consider-using-with
  row = w * b

  def read(r0, r1):
    a = _read_exact(fh, offset + r0 * row * dtype.itemsize, (r1 - r0) * row,
                    dtype, path)
    return a.reshape(r1 - r0, w, b)

  return shape, dtype, read, fh.close


def _open_envi(path: pathlib.Path):
  lay = envi_layout(path)
  h, w, b = lay.lines, lay.samples, lay.bands
  dt, off, size = lay.dtype, lay.offset, lay.dtype.itemsize
  fh = open(lay.data_file, "rb")  # pylint: disable=consider-using-with

  def read(r0, r1):
    n = r1 - r0
    if lay.interleave == "bip":
      a = _read_exact(fh, off + r0 * w * b * size, n * w * b, dt, lay.data_file)
      a = a.reshape(n, w, b)
    elif lay.interleave == "bil":
      a = _read_exact(fh, off + r0 * b * w * size, n * b * w, dt, lay.data_file)
      a = a.reshape(n, b, w).transpose(0, 2, 1)
    else:  # bsq: one run of n * w values per band
      a = np.empty((n, w, b), dtype=dt)
      for k in range(b):
        a[:, :, k] = _read_exact(fh, off + (k * h * w + r0 * w) * size, n * w,
                                 dt, lay.data_file).reshape(n, w)
    return a.astype(dt.newbyteorder("="), copy=False)

  return (h, w, b), dt.newbyteorder("="), read, fh.close, dict(lay.meta)


def _mat73_arrays(f) -> tuple[dict[str, np.ndarray], dict]:
  """Placeholders for 3-D datasets, 2-D datasets read whole (transposed)."""
  import h5py  # pylint: disable=import-outside-toplevel
  arrays, dsets = {}, {}

  def visit(name, obj):
    if not isinstance(obj, h5py.Dataset) or name.startswith("#"):
      return
    mclass = obj.attrs.get("MATLAB_class", b"")
    if isinstance(mclass, bytes):
      mclass = mclass.decode("ascii", "replace")
    if mclass in ("char", "cell", "struct", "function_handle"):
      return
    if obj.attrs.get("MATLAB_empty", 0) or obj.dtype.kind not in "biuf":
      return
    dtype = bool if mclass == "logical" else obj.dtype
    if obj.ndim == 3:
      arrays[name] = _placeholder(obj.shape[::-1], dtype)
      dsets[name] = obj
    elif obj.ndim <= 2:
      data = obj[()]
      arrays[name] = np.asarray(data.astype(bool) if mclass == "logical" else data).T

  f.visititems(visit)
  return arrays, dsets


def open_cube(path: PathLike, key: str | None = None, gt_key: str | None = None,
              name: str | None = None, *, gt=None,
              bands: Sequence[int] | None = None,
              bad_bands: Sequence[int] | None = None) -> LazyCube | None:
  """Opens a scene file for strip-wise reading, or None if its format cannot stream.

  Arguments as :func:`lrrjax.io.load_scene` (``bands``/``bad_bands`` are file
  band indices). No pixel is read; values are checked strip by strip in
  :meth:`LazyCube.read_rows`.

  Returns:
    A :class:`LazyCube` for ``.npy``, ENVI and MATLAB v7.3; None for MATLAB
    v5 and ``.npz`` (read them with :func:`lrrjax.io.load_scene`).

  Raises:
    SceneError: missing, truncated or unreadable file, bad keys or gt (the
      message names them).
  """
  path = pathlib.Path(path)
  _check_exists(path)
  if gt is not None and gt_key is not None:
    raise SceneError(f"{path}: pass either gt= or gt_key=, not both")
  ext = path.suffix.lower()
  meta: dict = {}
  closer = None
  if ext == ".npz":
    return None
  if ext in MAT_EXTS:
    import h5py  # pylint: disable=import-outside-toplevel
    try:
      is_h5 = h5py.is_hdf5(str(path))
    except Exception:  # pylint: disable=broad-except
      is_h5 = False
    if not is_h5:
      return None
    try:
      f = h5py.File(str(path), "r")
      arrays, dsets = _mat73_arrays(f)
    except Exception as e:  # pylint: disable=broad-except
      raise SceneError(
          f"{path}: cannot read MATLAB v7.3 (HDF5) file (truncated or corrupt): "
          f"{type(e).__name__}: {e}") from e
    cube_key, found_gt = detect_keys(arrays, path, key=key,
                                     gt_key=gt_key if gt is None else None)
    dset = dsets[cube_key]
    shape = arrays[cube_key].shape
    dtype = arrays[cube_key].dtype

    def reader(r0, r1):
      return np.asarray(dset[:, :, r0:r1]).transpose(2, 1, 0)

    closer = f.close
    meta["format"] = "mat-v7.3"
  elif ext == ".npy":
    shape, dtype, reader, closer = _open_npy(path)
    arrays, cube_key, found_gt = {"array": _placeholder(shape, dtype)}, "array", None
    meta["format"] = "npy"
    if gt_key is not None:
      raise SceneError(f"{path}: a .npy file holds only the cube; gt_key "
                       f"{gt_key!r} does not apply (pass gt=)")
  else:
    shape, dtype, reader, closer, meta = _open_envi(path)
    arrays, cube_key, found_gt = {"cube": _placeholder(shape, dtype)}, "cube", None
    if gt_key is not None:
      raise SceneError(f"{path}: an ENVI file holds only the cube; gt_key "
                       f"{gt_key!r} does not apply (pass gt=)")
  if gt is not None:
    gt_mask, found_gt = _load_gt_arg(gt, shape, path)
  elif found_gt is not None:
    gt_mask = _check_gt(arrays[found_gt], shape, path, found_gt)
  else:
    gt_mask = None
  kept = select_bands(shape[2], bands, bad_bands, where=str(path))
  meta.update(file=str(path), cube_key=cube_key, gt_key=found_gt,
              dtype=str(np.dtype(dtype)), original_shape=tuple(int(s) for s in shape),
              n_anomaly=None if gt_mask is None else int(gt_mask.sum()),
              bands=None if kept is None else [int(i) for i in kept],
              dropped_bands=[])
  if kept is not None:
    subset_band_metadata(meta, shape[2], kept)
  return LazyCube(path, shape, dtype, reader, name=name or _stem(path),
                  gt=gt_mask, metadata=meta, kept=kept, closer=closer)


def array_cube(cube_hwb: np.ndarray, *, name: str, source: PathLike,
               gt: np.ndarray | None = None, metadata: dict | None = None) -> LazyCube:
  """A cube already in memory, read as strips like a file (a format that can
  only be loaded whole, scored by a tiled form whose whole-scene path would not
  fit the memory budget). ``source`` names it in messages."""
  arr = np.asarray(cube_hwb)
  return LazyCube(pathlib.Path(source), arr.shape, arr.dtype,
                  lambda r0, r1: arr[r0:r1], name=name, gt=gt,
                  metadata=dict(metadata or {}))


def whole_cube_shape(path: PathLike, key: str | None = None
                     ) -> tuple[tuple[int, ...], str] | None:
  """``(shape, format)`` of the cube in a MATLAB v5 or ``.npz`` file, without loading it.

  The cube is the single 3-D array (or ``key``). Returns None when it cannot
  be told cheaply (no single 3-D array; the loader will then explain).
  """
  path = pathlib.Path(path)
  shapes: dict[str, tuple] = {}
  try:
    if path.suffix.lower() == ".npz":
      fmt = "npz"
      with zipfile.ZipFile(path) as z:
        for info in z.infolist():
          if not info.filename.endswith(".npy"):
            continue
          with z.open(info) as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
              shp, _, _ = np.lib.format.read_array_header_1_0(fh)
            else:
              shp, _, _ = np.lib.format.read_array_header_2_0(fh)
          shapes[info.filename[:-4]] = tuple(shp)
    else:
      import scipy.io  # pylint: disable=import-outside-toplevel
      fmt = "mat-v5"
      shapes = {n: tuple(s) for n, s, _ in scipy.io.whosmat(str(path))}
  except Exception:  # pylint: disable=broad-except
    return None  # unreadable: load_scene gives the precise error
  if key is not None:
    return (shapes[key], fmt) if key in shapes else None
  three = [s for s in shapes.values() if len(s) == 3]
  return (three[0], fmt) if len(three) == 1 else None


def fmt_gib(nbytes: float) -> str:
  """``nbytes`` in GiB with 2 decimals."""
  return f"{nbytes / GiB:.2f} GiB"
