"""Reed-Xiaoli (RX) detectors: global RX and dual-window local RX.

Global RX (Reed & Yu, IEEE TASSP 1990) scores pixel ``x_i`` by its squared
Mahalanobis distance to the scene background::

  mu = mean_i x_i,   C = (1/N) sum_i (x_i - mu)(x_i - mu)^T,
  d_i = (x_i - mu)^T C^+ (x_i - mu).

Local RX replaces ``mu`` and ``C`` with the mean and covariance of the ring of
background pixels in a dual window around each pixel (guard window excluded),
by default after reducing the bands to the first global principal components so
that the ring outnumbers the dimensions (defaults and their sources below and in
BUILD_NOTES.md, "Baselines as the literature runs them").
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from lrrjax.detectors import _pca, _window

# Defaults fixed a priori (BUILD_NOTES.md, "Baselines as the literature runs
# them"): 20 whitened global principal components, guard 9 x 9, outer 19 x 19
# (ring n = 280 = 14 x the dimension), ridge 1e-3 x trace/p as a safeguard.
DEFAULT_INNER = 9
DEFAULT_OUTER = 19
DEFAULT_RIDGE = 1e-3
DEFAULT_N_COMPONENTS = 20
# The first configuration (all bands, guard 3, outer 9: n = 72 ring pixels for
# ~200 bands, singular ring covariance), kept reachable with these overrides.
LEGACY_LRX = {"inner": 3, "outer": 9, "ridge": 1e-3, "n_components": None}


@jax.jit
def _global_rx_n(x_nb: jax.Array) -> jax.Array:
  n, b = x_nb.shape
  xc = x_nb - jnp.mean(x_nb, axis=0)
  # Mahalanobis distance is invariant to per-band scaling; standardising the
  # bands first lowers the condition number of the SVD below.
  std = jnp.sqrt(jnp.mean(xc ** 2, axis=0))
  xs = xc / jnp.where(std > 0, std, 1.0)
  u, s, _ = jnp.linalg.svd(xs, full_matrices=False)
  tol = jnp.max(s) * b * jnp.finfo(xs.dtype).eps
  keep = (s > tol).astype(xs.dtype)
  return n * jnp.sum(keep * u ** 2, axis=1)


def global_rx(cube_hwb) -> np.ndarray:
  """Global RX: squared Mahalanobis distance to the scene mean.

  ``d_i = (x_i - mu)^T C^+ (x_i - mu)`` with ``C = X_c^T X_c / N`` (covariance
  divided by N).  Computed without forming C: with the centred, band-standardised
  data ``X_s = U S V^T`` (thin SVD, N x B), ``C_s^+ = N V S^{-2} V^T`` on the
  kept singular values, so ``d_i = N sum_{k: s_k > tol} U_ik^2`` with
  ``tol = s_max * B * eps`` (the pseudo-inverse drops directions of a singular
  covariance, e.g. constant bands).  Forming the covariance of raw uint16 data
  in float32 squares its condition number (~1e8 for the ABU scenes) and moves
  AUC(D,F) by up to 0.1; the SVD route in float32 matches a float64
  ``np.linalg.pinv`` oracle to 4 decimals of AUC on all 14 reference scenes.

  Args:
    cube_hwb: (H, W, B) array (any real dtype; computed in float32, or float64
      when given float64 with jax x64 enabled).

  Returns:
    (H, W) float32 scores.
  """
  cube = jnp.asarray(cube_hwb)
  if not jnp.issubdtype(cube.dtype, jnp.floating):
    cube = cube.astype(jnp.float32)
  h, w, b = cube.shape
  d = _global_rx_n(cube.reshape(h * w, b))
  return np.asarray(d, dtype=np.float32).reshape(h, w)


def _lrx_kernel_ring(y_b, ring_nb, mask_n, ridge):
  b = ring_nb.shape[1]
  cnt = jnp.sum(mask_n)
  mu = jnp.sum(mask_n[:, None] * ring_nb, axis=0) / cnt
  xc = (ring_nb - mu) * mask_n[:, None]  # masked entries: zero columns of A
  z = y_b - mu
  a_bn = xc.T / jnp.sqrt(cnt)
  # ridge relative to the mean eigenvalue trace(C)/B of the ring covariance.
  r = ridge * jnp.sum(a_bn ** 2) / b
  r = jnp.maximum(r, jnp.finfo(xc.dtype).tiny)
  return _window.ridge_residual_chol(a_bn, z, r) / r


def _lrx_kernel_bands(y_b, ring_nb, mask_n, ridge):
  b = ring_nb.shape[1]
  cnt = jnp.sum(mask_n)
  mu = jnp.sum(mask_n[:, None] * ring_nb, axis=0) / cnt
  xc = (ring_nb - mu) * mask_n[:, None]
  c_bb = xc.T @ xc / cnt
  r = ridge * jnp.trace(c_bb) / b
  r = jnp.maximum(r, jnp.finfo(xc.dtype).tiny)
  z = y_b - mu
  chol = jax.scipy.linalg.cho_factor(c_bb + r * jnp.eye(b, dtype=xc.dtype), lower=True)
  return z @ jax.scipy.linalg.cho_solve(chol, z)


@functools.partial(jax.jit, static_argnames=("in_band_space",))
def _local_rx(cube, rings, ridge, in_band_space):
  k = _lrx_kernel_bands if in_band_space else _lrx_kernel_ring
  kernel = lambda y, ring, m: k(y, ring, m, ridge)
  return _window.map_rings(kernel, cube, rings)


def local_rx(cube_hwb, inner: int = DEFAULT_INNER, outer: int = DEFAULT_OUTER,
             ridge: float = DEFAULT_RIDGE, n_components: int | None = DEFAULT_N_COMPONENTS,
             chunk: int = 256) -> np.ndarray:
  """Dual-window local RX with a ridge-regularised ring covariance.

  The pixels are first reduced to their first ``p = n_components`` whitened
  global principal components (``_pca.principal_components``; ``None`` keeps
  all B bands, p = B).  Then for each pixel ``y`` (p,) with ring ``x_1..x_n``
  (outer window minus guard window, mirror padding 'reflect' at the borders,
  mirrored guard pixels dropped, see ``_window``)::

    mu = mean_j x_j,  C = (1/n) sum_j (x_j - mu)(x_j - mu)^T,
    r = ridge * trace(C) / p,
    d(y) = (y - mu)^T (C + r I)^{-1} (y - mu).

  Two evaluations of the same formula, chosen by shape:

  - ``n >= p`` (the default: n = 280 ring pixels, p = 20): Cholesky of the
    p x p matrix ``C + r I``, O(n p^2 + p^3) per pixel.  C is then normally
    non-singular and the ridge only a safeguard.
  - ``n < p`` (e.g. all ~200 bands with the 3/9 window, n = 72): C is singular
    by construction and the ridge is required.  Evaluated through the identity
    ``z^T (A A^T + r I)^{-1} z = min_w (||z - A w||^2 + r ||w||^2) / r`` with
    ``A = X_c / sqrt(n)`` (p x n), solved with a Cholesky factorisation of the
    n x n matrix ``A^T A + r I`` (condition number <= 1 + p / ridge thanks to
    the relative ridge, fine in float32): O(p n^2) per pixel.

  The score is invariant to a global scaling of the data (and, with
  ``n_components``, to any invertible linear map of the bands).

  Args:
    cube_hwb: (H, W, B) array.
    inner: guard window size (odd).
    outer: outer window size (odd, > inner, <= min(H, W)).
    ridge: relative ridge (> 0).
    n_components: global principal components kept (1 <= p <= B), or None
      for all bands.
    chunk: pixels per vectorised chunk (bounds memory to ~chunk*(p+n)*n floats).

  Returns:
    (H, W) float32 scores.

  Raises:
    ConfigError: bad window for the scene shape, ridge <= 0, or n_components
      not in [1, B].
  """
  shape = np.shape(cube_hwb)
  _window.check_window(inner, outer, shape)
  _check_positive("ridge", ridge)
  if n_components is not None:
    cube_hwb = _pca.principal_components(cube_hwb, n_components, whiten=True)
  cube, rings = _window.prepare(cube_hwb, inner, outer, chunk)
  n_ring = int(outer) ** 2 - int(inner) ** 2
  d = _local_rx(cube, rings, float(ridge), in_band_space=cube.shape[2] <= n_ring)
  return np.asarray(d, dtype=np.float32)


def _check_positive(name, value):
  from lrrjax.errors import ConfigError
  try:
    ok = float(value) > 0 and np.isfinite(float(value))
  except (TypeError, ValueError):
    ok = False
  if not ok:
    raise ConfigError(f"{name} must be a positive finite number, got {value!r}")
