"""ADMM for the dictionary-learnable LRR model, one stage at a time.

Model (X: B x N pixels as columns, D: B x K dictionary, L: K x N, S: B x N)::

    min_{D, L, S}  ||L||_* + lam ||S||_{2,1}   s.t.  X = D L + S,  ||d_k||_2 <= 1

With the splitting J = L, multipliers Y1 (B x N), Y2 (K x N) and penalty mu, one
ADMM iteration (= one stage of the unrolled network) is::

    J  = SVT_{tau_l}(L + Y2/mu)                                   tau_l = 1/mu
    L  = (D^T D + I)^{-1} [D^T (X - S + Y1/mu) + J - Y2/mu]
    S  = colshrink_{tau_s}(X - D L + Y1/mu)                       tau_s = lam/mu
    D  = P_{||d_k|| <= 1}(D + eta / Lip * (X - S + Y1/mu - D L) W L^T)
    Y1 = Y1 + mu (X - D L - S);  Y2 = Y2 + mu (L - J)

``W = diag(w)`` masks the pixels whose residual is a robust outlier out of the
atom update, so that the dictionary learns the background and not the targets
(see :func:`background_weights`). Each step is a pure function below; a stage is
``stage(state, x_bn, params) -> state`` and the solver / network is a
``lax.scan`` of stages over stacked per-stage :class:`StageParams`.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from lrrjax.lrr import prox
from lrrjax.lrr.precision import highest

Array = jax.Array


class AdmmState(NamedTuple):
  """ADMM iterate. Shapes: K atoms, B bands, N pixels."""
  l_kn: Array    # coefficients L
  j_kn: Array    # auxiliary J = L (nuclear-norm split)
  s_bn: Array    # column-sparse anomalies S
  d_bk: Array    # dictionary D, atoms of norm <= 1
  y1_bn: Array   # multiplier of X = D L + S
  y2_kn: Array   # multiplier of L = J


class StageParams(NamedTuple):
  """Per-stage parameters (scalars; stacked along a leading T axis for scan).

  The classical ADMM schedule is ``tau_l = 1/mu``, ``tau_s = lam/mu``; the
  unrolled network learns all four independently (kept positive).
  """
  tau_l: Array   # SVT threshold
  tau_s: Array   # column-shrink threshold
  mu: Array      # penalty used in the L solve and the multiplier updates
  eta: Array     # dictionary step, as a fraction of 1/Lipschitz


class StageTrace(NamedTuple):
  """Per-stage diagnostics (each a scalar per stage after scan)."""
  objective: Array       # ||L||_* + lam ||S||_{2,1}
  rel_residual: Array    # ||X - D L - S||_F / ||X||_F
  rel_change: Array      # ||(L,S)_t - (L,S)_{t-1}||_F / ||(L,S)_{t-1}||_F
  rank: Array            # numerical rank of L
  mse: Array             # mean (X - D L - S)^2


def init_state(x_bn: Array, d_bk: Array) -> AdmmState:
  """Zero iterate with dictionary ``d_bk`` (projected onto the unit ball)."""
  b, n = x_bn.shape
  k = d_bk.shape[1]
  zeros_kn = jnp.zeros((k, n), x_bn.dtype)
  zeros_bn = jnp.zeros((b, n), x_bn.dtype)
  return AdmmState(zeros_kn, zeros_kn, zeros_bn, project_atoms(d_bk), zeros_bn,
                   zeros_kn)


def classical_schedule(stages: int, lam: float, mu0: float, rho: float,
                       mu_max: float, eta: float) -> StageParams:
  """The model-based schedule ``mu_t = min(mu0 rho^t, mu_max)`` as stacked params."""
  mu_t = jnp.minimum(mu0 * rho ** jnp.arange(stages, dtype=jnp.float32), mu_max)
  return StageParams(tau_l=1.0 / mu_t, tau_s=lam / mu_t, mu=mu_t,
                     eta=jnp.full((stages,), eta, jnp.float32))


def project_atoms(d_bk: Array) -> Array:
  """Projection onto ``{D : ||d_k||_2 <= 1 for all k}``: ``d_k / max(1, ||d_k||)``."""
  norm_1k = jnp.sqrt(jnp.sum(d_bk * d_bk, axis=0, keepdims=True))
  return d_bk / jnp.maximum(norm_1k, 1.0)


def update_j(l_kn: Array, y2_kn: Array, mu: Array, tau_l: Array) -> Array:
  """``J = argmin_J tau_l ||J||_* + 1/2 ||J - (L + Y2/mu)||_F^2`` (SVT)."""
  return prox.svt(l_kn + y2_kn / mu, tau_l)


@highest
def solve_l(x_bn: Array, s_bn: Array, d_bk: Array, j_kn: Array, y1_bn: Array,
            y2_kn: Array, mu: Array) -> Array:
  """Closed-form L step.

  ``argmin_L <Y1, X - D L - S> + mu/2 ||X - D L - S||^2 + <Y2, L - J> + mu/2 ||L - J||^2``
  ``= (D^T D + I)^{-1} [D^T (X - S + Y1/mu) + J - Y2/mu]``.

  The K x K inverse is formed explicitly (:func:`inv_gram_plus_identity`) and
  applied as one matmul: ``D^T D + I`` has eigenvalues in ``[1, 1 + K]`` (atoms of
  norm <= 1), so the explicit inverse is well conditioned.
  """
  rhs_kn = d_bk.T @ (x_bn - s_bn + y1_bn / mu) + j_kn - y2_kn / mu
  return inv_gram_plus_identity(d_bk.T @ d_bk) @ rhs_kn


@jax.custom_vjp
def inv_gram_plus_identity(gram_kk: Array) -> Array:
  """``(G + I)^{-1}`` for symmetric PSD ``G``, via ``eigh``.

  On XLA:CPU a 60 x 60 Cholesky costs ~15 ms and ``eigh`` ~0.2 ms. The VJP is
  the exact ``-A^{-1} g A^{-1}`` (``A = G + I``), not the eigh VJP, whose
  ``1/(lam_i - lam_j)`` is infinite on repeated eigenvalues.
  """
  return _inv_fwd(gram_kk)[0]


@highest
def _inv_fwd(gram_kk):
  lam, u = jnp.linalg.eigh(gram_kk)
  inv = (u / (1.0 + jnp.maximum(lam, 0.0))) @ u.T
  return inv, inv


@highest
def _inv_bwd(inv, g):
  g_sym = 0.5 * (g + g.T)
  return (-(inv @ g_sym @ inv),)


inv_gram_plus_identity.defvjp(_inv_fwd, _inv_bwd)


def update_s(x_bn: Array, dl_bn: Array, y1_bn: Array, mu: Array,
             tau_s: Array) -> Array:
  """``S = argmin_S tau_s ||S||_{2,1} + 1/2 ||S - (X - D L + Y1/mu)||_F^2``."""
  return prox.column_shrink(x_bn - dl_bn + y1_bn / mu, tau_s)


def background_weights(residual_bn: Array, k: float = 3.0,
                       fast_median: bool = False) -> Array:
  """Robust 0/1 pixel weights: 0 for pixels whose residual norm is an outlier.

  ``w_i = 1[r_i <= median(r) + k * 1.4826 * MAD(r)]`` with ``r_i = ||residual_i||``.
  Parameter-free in scale (median/MAD), the same for every scene. Gradients do
  not flow through the mask. ``fast_median``: :func:`lrrjax.lrr.prox.bisect_median`
  instead of the sort-based ``jnp.median`` (the generalised network).
  """
  median = prox.bisect_median if fast_median else jnp.median
  r_n = jnp.sqrt(jnp.sum(residual_bn * residual_bn, axis=0))
  med = median(r_n)
  mad = median(jnp.abs(r_n - med))
  w_n = (r_n <= med + k * 1.4826 * mad).astype(residual_bn.dtype)
  return jax.lax.stop_gradient(w_n)


@highest
def update_d(x_bn: Array, s_bn: Array, l_kn: Array, d_bk: Array, y1_bn: Array,
             mu: Array, eta: Array, w_n: Array) -> Array:
  """One projected gradient step on the atoms.

  Decreases ``f(D) = 1/2 ||(X - S + Y1/mu - D L) W^{1/2}||_F^2`` over the unit
  ball: ``D <- P(D - eta/Lip grad f)``, ``grad f = -(X - S + Y1/mu - D L) W L^T``,
  with ``Lip = ||L W L^T||_F >= ||L W L^T||_2`` so ``eta <= 1`` is a safe step.
  """
  r_bn = x_bn - s_bn + y1_bn / mu - d_bk @ l_kn
  lwl_kk = (l_kn * w_n) @ l_kn.T
  lip = jnp.sqrt(jnp.sum(lwl_kk * lwl_kk)) + 1e-12
  grad_bk = -(r_bn * w_n) @ l_kn.T
  return project_atoms(d_bk - (eta / lip) * grad_bk)


def update_multipliers(x_bn, dl_bn, s_bn, l_kn, j_kn, y1_bn, y2_kn, mu):
  """Dual ascent: ``Y1 += mu (X - D L - S)``, ``Y2 += mu (L - J)``."""
  return y1_bn + mu * (x_bn - dl_bn - s_bn), y2_kn + mu * (l_kn - j_kn)


@highest
def stage(state: AdmmState, x_bn: Array, params: StageParams, *,
          learn_dictionary: bool = True, outlier_k: float = 3.0,
          fast_median: bool = False) -> AdmmState:
  """One ADMM iteration (one unrolled stage)."""
  l_kn, _, s_bn, d_bk, y1_bn, y2_kn = state
  mu = params.mu
  j_kn = update_j(l_kn, y2_kn, mu, params.tau_l)
  l_kn = solve_l(x_bn, s_bn, d_bk, j_kn, y1_bn, y2_kn, mu)
  s_bn, d_bk, dl_bn = _s_and_atom_steps(x_bn, l_kn, d_bk, y1_bn, params,
                                        learn_dictionary, outlier_k, fast_median)
  y1_bn, y2_kn = update_multipliers(x_bn, dl_bn, s_bn, l_kn, j_kn, y1_bn, y2_kn,
                                    mu)
  return AdmmState(l_kn, j_kn, s_bn, d_bk, y1_bn, y2_kn)


def _s_and_atom_steps(x_bn, l_kn, d_bk, y1_bn, params, learn_dictionary, outlier_k,
                      fast_median=False):
  """The S step, then (optionally) the robust atom step; returns (S, D, D L)."""
  dl_bn = d_bk @ l_kn
  s_bn = update_s(x_bn, dl_bn, y1_bn, params.mu, params.tau_s)
  if learn_dictionary:
    w_n = background_weights(x_bn - dl_bn, outlier_k, fast_median)
    d_bk = update_d(x_bn, s_bn, l_kn, d_bk, y1_bn, params.mu, params.eta, w_n)
    dl_bn = d_bk @ l_kn
  return s_bn, d_bk, dl_bn


@highest
def trace_of(prev: AdmmState, new: AdmmState, x_bn: Array, lam: Array,
             beta: Array | float = 0.0) -> StageTrace:
  """Diagnostics of one stage (for the solver trace and the network's per-stage view).

  The objective is ``||L||_* + beta ||L||_1 + lam ||S||_{2,1}`` (``beta = 0``:
  the LRR model). ``prev`` and ``new`` may be :class:`SparseAdmmState`.
  """
  resid = x_bn - new.d_bk @ new.l_kn - new.s_bn
  sv = prox.singular_values(new.l_kn)
  nuc = jnp.sum(sv)
  col = jnp.sum(jnp.sqrt(jnp.sum(new.s_bn ** 2, axis=0)))
  diff = jnp.sqrt(jnp.sum((new.l_kn - prev.l_kn) ** 2) + jnp.sum((new.s_bn - prev.s_bn) ** 2))
  base = jnp.sqrt(jnp.sum(prev.l_kn ** 2) + jnp.sum(prev.s_bn ** 2))
  rank = jnp.sum(sv > 1e-3 * jnp.maximum(sv[0], 1e-30))
  return StageTrace(
      objective=nuc + beta * jnp.sum(jnp.abs(new.l_kn)) + lam * col,
      rel_residual=jnp.sqrt(jnp.sum(resid ** 2) / jnp.sum(x_bn ** 2)),
      rel_change=diff / jnp.maximum(base, 1e-12),
      rank=rank,
      mse=jnp.mean(resid ** 2))


@highest
def unroll(x_bn: Array, d_bk: Array, params: StageParams, lam: Array, *,
           learn_dictionary: bool = True, outlier_k: float = 3.0,
           with_trace: bool = False, fast_median: bool = False):
  """Runs ``T = params.mu.shape[0]`` stages by ``lax.scan``.

  Returns:
    ``(final_state, trace)``; ``trace`` is a :class:`StageTrace` of (T,) arrays
    when ``with_trace`` else ``None``.
  """
  state0 = init_state(x_bn, d_bk)

  def body(state, p):
    new = stage(state, x_bn, p, learn_dictionary=learn_dictionary,
                outlier_k=outlier_k, fast_median=fast_median)
    out = trace_of(state, new, x_bn, lam) if with_trace else None
    return new, out

  return jax.lax.scan(body, state0, params)


# ------------------------------------------------ the beta ||L||_1 variant --
#
#   min ||L||_* + beta ||L||_1 + lam ||S||_{2,1}  s.t.  X = D L + S
#
# (LRASR's model with our learnable dictionary). One more split W = L with
# multiplier Y3; the stage is the one above plus the W step, and the L step
# has (D^T D + 2 I) in place of (D^T D + I).


class SparseAdmmState(NamedTuple):
  """Iterate of the beta variant: :class:`AdmmState` plus ``W = L`` and ``Y3``."""
  l_kn: Array
  j_kn: Array
  w_kn: Array    # auxiliary W = L (l1 split)
  s_bn: Array
  d_bk: Array
  y1_bn: Array
  y2_kn: Array
  y3_kn: Array   # multiplier of L = W


def init_sparse_state(x_bn: Array, d_bk: Array) -> SparseAdmmState:
  """Zero iterate of the beta variant."""
  s = init_state(x_bn, d_bk)
  return SparseAdmmState(s.l_kn, s.j_kn, s.l_kn, s.s_bn, s.d_bk, s.y1_bn, s.y2_kn, s.y2_kn)


def update_w(l_kn: Array, y3_kn: Array, mu: Array, tau_b: Array) -> Array:
  """``W = argmin_W tau_b ||W||_1 + 1/2 ||W - (L + Y3/mu)||_F^2`` (soft threshold)."""
  return prox.soft_threshold(l_kn + y3_kn / mu, tau_b)


@highest
def solve_l_sparse(x_bn: Array, s_bn: Array, d_bk: Array, j_kn: Array, w_kn: Array,
                   y1_bn: Array, y2_kn: Array, y3_kn: Array, mu: Array) -> Array:
  """Closed-form L step of the beta variant.

  ``argmin_L <Y1, X - D L - S> + mu/2 ||X - D L - S||^2 + <Y2, L - J> + mu/2 ||L - J||^2``
  ``+ <Y3, L - W> + mu/2 ||L - W||^2``
  ``= (D^T D + 2 I)^{-1} [D^T (X - S + Y1/mu) + J - Y2/mu + W - Y3/mu]``,
  formed as ``1/2 (D^T D / 2 + I)^{-1}`` by :func:`inv_gram_plus_identity`.
  """
  rhs_kn = (d_bk.T @ (x_bn - s_bn + y1_bn / mu) + j_kn - y2_kn / mu + w_kn
            - y3_kn / mu)
  return 0.5 * inv_gram_plus_identity(0.5 * (d_bk.T @ d_bk)) @ rhs_kn


@highest
def stage_sparse(state: SparseAdmmState, x_bn: Array, params: StageParams,
                 tau_b: Array, *, learn_dictionary: bool = True,
                 outlier_k: float = 3.0) -> SparseAdmmState:
  """One ADMM iteration of the beta variant (``tau_b = beta / mu`` classically)."""
  l_kn, _, _, s_bn, d_bk, y1_bn, y2_kn, y3_kn = state
  mu = params.mu
  j_kn = update_j(l_kn, y2_kn, mu, params.tau_l)
  w_kn = update_w(l_kn, y3_kn, mu, tau_b)
  l_kn = solve_l_sparse(x_bn, s_bn, d_bk, j_kn, w_kn, y1_bn, y2_kn, y3_kn, mu)
  s_bn, d_bk, dl_bn = _s_and_atom_steps(x_bn, l_kn, d_bk, y1_bn, params,
                                        learn_dictionary, outlier_k)
  y1_bn, y2_kn = update_multipliers(x_bn, dl_bn, s_bn, l_kn, j_kn, y1_bn, y2_kn,
                                    mu)
  y3_kn = y3_kn + mu * (l_kn - w_kn)
  return SparseAdmmState(l_kn, j_kn, w_kn, s_bn, d_bk, y1_bn, y2_kn, y3_kn)


@highest
def unroll_sparse(x_bn: Array, d_bk: Array, params: StageParams, lam: Array,
                  beta: Array, *, learn_dictionary: bool = True,
                  outlier_k: float = 3.0, with_trace: bool = False):
  """:func:`unroll` for the beta variant, ``tau_b = beta / mu`` at every stage.

  The trace objective is ``||L||_* + beta ||L||_1 + lam ||S||_{2,1}``.
  """
  state0 = init_sparse_state(x_bn, d_bk)

  def body(state, p):
    new = stage_sparse(state, x_bn, p, beta / p.mu, learn_dictionary=learn_dictionary,
                       outlier_k=outlier_k)
    out = trace_of(state, new, x_bn, lam, beta) if with_trace else None
    return new, out

  return jax.lax.scan(body, state0, params)


def anomaly_scores(s_bn: Array) -> Array:
  """Anomaly score of each pixel: the l2 norm of its column of S, shape (N,).

  Differentiable with gradient 0 (not NaN) at zero columns.
  """
  return prox.safe_norm(s_bn, axis=0)[0]
