"""Attribute and edge-preserving filtering detector (AED; Kang et al., IEEE TGRS 55(10), 2017).

Pipeline (one fixed setting for every scene; the paper tunes the area per scene)::

  T = first p global principal components of the cube (p = 3), each mapped to [0, 1],
  for k = 1..p:  d_k = (T_k - gamma_a(T_k)) + (phi_a(T_k) - T_k),
  d = minmax(mean_k d_k),
  score = RF(d; guide T, sigma_s, sigma_r, iterations).

``gamma_a`` / ``phi_a`` are the area opening / closing with area threshold
``a`` pixels (the attribute filters: every bright / dark connected component,
at every grey level, smaller than ``a`` pixels is flattened to its
surroundings), from scikit-image (max-tree, 4-connectivity).  ``d_k`` is thus
the height of the small bright plus dark structures of component k: small
targets stand out, large homogeneous regions vanish.  ``RF`` is the domain
transform recursive edge-preserving filter (Gastal & Oliveira, SIGGRAPH 2011)
guided by the p normalised components: it smooths the fused map inside regions
of similar spectra without blurring it across their edges.

Defaults (BUILD_NOTES.md, "Baselines as the literature runs them"): p = 3,
area a = 25, sigma_s = 5, sigma_r = 0.5, 3 iterations: the authors' demo's
setting for the scenes it does not special-case.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from lrrjax.detectors import _pca
from lrrjax.errors import ConfigError

DEFAULT_N_COMPONENTS = 3
DEFAULT_AREA = 25
DEFAULT_SIGMA_S = 5.0
DEFAULT_SIGMA_R = 0.5
DEFAULT_ITERATIONS = 3


def _minmax(a: np.ndarray, axis=None) -> np.ndarray:
  lo = np.min(a, axis=axis, keepdims=True)
  hi = np.max(a, axis=axis, keepdims=True)
  return (a - lo) / np.where(hi > lo, hi - lo, 1.0)


def attribute_residual(img_hw: np.ndarray, area: int) -> np.ndarray:
  """``(f - area_opening(f)) + (area_closing(f) - f)``, both terms >= 0.

  Args:
    img_hw: (H, W) float image.
    area: area threshold in pixels (structures with fewer pixels are removed).

  Returns:
    (H, W) float64 residual.
  """
  from skimage import morphology  # pylint: disable=import-outside-toplevel
  f = np.asarray(img_hw, dtype=np.float64)
  opened = morphology.area_opening(f, area_threshold=int(area), connectivity=1)
  closed = morphology.area_closing(f, area_threshold=int(area), connectivity=1)
  return (f - opened) + (closed - f)


def _recursive_pass(f_hw, v_hw):
  """One causal + one anti-causal first-order pass along axis 1.

  ``f[:, j] += v[:, j] * (f[:, j-1] - f[:, j])`` for j = 1..W-1, then
  ``f[:, j] += v[:, j+1] * (f[:, j+1] - f[:, j])`` for j = W-2..0.
  """
  def step(prev, xv):
    x, v = xv
    new = x + v * (prev - x)
    return new, new

  _, cols = jax.lax.scan(step, f_hw[:, 0], (f_hw.T[1:], v_hw.T[1:]))
  f_hw = jnp.concatenate([f_hw[:, :1], cols.T], axis=1)
  _, cols = jax.lax.scan(step, f_hw[:, -1], (f_hw.T[:-1][::-1], v_hw.T[1:][::-1]))
  return jnp.concatenate([cols.T[:, ::-1], f_hw[:, -1:]], axis=1)


@functools.partial(jax.jit, static_argnames=("iterations",))
def _domain_transform_rf(img_hw, guide_hwc, sigma_s, sigma_r, iterations):
  # Domain transform derivatives: 1 + sigma_s / sigma_r * sum_c |dI_c|, per step.
  dx = jnp.sum(jnp.abs(jnp.diff(guide_hwc, axis=1)), axis=2)
  dy = jnp.sum(jnp.abs(jnp.diff(guide_hwc, axis=0)), axis=2)
  dh = jnp.pad(1.0 + sigma_s / sigma_r * dx, ((0, 0), (1, 0)), constant_values=1.0)
  dv = jnp.pad(1.0 + sigma_s / sigma_r * dy, ((1, 0), (0, 0)), constant_values=1.0)
  f = img_hw
  for i in range(iterations):
    sigma_i = (sigma_s * math.sqrt(3.0) * 2.0 ** (iterations - i - 1)
               / math.sqrt(4.0 ** iterations - 1.0))
    a = jnp.exp(-math.sqrt(2.0) / sigma_i)
    f = _recursive_pass(f, a ** dh)
    f = _recursive_pass(f.T, (a ** dv).T).T
  return f


def domain_transform_rf(img_hw, guide_hwc, sigma_s: float = DEFAULT_SIGMA_S,
                        sigma_r: float = DEFAULT_SIGMA_R,
                        iterations: int = DEFAULT_ITERATIONS) -> np.ndarray:
  """Domain transform recursive filter (Gastal & Oliveira 2011).

  The guide's 1-D domain transform along a row is
  ``ct(j) = sum_{l<=j} (1 + sigma_s / sigma_r * sum_c |I_c(l) - I_c(l-1)|)``;
  iteration ``i = 0..K-1`` uses ``sigma_i = sigma_s sqrt(3) 2^(K-i-1) / sqrt(4^K - 1)``,
  ``a = exp(-sqrt(2) / sigma_i)`` and feedback ``v = a^(ct(j) - ct(j-1))``:
  a causal and an anti-causal first-order recursion along every row, then
  along every column.

  Args:
    img_hw: (H, W) image to filter.
    guide_hwc: (H, W, C) guidance image (edges to preserve).
    sigma_s: spatial standard deviation (pixels, > 0).
    sigma_r: range standard deviation (guide units, > 0).
    iterations: K >= 1.

  Returns:
    (H, W) float32.
  """
  img = jnp.asarray(img_hw, dtype=jnp.float32)
  guide = jnp.asarray(guide_hwc, dtype=jnp.float32)
  if guide.ndim == 2:
    guide = guide[..., None]
  if guide.shape[:2] != img.shape:
    raise ConfigError(f"guide of shape {guide.shape} does not match image {img.shape}")
  return np.asarray(_domain_transform_rf(img, guide, float(sigma_s), float(sigma_r),
                                         int(iterations)), dtype=np.float32)


def aed(cube_hwb, n_components: int = DEFAULT_N_COMPONENTS, area: int = DEFAULT_AREA,
        sigma_s: float = DEFAULT_SIGMA_S, sigma_r: float = DEFAULT_SIGMA_R,
        iterations: int = DEFAULT_ITERATIONS) -> np.ndarray:
  """AED scores (module docstring).

  Args:
    cube_hwb: (H, W, B) array.
    n_components: principal components filtered (1 <= p <= B).
    area: area threshold of the attribute filters, pixels (>= 1, < H * W).
    sigma_s, sigma_r: domain-transform spatial / range standard deviations (> 0).
    iterations: domain-transform iterations (>= 1).

  Returns:
    (H, W) float32 scores in [0, 1] (larger = more anomalous).

  Raises:
    ConfigError: a parameter out of range for the scene.
  """
  h, w, b = np.shape(cube_hwb)
  check_params(h, w, b, n_components, area, sigma_s, sigma_r, iterations)
  t = _pca.principal_components(cube_hwb, n_components, whiten=False)
  return aed_from_components(t, area, sigma_s, sigma_r, iterations)


def check_params(h, w, b, n_components, area, sigma_s, sigma_r, iterations) -> None:
  """ConfigError for a parameter out of range for an (h, w, b) scene."""
  from lrrjax.detectors.rx import _check_positive  # pylint: disable=import-outside-toplevel
  _pca.check_components(n_components, b)
  if isinstance(area, bool) or not isinstance(area, (int, np.integer)) or not 1 <= area < h * w:
    raise ConfigError(f"area must be an integer in [1, H*W) = [1, {h * w}), got {area!r}")
  _check_positive("sigma_s", sigma_s)
  _check_positive("sigma_r", sigma_r)
  if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 1:
    raise ConfigError(f"iterations must be an integer >= 1, got {iterations!r}")


def aed_from_components(t_hwp, area: int, sigma_s: float, sigma_r: float,
                        iterations: int) -> np.ndarray:
  """AED from the (float32, unwhitened) principal components ``t_hwp``: the
  part after the band reduction, on 2-D maps only (the tiled form runs it on
  the components gathered strip by strip)."""
  t = _minmax(np.asarray(t_hwp).astype(np.float64), axis=(0, 1))
  fused = np.mean([attribute_residual(t[..., k], area) for k in range(t.shape[2])], axis=0)
  return domain_transform_rf(_minmax(fused), t, sigma_s, sigma_r, iterations)
