"""Anomaly-free backgrounds: labelled anomalies replaced by a local background estimate.

Given a cube ``x`` (H x W x B) and its label mask ``m`` (H x W), the pixels of
``m`` dilated by ``dilate`` pixels (labels often miss a mixed edge pixel) are
replaced by a normalised convolution of the known pixels (``k = 1 - m``):

  ``s_sigma(p) = (G_sigma * (k x))(p) / (G_sigma * k)(p)``,

taken at the smallest ``sigma`` in ``SIGMAS`` for which the known weight
``(G_sigma * k)(p)`` exceeds ``MIN_WEIGHT`` (the surrounding ring first, a wider
neighbourhood for large objects), plus a noise texture: the high-pass residual
``x(q) - s_2(q)`` of a random known pixel ``q``, so the filled area has the
scene's own noise level and is neither smoother nor brighter than its ring.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage

from lrrjax.errors import SceneError

SIGMAS = (1.5, 3.0, 6.0, 12.0, 24.0, 48.0)
MIN_WEIGHT = 0.05


class Inpainted(NamedTuple):
  """An inpainted cube and the pixels that were replaced."""
  cube: np.ndarray      # (H, W, B) float32
  filled: np.ndarray    # (H, W) bool


def _smooth_known(cube_hwb: np.ndarray, known_hw: np.ndarray, sigma: float
                  ) -> tuple[np.ndarray, np.ndarray]:
  """Normalised convolution: (mean of known pixels around each pixel, weight)."""
  k = known_hw.astype(np.float32)
  num = ndimage.gaussian_filter(cube_hwb * k[..., None], (sigma, sigma, 0),
                                mode="reflect")
  den = ndimage.gaussian_filter(k, sigma, mode="reflect")
  return num / np.maximum(den, 1e-12)[..., None], den


def inpaint(cube_hwb: np.ndarray, mask_hw: np.ndarray, rng: np.random.Generator,
            dilate: int = 1) -> Inpainted:
  """Replaces the masked pixels by the local background estimate (module docstring).

  Args:
    cube_hwb: (H, W, B) cube.
    mask_hw: (H, W) bool, True = labelled anomaly.
    rng: generator for the noise-texture pixels (deterministic for a seed).
    dilate: pixels added around the mask before filling.

  Returns:
    Inpainted(cube float32, filled mask).

  Raises:
    SceneError: mask shape mismatch, or nothing left to estimate a background from.
  """
  cube = np.asarray(cube_hwb, np.float32)
  mask = np.asarray(mask_hw, bool)
  if mask.shape != cube.shape[:2]:
    raise SceneError(f"inpaint: mask shape {mask.shape} does not match cube "
                     f"{cube.shape}")
  if dilate > 0 and mask.any():
    mask = ndimage.binary_dilation(mask, iterations=dilate)
  known = ~mask
  if not known.any():
    raise SceneError("inpaint: every pixel is masked; no background to estimate")
  out = cube.copy()
  if not mask.any():
    return Inpainted(out, mask)
  fine, _ = _smooth_known(cube, known, 2.0)
  resid = cube - fine                     # high-pass noise of the known pixels
  todo = mask.copy()
  for sigma in SIGMAS:
    est, weight = _smooth_known(cube, known, sigma)
    take = todo & (weight > MIN_WEIGHT)
    out[take] = est[take]
    todo &= ~take
    if not todo.any():
      break
  if todo.any():  # masks wider than the largest sigma: global background mean
    out[todo] = cube[known].mean(axis=0)
  donors = np.flatnonzero(known.ravel())
  pick = donors[rng.integers(0, donors.size, size=int(mask.sum()))]
  out[mask] += resid.reshape(-1, cube.shape[2])[pick]
  return Inpainted(out, mask)
