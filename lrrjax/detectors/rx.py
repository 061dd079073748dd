"""Reed-Xiaoli (RX) detectors: global RX and dual-window local RX.

Global RX (Reed & Yu, IEEE TASSP 1990) scores pixel ``x_i`` by its squared
Mahalanobis distance to the scene background::

  mu = mean_i x_i,   C = (1/N) sum_i (x_i - mu)(x_i - mu)^T,
  d_i = (x_i - mu)^T C^+ (x_i - mu).

Local RX replaces ``mu`` and ``C`` with the mean and covariance of the ring of
background pixels in a dual window around each pixel (guard window excluded).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from lrrjax.detectors import _window

# Literature default dual window (guard 3x3, outer 9x9), used for every scene.
DEFAULT_INNER = 3
DEFAULT_OUTER = 9
DEFAULT_RIDGE = 1e-3


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


def _lrx_kernel(y_b, ring_nb, mask_n, ridge):
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


@jax.jit
def _local_rx(cube, rings, ridge):
  kernel = lambda y, ring, m: _lrx_kernel(y, ring, m, ridge)
  return _window.map_rings(kernel, cube, rings)


def local_rx(cube_hwb, inner: int = DEFAULT_INNER, outer: int = DEFAULT_OUTER,
             ridge: float = DEFAULT_RIDGE, chunk: int = 256) -> np.ndarray:
  """Dual-window local RX with a ridge-regularised ring covariance.

  For each pixel ``y`` with ring ``x_1..x_n`` (outer window minus guard
  window, mirror padding 'reflect' at the borders, mirrored guard pixels
  dropped, see ``_window``)::

    mu = mean_j x_j,  C = (1/n) sum_j (x_j - mu)(x_j - mu)^T,
    r = ridge * trace(C) / B,
    d(y) = (y - mu)^T (C + r I)^{-1} (y - mu).

  ``n < B`` is normal (n = 72 for 3/9 windows), so C is singular and the ridge
  is required.  Evaluated through the identity
  ``z^T (A A^T + r I)^{-1} z = min_w (||z - A w||^2 + r ||w||^2) / r`` with
  ``A = X_c / sqrt(n)`` (B x n), solved with a Cholesky factorisation of the
  n x n matrix ``A^T A + r I`` (condition number <= 1 + B / ridge thanks to the
  relative ridge, fine in float32): cost O(B n^2) per pixel instead of O(B^3).
  The score is invariant to a global scaling of the data.

  Args:
    cube_hwb: (H, W, B) array.
    inner: guard window size (odd).
    outer: outer window size (odd, > inner, <= min(H, W)).
    ridge: relative ridge (> 0).
    chunk: pixels per vectorised chunk (bounds memory to ~chunk*(B+n)*n floats).

  Returns:
    (H, W) float32 scores.

  Raises:
    ConfigError: bad window for the scene shape, or ridge <= 0.
  """
  cube, rings = _window.prepare(cube_hwb, inner, outer, chunk)
  _check_positive("ridge", ridge)
  d = _local_rx(cube, rings, float(ridge))
  return np.asarray(d, dtype=np.float32)


def _check_positive(name, value):
  from lrrjax.errors import ConfigError
  try:
    ok = float(value) > 0 and np.isfinite(float(value))
  except (TypeError, ValueError):
    ok = False
  if not ok:
    raise ConfigError(f"{name} must be a positive finite number, got {value!r}")
