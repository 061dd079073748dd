"""Global principal components of a cube (band reduction before a detector).

With the pixels ``x_i`` (B,) of the scene, ``mu = mean_i x_i`` and the
covariance ``C = (1/N) sum_i (x_i - mu)(x_i - mu)^T = V diag(e) V^T``
(eigenvalues ``e_1 >= e_2 >= ...``), the first ``p`` components of pixel ``i``
are ``t_i = V_p^T (x_i - mu)`` (p,), optionally whitened to ``t_ik / sqrt(e_k)``
(unit variance over the scene).  Computed in float64 with numpy: the covariance
of raw uint16 spectra in float32 loses the small eigenvalues (see the global RX
notes in BUILD_NOTES.md), and B <= a few hundred makes this cheap.

Each eigenvector's sign is fixed so that its largest-magnitude entry is
positive (deterministic output; Mahalanobis scores and the AED filters, which
use both area opening and closing, do not depend on it).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lrrjax.errors import ConfigError


def check_components(n_components, bands: int) -> int:
  """Validates a component count against the band count; returns it as int.

  Raises:
    ConfigError: naming ``n_components`` and the band count.
  """
  if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)):
    raise ConfigError(f"n_components must be an integer (or None for no band reduction), "
                      f"got {n_components!r}")
  if n_components < 1:
    raise ConfigError(f"n_components must be >= 1, got {n_components}")
  if n_components > bands:
    raise ConfigError(f"n_components={int(n_components)} is larger than the scene's "
                      f"band count B={bands}")
  return int(n_components)


class Basis(NamedTuple):
  """``t = (x - mean) @ proj_bp``: the first p components, whitened or not."""
  mean: np.ndarray     # (B,) float64
  proj_bp: np.ndarray  # (B, p) float64: V_p, divided per column by sqrt(e_k) if whitened


def basis(mean_b, cov_bb, n_components: int, whiten: bool = True) -> Basis:
  """The projection of :func:`principal_components` from a mean and a covariance
  (divided by N), e.g. the streamed statistics of a scene too big to load.

  Raises:
    ConfigError: bad ``n_components`` for the band count.
  """
  cov = np.asarray(cov_bb, np.float64)
  b = cov.shape[0]
  p = check_components(n_components, b)
  evals, evecs = np.linalg.eigh(cov)
  order = np.argsort(evals)[::-1][:p]
  evals, v_bp = evals[order], evecs[:, order]
  flip = np.sign(v_bp[np.argmax(np.abs(v_bp), axis=0), np.arange(p)])
  v_bp = v_bp * np.where(flip == 0, 1.0, flip)
  if whiten:
    floor = max(float(evals[0]), 0.0) * b * np.finfo(np.float64).eps
    scale = np.where(evals > floor, np.sqrt(np.maximum(evals, floor)), 1.0)
    v_bp = v_bp / scale
  return Basis(np.asarray(mean_b, np.float64), v_bp)


_BLOCK = 1 << 15  # pixels per float64 block of project (B = 200: 50 MiB)


def project(cube_hwb, b: Basis) -> np.ndarray:
  """``(x - mean) @ proj`` of every pixel, (H, W, p) float32 (float64
  arithmetic, in blocks of pixels: no float64 copy of the whole cube)."""
  cube = np.asarray(cube_hwb)
  h, w, nb = cube.shape
  x = cube.reshape(h * w, nb)
  out = np.empty((h * w, b.proj_bp.shape[1]), np.float32)
  for c0 in range(0, h * w, _BLOCK):
    out[c0:c0 + _BLOCK] = (x[c0:c0 + _BLOCK].astype(np.float64) - b.mean) @ b.proj_bp
  return out.reshape(h, w, -1)


def principal_components(cube_hwb, n_components: int, whiten: bool = True) -> np.ndarray:
  """First ``n_components`` global principal components of every pixel.

  Args:
    cube_hwb: (H, W, B) array (any real dtype).
    n_components: p, 1 <= p <= B.
    whiten: divide component k by ``sqrt(e_k)`` (unit scene variance;
      components with ``e_k <= e_1 * B * eps`` are left unscaled).

  Returns:
    (H, W, p) float32.

  Raises:
    ConfigError: bad ``n_components`` for the band count.
  """
  cube = np.asarray(cube_hwb)
  h, w, b = cube.shape
  check_components(n_components, b)
  x_nb = cube.reshape(h * w, b)
  mean = x_nb.mean(axis=0, dtype=np.float64)
  cov = np.zeros((b, b))
  for c0 in range(0, h * w, _BLOCK):
    d = x_nb[c0:c0 + _BLOCK].astype(np.float64) - mean
    cov += d.T @ d
  return project(cube, basis(mean, cov / (h * w), n_components, whiten))
