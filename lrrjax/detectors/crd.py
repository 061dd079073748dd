"""Collaborative-representation detector (CRD; Li & Du, IEEE TGRS 53(3), 2015).

Each pixel ``y`` (B,) is represented by the ring of background pixels
``X_s = [x_1 .. x_n]`` (B x n) of a dual window around it (mirror padding,
mirrored guard pixels dropped, see ``lrrjax.detectors._window``)::

  alpha = argmin_a ||y - X_s a||^2 + lam ||Gamma_y a||^2
        = (X_s^T X_s + lam Gamma_y^2)^{-1} X_s^T y,
  Gamma_y = diag(||y - x_1||_2, ..., ||y - x_n||_2),
  score(y) = ||y - X_s alpha||_2.

Scale: the data are first mapped to [0, 1] by the global min and max of the
cube (``normalize=True``, the default), as in the public reference codes that
normalise.  ``lam`` is dimensionless: under a global scaling ``x -> s x`` both
``X_s^T X_s`` and ``Gamma_y^2`` scale by ``s^2``, so alpha, and the score up to
the factor s, do not change; only the offset matters (no intercept), which the
[0, 1] map fixes at the scene minimum.  lam = 1e-6 (the value the reference
implementations use) makes the Tikhonov term a tie-breaker: the score is then
essentially the distance of ``y`` from the span of its ring, which is
informative only while the ring has fewer pixels than there are bands
(n < B); the default window keeps n = 48 < B for every scene.

Windows: default guard 11 x 11, outer 13 x 13 (BUILD_NOTES.md, "Baselines as
the literature runs them"); the first configuration (3, 9) is ``LEGACY_CRD``.

Numerics: with lam = 1e-6 the normal matrix ``X_s^T X_s + lam Gamma^2`` has
condition number ~1e9..1e11 for real scenes (highly correlated neighbouring
spectra), beyond float32 (Cholesky fails).  We therefore solve the augmented
least-squares problem ``[X_s; sqrt(lam) Gamma] a ~ [y; 0]`` by QR, whose
condition number is the square root of that, and read the residual off
``(I - Q Q^T) [y; 0]`` (no triangular solve).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from lrrjax.detectors import _window
from lrrjax.detectors.rx import _check_positive

DEFAULT_INNER = 11
DEFAULT_OUTER = 13
DEFAULT_LAM = 1e-6
# The first configuration (guard 3, outer 9), kept reachable with these overrides.
LEGACY_CRD = {"inner": 3, "outer": 9, "lam": 1e-6, "normalize": True}


def _crd_kernel(y_b, ring_nb, mask_n, lam):
  # masked ring entries (mirrored guard pixels) become zero columns with a
  # unit penalty, so their coefficient is 0 and they do not take part.
  gamma_sq = jnp.where(mask_n > 0, jnp.sum((ring_nb - y_b) ** 2, axis=1), 1.0)
  fit, _ = _window.ridge_residual_sq((ring_nb * mask_n[:, None]).T, y_b, lam * gamma_sq)
  return jnp.sqrt(fit)


@functools.partial(jax.jit, static_argnames=("normalize",))
def _crd(cube, rings, lam, normalize):
  if normalize:
    lo, hi = jnp.min(cube), jnp.max(cube)
    cube = (cube - lo) / jnp.where(hi > lo, hi - lo, 1.0)
  kernel = lambda y, ring, m: _crd_kernel(y, ring, m, lam)
  return _window.map_rings(kernel, cube, rings)


def crd(cube_hwb, inner: int = DEFAULT_INNER, outer: int = DEFAULT_OUTER,
        lam: float = DEFAULT_LAM, normalize: bool = True, chunk: int = 256) -> np.ndarray:
  """CRD scores: the collaborative-representation residual of each pixel.

  Args:
    cube_hwb: (H, W, B) array.
    inner: guard window size (odd).
    outer: outer window size (odd, > inner, <= min(H, W)).
    lam: Tikhonov weight (> 0), relative to data scaled to [0, 1].
    normalize: map the cube to [0, 1] with its global min/max first.
    chunk: pixels per vectorised chunk.

  Returns:
    (H, W) float32 scores (residual norms).

  Raises:
    ConfigError: bad window for the scene shape, or lam <= 0.
  """
  cube, rings = _window.prepare(cube_hwb, inner, outer, chunk)
  _check_positive("lam", lam)
  s = _crd(cube, rings, float(lam), normalize=bool(normalize))
  return np.asarray(s, dtype=np.float32)
