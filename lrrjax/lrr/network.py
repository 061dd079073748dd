"""LRR-Net+: the ADMM of :mod:`lrrjax.lrr.admm` unrolled into a Flax NNX network.

T stages are one ``lax.scan`` over stacked per-stage parameters. Trainable (and
kept positive through a log parameterisation): the SVT threshold ``tau_l``, the
column-shrink threshold ``tau_s``, the penalty ``mu`` and the dictionary step
``eta`` of every stage (untied by default; ``tie_stages`` shares one set across
stages), and the initial dictionary ``D0``. Initialised from the classical
schedule, the untrained network computes T iterations of the model-based solver
(:func:`lrrjax.lrr.solver.solve_lrr`) with ``mu0 = mu0_scale / ||X||_2``.

The parameters are dimensionless: the network measures ``sigma = ||X||_2`` of its
input (N pixels) and applies ``tau_l = exp(theta_l) sigma``, ``mu = exp(theta_mu) /
sigma`` and the per-pixel ``tau_s = exp(theta_s) sigma sqrt(n_ref / N)``, with
``n_ref`` the pixel count of the scene it was built for. So it is equivariant to a
rescaling of X; on a random subset of n columns the singular values of L scale
like ``sigma`` (sqrt(n)) while a pixel's column threshold keeps its size, which
lets training use pixel mini-batches and a trained network mean the same thing
on a scene of another size (``--checkpoint`` inference).

With ``learn_dictionary=False`` the dictionary is frozen (no in-network atom
update, ``D0`` not trained): the predecessor LRR-Net.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

import numpy as np
from flax import nnx

from lrrjax.errors import ConfigError
from lrrjax.lrr import admm
from lrrjax.lrr.precision import highest

Array = jax.Array


class FrozenDictionary(nnx.Variable):
  """A dictionary that is part of the model state but never trained."""


class NetOutput(NamedTuple):
  """Network output. ``trace`` is None unless requested."""
  s_bn: Array          # anomalies S (B, N)
  dl_bn: Array         # background D L (B, N)
  l_kn: Array          # coefficients L (K, N)
  d_bk: Array          # final dictionary D (B, K)
  trace: admm.StageTrace | None


class StageView(NamedTuple):
  """Per-stage background and anomaly maps (the interpretable view)."""
  dl_tbn: Array        # background D L after each stage (T, B, N)
  scores_tn: Array     # anomaly score ||s_i|| after each stage (T, N)


@highest
def spectral_norm(x_bn: Array, iters: int = 50) -> Array:
  """Largest singular value of ``x_bn`` by power iteration on the B x B Gram.

  (XLA's CPU eigh of a 200 x 200 matrix costs ~0.3 s; 50 power steps on the
  Gram cost ~1 ms and reach float32 accuracy for the gaps of HSI spectra.)
  """
  gram = x_bn @ x_bn.T
  v0 = jnp.ones((gram.shape[0],), gram.dtype) / jnp.sqrt(gram.shape[0])

  def body(_, v):
    w = gram @ v
    return w / jnp.maximum(jnp.linalg.norm(w), jnp.finfo(gram.dtype).tiny)

  v = jax.lax.fori_loop(0, iters, body, v0)
  return jnp.sqrt(jnp.maximum(v @ gram @ v, 0.0))


def scaled_mu0(x_bn: Array, c0: float) -> float:
  """Initial penalty ``mu0 = c0 / ||X||_2``: scale-free across scenes."""
  return float(c0 / spectral_norm(jnp.asarray(x_bn)))


def dimensional(params: admm.StageParams, sigma: Array,
                pixel_ratio: Array | float = 1.0) -> admm.StageParams:
  """Dimensionless stage parameters applied to X with ``||X||_2 = sigma``.

  ``pixel_ratio = n_ref / N`` rescales the per-pixel column threshold.
  """
  return params._replace(tau_l=params.tau_l * sigma,
                         tau_s=params.tau_s * sigma * jnp.sqrt(pixel_ratio),
                         mu=params.mu / sigma)


class LRRNetPlus(nnx.Module):
  """Unrolled, dictionary-learnable LRR.

  Args:
    d_bk: (B, K) initial dictionary (atoms are projected to norm <= 1).
    stages: T.
    lam: weight of ``||S||_{2,1}`` (enters only through the initial thresholds
      and the objective reported in the trace).
    mu0_scale, rho, mu_max: classical penalty schedule
      ``mu_t = min(mu0_scale rho^t, mu_max) / ||X||_2``.
    eta: initial dictionary step (fraction of 1/Lipschitz).
    learn_dictionary: False gives LRR-Net (frozen dictionary).
    tie_stages: share one parameter set across stages (initialised at the
      geometric mean of the schedule).
    n_ref: pixel count of the scene the schedule refers to (column thresholds
      are per pixel, see the module docstring).
    outlier_k: robust cut of :func:`admm.background_weights` in the atom update.
  """

  def __init__(self, d_bk, *, stages: int, lam: float, mu0_scale: float,
               rho: float, mu_max: float, eta: float,
               learn_dictionary: bool = True, tie_stages: bool = False,
               outlier_k: float = 3.0, n_ref: int = 1):
    # The classical schedule of a scene with ||X||_2 = 1 is the dimensionless one.
    sched = admm.classical_schedule(stages, lam, mu0_scale, rho, mu_max, eta)
    logs = jax.tree.map(jnp.log, sched)
    if tie_stages:
      logs = jax.tree.map(lambda v: jnp.mean(v, keepdims=True), logs)
    self.stages = stages
    self.n_ref = int(n_ref)
    self.lam = float(lam)
    self.learn_dictionary = bool(learn_dictionary)
    self.tie_stages = bool(tie_stages)
    self.outlier_k = float(outlier_k)
    self.log_tau_l = nnx.Param(logs.tau_l)
    self.log_tau_s = nnx.Param(logs.tau_s)
    self.log_mu = nnx.Param(logs.mu)
    d_bk = admm.project_atoms(jnp.asarray(d_bk, jnp.float32))
    if learn_dictionary:
      self.log_eta = nnx.Param(logs.eta)
      self.d0 = nnx.Param(d_bk)
    else:
      self.log_eta = FrozenDictionary(logs.eta)
      self.d0 = FrozenDictionary(d_bk)

  def stage_params(self, sigma: Array | float = 1.0, n: int | None = None
                   ) -> admm.StageParams:
    """The (T,)-stacked positive stage parameters for ``||X||_2 = sigma``, N = n."""
    p = admm.StageParams(tau_l=self.log_tau_l[...], tau_s=self.log_tau_s[...],
                         mu=self.log_mu[...], eta=self.log_eta[...])
    p = jax.tree.map(jnp.exp, p)
    if self.tie_stages:
      p = jax.tree.map(lambda v: jnp.broadcast_to(v, (self.stages,)), p)
    return dimensional(p, sigma, self.n_ref / (n or self.n_ref))

  @highest
  def __call__(self, x_bn: Array, with_trace: bool = False) -> NetOutput:
    """Runs the T stages on ``x_bn`` (B, N)."""
    sigma = jax.lax.stop_gradient(spectral_norm(x_bn))
    state, trace = admm.unroll(
        x_bn, self.d0[...], self.stage_params(sigma, x_bn.shape[1]), self.lam,
        learn_dictionary=self.learn_dictionary, outlier_k=self.outlier_k,
        with_trace=with_trace)
    dl_bn = state.d_bk @ state.l_kn
    return NetOutput(state.s_bn, dl_bn, state.l_kn, state.d_bk, trace)

  @highest
  def stage_view(self, x_bn: Array) -> StageView:
    """Background and anomaly score after every stage (for figures)."""
    state0 = admm.init_state(x_bn, self.d0[...])
    sigma = spectral_norm(x_bn)

    def body(state, p):
      new = admm.stage(state, x_bn, p, learn_dictionary=self.learn_dictionary,
                       outlier_k=self.outlier_k)
      return new, (new.d_bk @ new.l_kn, admm.anomaly_scores(new.s_bn))

    _, (dl, sc) = jax.lax.scan(body, state0,
                               self.stage_params(sigma, x_bn.shape[1]))
    return StageView(dl, sc)


def from_config(x_bn, d_bk, model_cfg, n_ref: int | None = None) -> LRRNetPlus:
  """Builds the network for the scene ``x_bn`` (B, N) from ``config.model``.

  ``n_ref`` defaults to N (restoring a checkpoint passes the saved one).

  Raises:
    ConfigError: ``model.beta > 0``: the ``beta ||L||_1`` variant is in the
      model-based solver (``lrr-admm``) only; it did not help enough to unroll
      (BUILD_NOTES.md, "How far the LRR model goes").
  """
  if float(model_cfg.get("beta", 0.0)) != 0.0:
    raise ConfigError(
        f"model.beta={model_cfg.beta}: the beta ||L||_1 variant is supported by "
        "the model-based solver (method lrr-admm) only, not by LRR-Net/LRR-Net+")
  return LRRNetPlus(
      np.asarray(d_bk), stages=model_cfg.stages, lam=model_cfg.lam,
      mu0_scale=model_cfg.mu0_scale,
      rho=model_cfg.rho, mu_max=model_cfg.mu_max, eta=model_cfg.dict_step,
      learn_dictionary=model_cfg.learn_dictionary,
      tie_stages=model_cfg.tie_stages, outlier_k=model_cfg.outlier_k,
      n_ref=n_ref if n_ref is not None else np.shape(x_bn)[1])
