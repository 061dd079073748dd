"""The model-based LRR solver: ADMM with fixed (classical) parameters.

This is "the LRR model" the network is compared against: the same stage
function as LRR-Net+ (:func:`lrrjax.lrr.admm.stage`), iterated with the
classical schedule ``mu_t = min(mu0 rho^t, mu_max)``, ``tau_l = 1/mu_t``,
``tau_s = lam/mu_t`` and a fixed or updated dictionary.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax

from lrrjax.errors import ConfigError
from lrrjax.lrr import admm, network

Array = jax.Array


class SolverResult(NamedTuple):
  """Solution and per-iteration trace (each trace field has shape (iters,))."""
  state: admm.AdmmState
  trace: admm.StageTrace


@functools.partial(jax.jit, static_argnames=("iters", "update_dictionary"))
def solve_lrr(x_bn: Array, d_bk: Array, *, lam: float = 0.1, mu0: float = 0.05,
              rho: float = 1.5, mu_max: float = 1e6, eta: float = 0.5,
              iters: int = 30, update_dictionary: bool = False,
              outlier_k: float = 3.0) -> SolverResult:
  """Runs ``iters`` ADMM iterations of the LRR model by ``lax.scan``.

  Args:
    x_bn: (B, N) data.
    d_bk: (B, K) dictionary (projected to unit-norm-bounded atoms).
    lam: weight of ``||S||_{2,1}``.
    mu0, rho, mu_max: penalty schedule.
    eta: dictionary step (fraction of 1/Lipschitz), used when
      ``update_dictionary``.
    iters: number of iterations.
    update_dictionary: alternate the robust atom update with the L, S steps.
    outlier_k: robust cut of the atom update's background mask.

  Returns:
    :class:`SolverResult`; the trace holds the objective
    ``||L||_* + lam ||S||_{2,1}``, ``||X - D L - S||_F / ||X||_F``, the relative
    change of (L, S), the numerical rank of L and the MSE at every iteration.
  """
  params = admm.classical_schedule(iters, lam, mu0, rho, mu_max, eta)
  state, trace = admm.unroll(x_bn, d_bk, params, lam,
                             learn_dictionary=update_dictionary,
                             outlier_k=outlier_k, with_trace=True)
  return SolverResult(state, trace)


@functools.partial(jax.jit, static_argnames=("iters", "update_dictionary"))
def solve_lrr_sparse(x_bn: Array, d_bk: Array, *, lam: float = 0.1, beta: float = 0.01,
                     mu0: float = 0.05, rho: float = 1.5, mu_max: float = 1e6,
                     eta: float = 0.5, iters: int = 30, update_dictionary: bool = False,
                     outlier_k: float = 3.0) -> SolverResult:
  """:func:`solve_lrr` for the LRASR-style variant with ``beta ||L||_1``.

  ``min ||L||_* + beta ||L||_1 + lam ||S||_{2,1}  s.t.  X = D L + S``, one more
  split ``W = L`` (:func:`lrrjax.lrr.admm.stage_sparse`), the same schedule and
  ``tau_b = beta / mu_t``. The returned state is an
  :class:`~lrrjax.lrr.admm.SparseAdmmState`; the trace objective includes the
  ``beta ||L||_1`` term.
  """
  params = admm.classical_schedule(iters, lam, mu0, rho, mu_max, eta)
  state, trace = admm.unroll_sparse(x_bn, d_bk, params, lam, beta,
                                    learn_dictionary=update_dictionary,
                                    outlier_k=outlier_k, with_trace=True)
  return SolverResult(state, trace)


def solve_with_config(x_bn: Array, d_bk: Array, model_cfg, *, iters: int,
                      update_dictionary: bool) -> SolverResult:
  """:func:`solve_lrr` with the schedule of ``config.model`` (the network's own).

  ``mu0 = model_cfg.mu0_scale / ||X||_2``, as :class:`network.LRRNetPlus` uses.
  ``model_cfg.beta > 0`` selects the ``beta ||L||_1`` variant
  (:func:`solve_lrr_sparse`).
  """
  m = model_cfg
  kwargs = dict(lam=m.lam, mu0=network.scaled_mu0(x_bn, m.mu0_scale), rho=m.rho,
                mu_max=m.mu_max, eta=m.dict_step, iters=int(iters),
                update_dictionary=bool(update_dictionary), outlier_k=m.outlier_k)
  beta = float(m.get("beta", 0.0))
  if beta < 0:
    raise ConfigError(f"model.beta must be >= 0, got {beta}")
  if beta > 0:
    return solve_lrr_sparse(x_bn, d_bk, beta=beta, **kwargs)
  return solve_lrr(x_bn, d_bk, **kwargs)
