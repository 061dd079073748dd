"""LRASR: low-rank and sparse representation anomaly detector.

Xu, Wu, Li, Zhang, Du, "Anomaly Detection in Hyperspectral Images Based on
Low-Rank and Sparse Representation", IEEE TGRS 54(4):1990-2000, 2016.

Model, with the data ``X`` (B x N, divided by its global maximum) and a
background dictionary ``D`` (B x K) from :func:`lrrjax.dictionary.lrasr_dictionary`
(15 k-means clusters x 20 lowest-RX pixels)::

  min_{Z,E} ||Z||_* + beta ||Z||_1 + lam ||E||_{2,1}   s.t.  X = D Z + E,

anomaly score of pixel i = ||E[:, i]||_2.

Solver: linearised ADM with adaptive penalty (LADMAP, Lin, Liu & Su, NIPS
2011) on the split ``Z = J`` (J carries the l1 term)::

  Z <- SVT_{1/(mu eta)}( Z + [D^T (X - D Z - E + Y1/mu) - (Z - J + Y2/mu)] / eta )
  J <- soft(Z + Y2/mu, beta/mu)
  E <- colshrink(X - D Z + Y1/mu, lam/mu)
  Y1 <- Y1 + mu (X - D Z - E);  Y2 <- Y2 + mu (Z - J);  mu <- min(rho mu, mu_max)

with ``eta = 1.02 (||D||_2^2 + 1)`` (> ||[D; I]||_2^2, the LADMAP step
condition; Z is linearised, J and E are exact proxes).  Stops when both
relative primal residuals ``||X - D Z - E||_F / ||X||_F`` and
``||Z - J||_F / ||X||_F`` are below ``tol`` (default 1e-5, reachable in
float32), or after ``max_iter`` iterations (default 500: mu reaches mu_max
= 1e10 from 1e-3 after ~315 iterations at rho = 1.1, after which the
constraint is enforced essentially exactly).  Defaults lam = beta = 0.1,
mu0 = 1e-3, rho = 1.1 as in the paper.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lrrjax import dictionary
from lrrjax.errors import ConfigError
from lrrjax.lrr import prox


class LadmapState(NamedTuple):
  """LADMAP iterate."""
  z_kn: jax.Array
  j_kn: jax.Array
  e_bn: jax.Array
  y1_bn: jax.Array
  y2_kn: jax.Array
  dz_bn: jax.Array
  mu: jax.Array
  it: jax.Array
  res_x: jax.Array  # ||X - DZ - E||_F / ||X||_F
  res_z: jax.Array  # ||Z - J||_F / ||X||_F


@functools.partial(jax.jit, static_argnames=("max_iter",))
def _solve(x_bn, d_bk, lam, beta, mu0, rho, mu_max, tol, max_iter):
  b, n = x_bn.shape
  k = d_bk.shape[1]
  dt = x_bn.dtype
  eta = 1.02 * (jnp.linalg.norm(d_bk, 2) ** 2 + 1.0)
  xnorm = jnp.maximum(jnp.linalg.norm(x_bn), jnp.finfo(dt).tiny)
  zk = jnp.zeros((k, n), dt)
  zb = jnp.zeros((b, n), dt)
  s0 = LadmapState(zk, zk, zb, zb, zk, zb, jnp.asarray(mu0, dt), jnp.asarray(0),
                   jnp.asarray(jnp.inf, dt), jnp.asarray(jnp.inf, dt))

  def cond(s):
    return jnp.logical_and(s.it < max_iter, jnp.maximum(s.res_x, s.res_z) >= tol)

  def body(s):
    mu = s.mu
    grad = d_bk.T @ (x_bn - s.dz_bn - s.e_bn + s.y1_bn / mu) - (s.z_kn - s.j_kn + s.y2_kn / mu)
    z = prox.svt(s.z_kn + grad / eta, 1.0 / (mu * eta))
    dz = d_bk @ z
    j = prox.soft_threshold(z + s.y2_kn / mu, beta / mu)
    e = prox.column_shrink(x_bn - dz + s.y1_bn / mu, lam / mu)
    r1 = x_bn - dz - e
    r2 = z - j
    return LadmapState(z, j, e, s.y1_bn + mu * r1, s.y2_kn + mu * r2, dz,
                       jnp.minimum(rho * mu, mu_max), s.it + 1,
                       jnp.linalg.norm(r1) / xnorm, jnp.linalg.norm(r2) / xnorm)

  return jax.lax.while_loop(cond, body, s0)


def solve_lrasr(x_bn, d_bk, lam: float = 0.1, beta: float = 0.1, mu0: float = 1e-3,
                rho: float = 1.1, mu_max: float = 1e10, tol: float = 1e-5,
                max_iter: int = 500) -> LadmapState:
  """Runs LADMAP for ``min ||Z||_* + beta||Z||_1 + lam||E||_{2,1}, X = DZ + E``.

  Args:
    x_bn: (B, N) data (already scaled).
    d_bk: (B, K) dictionary.
    lam, beta: weights of ||E||_{2,1} and ||Z||_1.
    mu0, rho, mu_max: penalty schedule.
    tol: stopping tolerance on the relative primal residuals.
    max_iter: iteration cap.

  Returns:
    The final :class:`LadmapState` (``it`` iterations done, residuals).
  """
  x_bn = jnp.asarray(x_bn)
  if not jnp.issubdtype(x_bn.dtype, jnp.floating):
    x_bn = x_bn.astype(jnp.float32)
  d_bk = jnp.asarray(d_bk, x_bn.dtype)
  for name, v in (("lam", lam), ("beta", beta), ("mu0", mu0), ("mu_max", mu_max)):
    if not (np.isfinite(v) and v > 0):
      raise ConfigError(f"lrasr: {name} must be positive, got {v!r}")
  if not rho >= 1.0:
    raise ConfigError(f"lrasr: rho must be >= 1, got {rho!r}")
  if not (isinstance(max_iter, int) and max_iter >= 1):
    raise ConfigError(f"lrasr: max_iter must be a positive integer, got {max_iter!r}")
  return _solve(x_bn, d_bk, float(lam), float(beta), float(mu0), float(rho), float(mu_max),
                float(tol), int(max_iter))


def lrasr(cube_hwb, lam: float = 0.1, beta: float = 0.1, n_clusters: int = 15,
          per_cluster: int = 20, mu0: float = 1e-3, rho: float = 1.1, mu_max: float = 1e10,
          tol: float = 1e-5, max_iter: int = 500, seed: int = 0,
          return_state: bool = False):
  """LRASR anomaly scores ``||E[:, i]||_2`` of an (H, W, B) cube.

  The cube is divided by its global maximum (absolute value), the dictionary
  is :func:`lrrjax.dictionary.lrasr_dictionary` (``n_clusters`` x
  ``per_cluster`` atoms, k-means ``seed``), then :func:`solve_lrasr`.

  Returns:
    (H, W) float32 scores; with ``return_state=True`` also the solver state.
  """
  cube = jnp.asarray(cube_hwb)
  if cube.ndim != 3:
    raise ConfigError(f"lrasr: expected a cube (H, W, B), got shape {cube.shape}")
  if not jnp.issubdtype(cube.dtype, jnp.floating):
    cube = cube.astype(jnp.float32)
  h, w, b = cube.shape
  peak = jnp.max(jnp.abs(cube))
  x_bn = (cube / jnp.where(peak > 0, peak, 1.0)).reshape(h * w, b).T
  d_bk = dictionary.lrasr_dictionary(x_bn, n_clusters=n_clusters, per_cluster=per_cluster,
                                     seed=seed)
  state = solve_lrasr(x_bn, d_bk, lam=lam, beta=beta, mu0=mu0, rho=rho, mu_max=mu_max,
                      tol=tol, max_iter=max_iter)
  scores = np.asarray(jnp.sqrt(jnp.sum(state.e_bn ** 2, axis=0)), np.float32).reshape(h, w)
  return (scores, state) if return_state else scores
