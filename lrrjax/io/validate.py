"""Key detection (which array is the cube, which the ground truth) and value checks."""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from lrrjax.errors import SceneError
from lrrjax.io._util import (PathLike, _describe, _fmt_indices, _fmt_values,
                             _is_real_numeric)
from lrrjax.io.scene import Scene

# Names that mark a 2-D array as ground truth. Detection is by shape and
# values; this list only breaks ties between several valid candidates (the
# earliest name wins) and flags a gt-named array whose values or shape are wrong.
GT_NAMES = (
    "map", "gt", "groundtruth", "ground_truth", "hsi_gt", "mask", "label",
    "labels", "anomaly_map", "anomaly", "anomalies", "target", "targets",
    "truth", "y",
)


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


def validate_cube(cube_hwb: np.ndarray, path: PathLike = "<cube>",
                  key: str | None = None, band_index=None) -> None:
  """Raises SceneError for non-finite pixels, a constant cube or constant bands.

  A constant band has zero variance, which makes the background covariance
  singular (global/local RX) and carries no information; such bands must be
  dropped explicitly (``drop_constant_bands``, or ``lrrjax detect``'s default).
  ``band_index`` maps the cube's bands to the file's (after a band
  selection) so that messages name file band indices.
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
    if band_index is not None:
      b = int(np.asarray(band_index)[b])
    raise SceneError(
        f"{where} has {int(bad.sum())} non-finite values (NaN: {n_nan}, Inf: "
        f"{n_inf}) in {int(bad_px.sum())} pixels; first at pixel (row {r}, col "
        f"{c}), band {b}")
  lo, hi = cube_hwb.min(axis=(0, 1)), cube_hwb.max(axis=(0, 1))
  if lo.min() == hi.max():
    raise SceneError(
        f"{where} is constant (every value is {lo.min().item()!r})")
  const = np.flatnonzero(lo == hi)
  if band_index is not None:
    const = np.asarray(band_index)[const]
  if const.size:
    raise SceneError(
        f"{where} has {const.size} constant band(s) at indices "
        f"{_fmt_indices(const)} (zero variance makes the background covariance "
        f"singular); drop them (lrrjax detect/train/info do so unless "
        f"--keep-constant-bands; --bad-bands drops any band; in Python "
        f"load_scene(..., drop_constant_bands=True))")


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
