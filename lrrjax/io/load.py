"""Reading files into arrays, loading a validated :class:`Scene`, inspection."""

from __future__ import annotations

import os
import pathlib
import re
from typing import Sequence

import numpy as np

from lrrjax.errors import SceneError
from lrrjax.io.bands import select_bands, subset_band_metadata
from lrrjax.io._util import PathLike, _check_exists, _describe, _is_real_numeric
from lrrjax.io.envi import _read_envi
from lrrjax.io.mat import MAT_EXTS, _read_mat
from lrrjax.io.npy import _read_npy, _read_npz
from lrrjax.io.scene import Scene
from lrrjax.io.validate import _check_gt, constant_bands, detect_keys, validate_cube


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
               drop_constant_bands: bool = False,
               bands: Sequence[int] | None = None,
               bad_bands: Sequence[int] | None = None) -> Scene:  # pylint: disable=redefined-outer-name
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
    bands: 0-based indices of the file's bands to keep (default all), see
      :func:`lrrjax.io.bands.parse_band_list`.
    bad_bands: 0-based indices of the file's bands to drop (dead or
      water-absorption bands); applied after ``bands``.

  Returns:
    A :class:`Scene`; ``metadata`` holds file, format, cube_key, gt_key,
    original dtype, value_range (min, max), n_anomaly, bands (the file's
    band indices kept, None = all) and dropped_bands (constant bands dropped,
    as file band indices).

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
  n_file_bands = cube.shape[2]
  kept = select_bands(n_file_bands, bands, bad_bands, where=str(path))
  if kept is not None:
    cube = cube[:, :, kept]
  file_idx = np.arange(n_file_bands) if kept is None else kept
  dropped: list[int] = []
  if drop_constant_bands:
    finite = np.isfinite(cube).all()
    const = constant_bands(cube) if finite else np.array([], int)
    if finite and 0 < const.size < cube.shape[2]:
      dropped = [int(file_idx[i]) for i in const]
      file_idx = np.delete(file_idx, const)
      cube = np.delete(cube, const, axis=2)
  validate_cube(cube, path, cube_key, band_index=None if kept is None else kept)
  meta.update(
      file=str(path), cube_key=cube_key, gt_key=found_gt_key,
      dtype=str(raw.dtype), original_shape=tuple(int(s) for s in raw.shape),
      value_range=(float(cube.min()), float(cube.max())),
      n_anomaly=None if gt_mask is None else int(gt_mask.sum()),
      bands=None if kept is None else [int(i) for i in kept],
      dropped_bands=dropped)
  if file_idx.size != n_file_bands:
    subset_band_metadata(meta, n_file_bands, file_idx)
  return Scene(cube=cube, gt=gt_mask, name=name or _stem(path),
               source=str(path), metadata=meta)


def _stem(path: pathlib.Path) -> str:
  name = path.name
  if name.lower().endswith(".hdr"):
    name = name[:-4]
  return re.sub(r"\.(mat|npy|npz|img|dat|raw|bsq|bil|bip)$", "", name,
                flags=re.IGNORECASE)


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
