"""MATLAB readers: v4/v5/v7 via scipy, v7.3 (HDF5) via h5py."""

from __future__ import annotations

import pathlib

import numpy as np

from lrrjax.errors import SceneError

MAT_EXTS = (".mat",)


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
