"""NumPy readers: ``.npy`` (one array) and ``.npz`` (named arrays)."""

from __future__ import annotations

import pathlib

import numpy as np

from lrrjax.errors import SceneError


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
