"""Generalised LRR-Net+: one network for every scene (any band count, any size).

Everything scene-specific is derived from the scene at call time
(:func:`prepare`), and the trained parameters are shared by all scenes:

1. **Normalisation**: global min-max of the cube (``x`` in [0, 1]).
2. **Band noise** (:func:`band_noise`): ``sigma_b = 1.4826 MAD(x[r, c+1, b] -
   x[r, c, b]) / sqrt(2)``, the robust std of horizontal neighbour differences.
   The network weights band ``b`` by ``omega_b = (sigma_b / median(sigma))^(-gamma)``
   (learned ``gamma`` in [0, 1]: 0 = no weighting, 1 = noise whitening); bands of
   zero variance (dead, constant, padding) get ``omega_b = 0``.
3. **Dictionary** (:func:`dictionary_atoms`, :mod:`lrrjax.lrr.atoms`, on the
   host): LRASR-style atoms from a pixel sample (k-means, then in each cluster
   its most typical pixels),
   returned as *pixel indices*, so ``D0 = (omega x)[:, atoms]`` follows the
   learned band weighting.
4. **T unrolled ADMM stages** (:func:`lrrjax.lrr.admm.unroll`) with shared
   dimensionless parameters (``tau_l = e^theta_l ||X||_2``, ``mu = e^theta_mu /
   ||X||_2``, per-pixel ``tau_s = e^theta_s ||X||_2 sqrt(N_REF / N)``).
5. **Score head** (:func:`features`, :func:`head`): per pixel, scale-free
   features of the result — ``log(1 + ||s_i|| / m)``, ``log(||e_i|| / m)`` with
   ``e = X - D L`` and ``m = median ||e_i||``, its noise-whitened version, the
   local contrast of the whitened residual, white top-hats of the residual map
   by squares and by area, and (parameter version 5) AED's white and black area
   top-hats of the scene's first principal components, and (version 6) their
   copies divided by the local clutter scale of each component (CFAR) —
   mapped to one score by ``z = softplus(a) . phi`` (non-negative weights).
   Initialised with weight 1 on ``||s_i||`` and ~0 elsewhere: the untrained head
   ranks pixels by ``||s_i||``, the LRR score.

All of it is one pure function of ``(cube, parameters)``; the per-stage
parameters are stacked for one ``lax.scan``.

Modules: :mod:`lrrjax.lrr.scene` (1-3: the scene side), :mod:`lrrjax.lrr.score_head`
(5: features and head); this one holds the network (4 and the whole). Their
public names are re-exported here.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lrrjax.lrr import admm
from lrrjax.lrr.network import dimensional, spectral_norm
from lrrjax.lrr.precision import highest
from lrrjax.lrr.scene import (SceneContext, band_noise, band_weights,
                              context_of, dictionary_atoms, even_sample, noise_from_diffs,
                              normalize_cube, normalize_global, prepare, scene_context)
from lrrjax.lrr.score_head import (AREAS, FEATURE_HALO, N_FEATURES, N_NORMS, N_RAW, RINGS,
                                   TOPHAT_HALO, TOPHATS, WHITE_RINGS,
                                   HeadParams, PCBasis, features, features_from_raw,
                                   grey_opening, head, pc_basis, pc_stats, raw_features,
                                   raw_medians, ring_mean, scene_median)

__all__ = ["AREAS", "FEATURE_HALO", "GeneralLRRNet", "GeneralOutput", "HeadParams", "N_FEATURES",
           "N_NORMS", "N_RAW", "N_REF", "PCBasis",
           "RINGS", "SceneContext", "TOPHATS", "TOPHAT_HALO", "WHITE_RINGS", "band_noise",
           "band_weights", "context_of", "detect", "dictionary_atoms",
           "even_sample", "features", "features_from_raw", "grey_opening", "head",
           "noise_from_diffs", "normalize_cube", "normalize_global", "pc_basis", "pc_stats",
           "prepare", "raw_features", "raw_medians", "ring_mean", "scene_context",
           "scene_median"]

Array = jax.Array

N_REF = 10_000          # pixel count the dimensionless column threshold refers to


class GeneralOutput(NamedTuple):
  scores_n: Array   # (N,) anomaly score (head output)
  s_bn: Array       # (B, N) anomalies S (in the band-weighted space)
  e_bn: Array       # (B, N) residual X - D L (band-weighted)
  phi_fn: Array     # (F, N) head features
  x_bn: Array       # (B, N) band-weighted input


class GeneralLRRNet(nnx.Module):
  """LRR-Net+ with parameters shared across scenes.

  Args:
    stages: T.
    lam, mu0_scale, rho, mu_max, eta: classical schedule the stage parameters
      start from (as :class:`lrrjax.lrr.network.LRRNetPlus`).
    gamma0: initial band-noise weighting exponent (learned, kept in [0, 1]).
    outlier_k: robust cut of the atom update.
  """

  def __init__(self, *, stages: int = 10, lam: float = 0.1, mu0_scale: float = 10.0,
               rho: float = 1.5, mu_max: float = 1e6, eta: float = 0.5,
               gamma0: float = 0.0, outlier_k: float = 3.0):
    sched = admm.classical_schedule(stages, lam, mu0_scale, rho, mu_max, eta)
    logs = jax.tree.map(jnp.log, sched)
    self.stages = int(stages)
    self.lam = float(lam)
    self.outlier_k = float(outlier_k)
    self.log_tau_l = nnx.Param(logs.tau_l)
    self.log_tau_s = nnx.Param(logs.tau_s)
    self.log_mu = nnx.Param(logs.mu)
    self.log_eta = nnx.Param(logs.eta)
    g = float(np.clip(gamma0, 1e-4, 1 - 1e-4))
    self.gamma_logit = nnx.Param(jnp.asarray(np.log(g / (1 - g)), jnp.float32))
    a0 = np.full((N_FEATURES,), -10.0, np.float32)
    a0[0] = np.log(np.expm1(1.0))  # softplus(a0) = (1, ~0, ..., ~0)
    self.a_f = nnx.Param(jnp.asarray(a0))

  def gamma(self) -> Array:
    return jax.nn.sigmoid(self.gamma_logit[...])

  def head_params(self) -> HeadParams:
    return HeadParams(self.a_f[...])

  def stage_params(self, sigma: Array, n: int) -> admm.StageParams:
    p = admm.StageParams(tau_l=self.log_tau_l[...], tau_s=self.log_tau_s[...],
                         mu=self.log_mu[...], eta=self.log_eta[...])
    return dimensional(jax.tree.map(jnp.exp, p), sigma, N_REF / n)

  @highest
  def run_stages(self, ctx: SceneContext):
    """The band-weighted input ``x_bn`` (B, N) and the ADMM state after the T
    stages, from the dictionary ``x_bn[:, atoms]``."""
    omega_b = band_weights(ctx.noise_b, self.gamma())
    x_bn = omega_b[:, None] * ctx.x_bn
    d0_bk = admm.project_atoms(x_bn[:, ctx.atoms_k])
    n = x_bn.shape[1]
    sigma = jax.lax.stop_gradient(spectral_norm(x_bn))
    state, _ = admm.unroll(x_bn, d0_bk, self.stage_params(sigma, n), self.lam,
                           learn_dictionary=True, outlier_k=self.outlier_k,
                           fast_median=True)
    return x_bn, state

  @highest
  def __call__(self, ctx: SceneContext, h: int, w: int) -> GeneralOutput:
    """Scores the scene ``ctx`` of ``h x w`` pixels."""
    x_bn, state = self.run_stages(ctx)
    e_bn = x_bn - state.d_bk @ state.l_kn
    phi = features(state.s_bn.T, e_bn.T, ctx.noise_b, h, w, x_bn.T)
    return GeneralOutput(head(self.head_params(), phi), state.s_bn, e_bn, phi, x_bn)


def _scores(graphdef, state, ctx, h, w):
  return nnx.merge(graphdef, state)(ctx, h, w).scores_n


_scores_jit = jax.jit(_scores, static_argnums=(0, 3, 4))


def detect(model: GeneralLRRNet, ctx: SceneContext, h: int, w: int) -> np.ndarray:
  """Anomaly scores (N,) of the scene ``ctx`` (H W pixels), jitted."""
  graphdef, state = nnx.split(model)
  return np.asarray(_scores_jit(graphdef, state, ctx, int(h), int(w)))
