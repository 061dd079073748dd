"""The :class:`Scene` container and cube normalisation."""

from __future__ import annotations

import dataclasses

import numpy as np

from lrrjax.errors import ConfigError, SceneError
from lrrjax.io._util import _fmt_values


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
