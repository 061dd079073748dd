"""Generalised LRR-Net+: one network for every scene (any band count, any size).

Everything scene-specific is derived from the scene at call time
(:func:`prepare`), and the trained parameters are shared by all scenes:

1. **Normalisation**: global min-max of the cube (``x`` in [0, 1]).
2. **Band noise** (:func:`band_noise`): ``sigma_b = 1.4826 MAD(x[r, c+1, b] -
   x[r, c, b]) / sqrt(2)``, the robust std of horizontal neighbour differences.
   The network weights band ``b`` by ``omega_b = (sigma_b / median(sigma))^(-gamma)``
   (learned ``gamma`` in [0, 1]: 0 = no weighting, 1 = noise whitening); bands of
   zero variance (dead, constant, padding) get ``omega_b = 0``.
3. **Dictionary** (:func:`dictionary_atoms`): LRASR-style atoms from a pixel
   sample (k-means, then in each cluster its most typical pixels),
   returned as *pixel indices*, so ``D0 = (omega x)[:, atoms]`` follows the
   learned band weighting.
4. **T unrolled ADMM stages** (:func:`lrrjax.lrr.admm.unroll`) with shared
   dimensionless parameters (``tau_l = e^theta_l ||X||_2``, ``mu = e^theta_mu /
   ||X||_2``, per-pixel ``tau_s = e^theta_s ||X||_2 sqrt(N_REF / N)``).
5. **Score head** (:func:`features`, :func:`head`): per pixel, scale-free
   features of the result — ``log(1 + ||s_i|| / m)``, ``log(||e_i|| / m)`` with
   ``e = X - D L`` and ``m = median ||e_i||``, its noise-whitened version, the
   local contrast of the residual at three dual-window scales and white top-hats
   of the residual map at three scales —
   mapped to one score by ``z = softplus(a) . phi`` (non-negative weights).
   Initialised with weight 1 on ``||s_i||`` and ~0 elsewhere: the untrained head
   ranks pixels by ``||s_i||``, the LRR score.

All of it is one pure function of ``(cube, parameters)``; the per-stage
parameters are stacked for one ``lax.scan``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lrrjax import dictionary
from lrrjax.lrr import admm, prox
from lrrjax.lrr.network import dimensional, spectral_norm
from lrrjax.lrr.precision import highest

Array = jax.Array

N_REF = 10_000          # pixel count the dimensionless column threshold refers to
# (inner half-width, outer half-width): dual windows 3/9, 5/15 and 9/19
RINGS = ((1, 4), (2, 7), (4, 9))
WHITE_RINGS = ((2, 7),)   # the same on the noise-whitened residual
TOPHATS = (2, 5, 8)       # half-widths of the square openings: 5x5, 11x11, 17x17
N_FEATURES = 3 + len(RINGS) + len(WHITE_RINGS) + len(TOPHATS)


class SceneContext(NamedTuple):
  """What the network needs from one scene (B bands, N = H W pixels)."""
  x_bn: Array       # (B, N) globally min-max normalised pixels, row-major raster
  noise_b: Array    # (B,) robust noise std per band (0: zero-variance band)
  atoms_k: Array    # (K,) int32 pixel indices of the initial dictionary


class GeneralOutput(NamedTuple):
  scores_n: Array   # (N,) anomaly score (head output)
  s_bn: Array       # (B, N) anomalies S (in the band-weighted space)
  e_bn: Array       # (B, N) residual X - D L (band-weighted)
  phi_fn: Array     # (F, N) head features
  x_bn: Array       # (B, N) band-weighted input


# ------------------------------------------------------------ scene side --


def normalize_cube(cube_hwb) -> np.ndarray:
  """Global min-max normalisation (as ``lrrjax.io.normalize(cube, "global")``)."""
  from lrrjax import io  # pylint: disable=import-outside-toplevel
  return io.normalize(cube_hwb, "global")


def even_sample(total, m):
  """``m`` evenly spaced indices of ``range(total)``, (m,) int32.

  ``idx_i = floor(i (total - 1) / (m - 1))`` in exact integer arithmetic (as
  ``np.linspace(0, total - 1, m).astype(int)`` means; float rounding there puts
  a few indices one lower for some sizes, e.g. 124 row counts h in [257, 3000)
  and N = 4166 pixels; none of the benchmark scenes' sizes). ``total`` and ``m``
  may be symbolic dimensions (:mod:`jax.export`); ``m <= total``, so the indices
  are distinct. The product is split as ``i q + (i r) // (m - 1)`` with
  ``total - 1 = q (m - 1) + r``: int32 suffices for ``total < 2^31``, ``m < 46341``.
  """
  i = jnp.arange(m, dtype=jnp.int32)
  d = jnp.maximum(jnp.asarray(m, jnp.int32) - 1, 1)
  t1 = jnp.asarray(total, jnp.int32) - 1
  return i * (t1 // d) + (i * (t1 % d)) // d


def _min_dim(a, b):
  """``min(a, b)`` for ints or symbolic dimensions (:mod:`jax.export`)."""
  if isinstance(a, int) and isinstance(b, int):
    return min(a, b)
  return jax.core.min_dim(a, b)


def _band_noise(x_bn: Array, h, w, max_rows: int = 256) -> Array:
  """:func:`band_noise`, traceable with symbolic ``h``, ``w`` (``w >= 2`` then)."""
  b = x_bn.shape[0]
  x_bhw = x_bn.reshape(b, h, w)
  if w < 2:
    d = x_bhw[:, 1:, :] - x_bhw[:, :-1, :]
  else:
    sub = x_bhw[:, even_sample(h, _min_dim(h, max_rows)), :]
    d = sub[:, :, 1:] - sub[:, :, :-1]
  sigma = noise_from_diffs(d.reshape(b, d.shape[1] * d.shape[2]))
  var = jnp.var(x_bn, axis=1)
  return jnp.where(var > 0, sigma, 0.0)


def noise_from_diffs(d_bd: Array) -> Array:
  """``1.4826 MAD(d) / sqrt(2)`` per band of neighbour differences ``d`` (B, D), (B,).

  Medians by :func:`lrrjax.lrr.prox.bisect_median` (no sort).
  """
  med = prox.bisect_median(d_bd, axis=1)[:, None]
  return 1.4826 * prox.bisect_median(jnp.abs(d_bd - med), axis=1) / jnp.sqrt(2.0)


@functools.partial(jax.jit, static_argnames=("h", "w", "max_rows"))
def band_noise(x_bn: Array, h: int, w: int, max_rows: int = 256) -> Array:
  """Robust per-band noise std from horizontal neighbour differences, (B,).

  ``sigma_b = 1.4826 MAD_{r,c}(x[r, c+1, b] - x[r, c, b]) / sqrt(2)`` over at most
  ``max_rows`` evenly spaced rows (:func:`even_sample`); 0 for a band whose
  values are all equal. Medians by :func:`lrrjax.lrr.prox.bisect_median` (no sort).
  """
  return _band_noise(x_bn, h, w, max_rows)


def band_weights(noise_b: Array, gamma: Array) -> Array:
  """``omega_b = (sigma_b / median sigma)^(-gamma)``, 0 for zero-variance bands.

  ``sigma_b`` is floored at 0.1 median (quantised bands whose MAD is 0).
  """
  live = noise_b > 0
  pos = jnp.where(live, noise_b, jnp.nan)
  med = jnp.nanmedian(pos)  # (B values: the sort is cheap)
  med = jnp.where(jnp.isfinite(med) & (med > 0), med, 1.0)
  rel = jnp.maximum(jnp.where(live, noise_b, med) / med, 0.1)
  return jnp.where(live, rel ** (-gamma), 0.0)


@functools.partial(jax.jit, static_argnames=("k",))
def cluster_typicality(x_mb: Array, labels_m: Array, k: int) -> Array:
  """Within-cluster distance under the cluster's diagonal covariance, (M,).

  ``d_i = sum_b (x_ib - mu_cb)^2 / var_cb`` with ``c = l(i)`` (zero-variance
  bands ignored). LRASR uses the full-covariance RX here; on XLA:CPU the 15
  ``eigh`` of B x B it needs took ~2.3 s per scene (one 205 x 205 ``eigh``
  ~0.95 s, measured on this 2-core machine), the diagonal form ~ms.
  """
  ones = jnp.ones(labels_m.shape, x_mb.dtype)
  cnt_k = jax.ops.segment_sum(ones, labels_m, num_segments=k)
  mu_kb = jax.ops.segment_sum(x_mb, labels_m, num_segments=k) / jnp.maximum(cnt_k, 1.0)[:, None]
  xc_mb = x_mb - mu_kb[labels_m]
  var_kb = jax.ops.segment_sum(xc_mb ** 2, labels_m, num_segments=k) / jnp.maximum(cnt_k, 1.0)[:, None]
  inv_kb = jnp.where(var_kb > 0, 1.0 / jnp.where(var_kb > 0, var_kb, 1.0), 0.0)
  return jnp.sum(xc_mb ** 2 * inv_kb[labels_m], axis=1)


def _dictionary_atoms(x_bn: Array, seed: Array, n_clusters: int = 15,
                      per_cluster: int = 4, n_sample: int = 4096) -> Array:
  """:func:`dictionary_atoms`, traceable with a symbolic pixel count."""
  n = x_bn.shape[1]
  pick = even_sample(n, _min_dim(n, n_sample))
  x_mb = x_bn[:, pick].T.astype(jnp.float32)
  _, labels = dictionary._kmeans(x_mb, n_clusters, seed, 50)  # pylint: disable=protected-access
  d_m = cluster_typicality(x_mb, labels, n_clusters)
  member_km = labels[None, :] == jnp.arange(n_clusters)[:, None]
  key_km = jnp.where(member_km, d_m[None, :], jnp.inf)
  neg, idx_kp = jax.lax.top_k(-key_km, per_cluster)
  best = jnp.argmin(key_km, axis=1)
  idx_kp = jnp.where(jnp.isfinite(neg), idx_kp, best[:, None])
  return pick[idx_kp.reshape(-1)]


@functools.partial(jax.jit, static_argnames=("n_clusters", "per_cluster", "n_sample"))
def dictionary_atoms(x_bn: Array, seed: Array, n_clusters: int = 15,
                     per_cluster: int = 4, n_sample: int = 4096) -> Array:
  """LRASR-style dictionary as pixel indices (K = n_clusters * per_cluster,).

  ``min(N, n_sample)`` pixels (evenly spaced in raster order,
  :func:`even_sample`, so deterministic and spread over the scene) are
  clustered by k-means (k-means++ seeding, ``seed``);
  in each cluster the ``per_cluster`` members closest to the cluster mean
  (:func:`cluster_typicality`) are the atoms: the most typical background pixels
  of each class. A cluster with fewer members repeats its best one (duplicate
  atoms do not change the span).
  """
  return _dictionary_atoms(x_bn, seed, n_clusters, per_cluster, n_sample)


def normalize_global(cube_hwb: Array) -> Array:
  """Global min-max ``(x - min x) / (max x - min x)`` in float32 (0 for a constant cube).

  The jnp form of :func:`normalize_cube`, traceable with symbolic shapes; the
  cube is cast to float32 first (exact for integer data below 2^24).
  """
  x = jnp.asarray(cube_hwb, jnp.float32)
  lo = jnp.min(x)
  span = jnp.max(x) - lo
  return jnp.where(span > 0, (x - lo) / jnp.where(span > 0, span, 1.0), 0.0)


def scene_context(cube_hwb: Array, *, gamma0: float = 0.0, n_clusters: int = 15,
                  per_cluster: int = 4, n_sample: int = 4096, seed: int = 0) -> SceneContext:
  """:func:`prepare` as one traceable function of the raw cube (H, W, B).

  H, W and B may be symbolic (:mod:`jax.export`; then ``W >= 2`` must be a
  constraint). :func:`prepare` jits exactly this function, and the exported
  detector (:mod:`lrrjax.export`) traces it, so both compute the same thing.
  """
  h, w, b = cube_hwb.shape
  x_bn = normalize_global(cube_hwb).reshape(h * w, b).T
  noise_b = _band_noise(x_bn, h, w)
  xw_bn = band_weights(noise_b, jnp.float32(gamma0))[:, None] * x_bn
  atoms = _dictionary_atoms(xw_bn, jnp.asarray(seed, jnp.uint32), n_clusters,
                            per_cluster, n_sample)
  return SceneContext(x_bn, noise_b, atoms)


_scene_context_jit = jax.jit(scene_context, static_argnames=(
    "gamma0", "n_clusters", "per_cluster", "n_sample", "seed"))


def prepare(cube_hwb, *, gamma0: float = 0.0, n_clusters: int = 15, per_cluster: int = 4,
            n_sample: int = 4096, seed: int = 0) -> SceneContext:
  """The :class:`SceneContext` of a raw cube (H, W, B): no parameter is trained here.

  The cube is min-max normalised globally (:func:`normalize_global`, float32).
  The dictionary atoms are chosen in the space weighted with ``gamma0`` (the
  initial noise-weighting exponent). Jitted :func:`scene_context`.
  """
  return _scene_context_jit(jnp.asarray(cube_hwb, jnp.float32), gamma0=float(gamma0),
                            n_clusters=int(n_clusters), per_cluster=int(per_cluster),
                            n_sample=int(n_sample), seed=int(seed))


def context_of(x_bn, h: int, w: int, *, gamma0: float = 0.0, n_clusters: int = 15,
               per_cluster: int = 4, n_sample: int = 4096, seed: int = 0) -> SceneContext:
  """:func:`prepare` for already normalised pixels ``x_bn`` (B, H W)."""
  x_bn = jnp.asarray(x_bn, jnp.float32)
  noise_b = band_noise(x_bn, h, w)
  xw_bn = band_weights(noise_b, jnp.float32(gamma0))[:, None] * x_bn
  atoms = dictionary_atoms(xw_bn, jnp.asarray(seed, jnp.uint32), n_clusters,
                           per_cluster, n_sample)
  return SceneContext(x_bn, noise_b, atoms)


# ------------------------------------------------------------ score head --


def _box_sum(x_chw: Array, r: int) -> Array:
  """Sum over the (2r+1) x (2r+1) window centred on each pixel (zero outside).

  Separable: a (2r+1)-tap sum along rows, then along columns (O(r) per pixel;
  ``jnp.cumsum`` lowers to a quadratic reduce_window on XLA:CPU).
  """
  k = 2 * r + 1
  pad = ((0, 0), (r, r), (0, 0))
  s = jax.lax.reduce_window(x_chw, 0.0, jax.lax.add, (1, k, 1), (1, 1, 1), pad)
  pad = ((0, 0), (0, 0), (r, r))
  return jax.lax.reduce_window(s, 0.0, jax.lax.add, (1, 1, k), (1, 1, 1), pad)


def _window_count(n: int, r: int) -> Array:
  """Pixels of a (2r+1) window centred on each of n positions inside [0, n), (n,)."""
  i = jnp.arange(n)
  return (jnp.minimum(i + r, n - 1) - jnp.maximum(i - r, 0) + 1).astype(jnp.float32)


def _ring_count(h: int, w: int, inner: int, outer: int) -> Array:
  """Pixels of each pixel's dual-window ring inside the image, (H, W), >= 1."""
  cnt = (_window_count(h, outer)[:, None] * _window_count(w, outer)[None, :]
         - _window_count(h, inner)[:, None] * _window_count(w, inner)[None, :])
  return jnp.maximum(cnt, 1.0)


def ring_mean(x_bhw: Array, inner: int, outer: int) -> Array:
  """Mean over the dual-window ring (outer square minus inner square) of each
  pixel, counting only pixels inside the image; (B, H, W)."""
  _, h, w = x_bhw.shape
  num = _box_sum(x_bhw, outer) - _box_sum(x_bhw, inner)
  return num / _ring_count(h, w, inner, outer)


def grey_opening(f_hw: Array, r: int) -> Array:
  """Grey-level opening (erosion, then dilation) by a (2r+1)^2 square, (H, W)."""
  win, one = (2 * r + 1, 2 * r + 1), (1, 1)
  ero = jax.lax.reduce_window(f_hw, jnp.inf, jax.lax.min, win, one, "SAME")
  return jax.lax.reduce_window(ero, -jnp.inf, jax.lax.max, win, one, "SAME")


N_RAW = 3 + len(RINGS) + len(WHITE_RINGS)  # per-pixel norms behind the features
TOPHAT_HALO = 2 * max(TOPHATS)  # rows an opening (erosion, then dilation) reads


def raw_features(s_bn: Array, e_bn: Array, noise_b: Array, h: int, w: int) -> Array:
  """The per-pixel norms the features are made of, (N_RAW, N).

  ``||s_i||``, ``||e_i||``, ``||e_i omega||`` (``omega = band_weights(sigma, 1)``:
  1 / sigma relative to the median, floored, 0 for dead bands), then for each
  dual window of ``RINGS`` ``||e_i - ring_mean(E)_i||`` (local contrast) and for
  each of ``WHITE_RINGS`` the same of the noise-whitened residual. Each value
  depends only on the pixel's own window (at most ``max(RINGS outer)`` rows
  away), so strips with that halo give the same values as the whole scene.
  """
  b = e_bn.shape[0]
  norm = lambda v_bn: prox.safe_norm(v_bn, axis=0)[0]  # noqa: E731
  # 1 / sigma_b with sigma_b floored at 0.1 median sigma, as in band_weights:
  # near-constant bands (sigma ~1e-12 on abu-beach-2) would otherwise dominate.
  inv_b = band_weights(noise_b, 1.0)
  ew_bn = e_bn * inv_b[:, None]

  # Box sums once per distinct half-width; the whitened ring mean is the ring
  # mean scaled per band (a box sum commutes with a per-band factor).
  e_bhw = e_bn.reshape(b, h, w)
  boxes = {r: _box_sum(e_bhw, r) for r in sorted({r for ring in RINGS + WHITE_RINGS
                                                  for r in ring})}

  def ring(inner, outer):
    return (boxes[outer] - boxes[inner]) / _ring_count(h, w, inner, outer)

  raw = [norm(s_bn), norm(e_bn), norm(ew_bn)]
  raw += [norm((e_bhw - ring(i, o)).reshape(b, -1)) for i, o in RINGS]
  raw += [norm((inv_b[:, None, None] * (e_bhw - ring(i, o))).reshape(b, -1))
          for i, o in WHITE_RINGS]
  return jnp.stack(raw)


def scene_median(v: Array, axis: int = -1) -> Array:
  """Median along ``axis`` (:func:`lrrjax.lrr.prox.bisect_median`) floored at
  the dtype's ``tiny``, without gradient: the scale of a feature."""
  tiny = jnp.finfo(v.dtype).tiny
  return jax.lax.stop_gradient(jnp.maximum(prox.bisect_median(v, axis=axis), tiny))


def raw_medians(raw_fn: Array) -> Array:
  """Scene medians of the raw norms but the first, (N_RAW - 1,)
  (:func:`scene_median`)."""
  return scene_median(raw_fn[1:], axis=1)


def features_from_raw(raw_fn: Array, med_f: Array, h: int, w: int) -> Array:
  """The head's features (N_FEATURES, N) from :func:`raw_features` and the scene
  medians ``med_f`` (:func:`raw_medians`).

  With ``m = median ||e_i||``: ``log(1 + ||s_i|| / m)``, then for every other
  raw norm ``v`` ``log(max(v, 1e-6 med v) / med v)``, then for each half-width
  ``r`` of ``TOPHATS`` the white top-hat of the map ``log(||e_i|| / m)`` by a
  (2r+1)^2 square (bright structures narrower than the square: small targets
  stay, large bright blocks go; it reads ``TOPHAT_HALO`` rows around a pixel).
  """
  med = med_f[:, None]
  rel = jnp.log(jnp.maximum(raw_fn[1:], 1e-6 * med) / med)
  lr_hw = rel[0].reshape(h, w)
  tops = [(lr_hw - grey_opening(lr_hw, r)).reshape(-1) for r in TOPHATS]
  return jnp.concatenate([jnp.log1p(raw_fn[:1] / med[:1]), rel, jnp.stack(tops)])


def features(s_bn: Array, e_bn: Array, noise_b: Array, h: int, w: int) -> Array:
  """Scale-free per-pixel features (F, N) of the LRR result ``S``, ``E = X - D L``.

  :func:`features_from_raw` of :func:`raw_features` with the scene's own
  medians (:func:`raw_medians`): ``log(1 + ||s_i|| / m)``; ``log(||e_i|| / m)``;
  the same for the noise-whitened residual; the local contrast of the residual
  at the dual windows of ``RINGS`` and of the whitened residual at
  ``WHITE_RINGS``; white top-hats of ``log(||e_i|| / m)`` at ``TOPHATS``.
  """
  raw = raw_features(s_bn, e_bn, noise_b, h, w)
  return features_from_raw(raw, raw_medians(raw), h, w)


class HeadParams(NamedTuple):
  a_f: Array      # (F,) pre-softplus feature weights


def head(p: HeadParams, phi_fn: Array) -> Array:
  """``z = softplus(a) . phi``, (N,): a non-negative combination of the evidence.

  Every feature grows with anomalousness, so the head may only add evidence,
  never subtract it (a monotone score; an MLP head fitted to implants ranked
  real targets of held-out scenes worse, BUILD_NOTES "Generalised LRR-Net+").
  """
  return jax.nn.softplus(p.a_f) @ phi_fn


# --------------------------------------------------------------- network --


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
  def __call__(self, ctx: SceneContext, h: int, w: int) -> GeneralOutput:
    """Scores the scene ``ctx`` of ``h x w`` pixels."""
    omega_b = band_weights(ctx.noise_b, self.gamma())
    x_bn = omega_b[:, None] * ctx.x_bn
    d0_bk = admm.project_atoms(x_bn[:, ctx.atoms_k])
    n = x_bn.shape[1]
    sigma = jax.lax.stop_gradient(spectral_norm(x_bn))
    state, _ = admm.unroll(x_bn, d0_bk, self.stage_params(sigma, n), self.lam,
                           learn_dictionary=True, outlier_k=self.outlier_k,
                           fast_median=True)
    e_bn = x_bn - state.d_bk @ state.l_kn
    phi = features(state.s_bn, e_bn, ctx.noise_b, h, w)
    return GeneralOutput(head(self.head_params(), phi), state.s_bn, e_bn, phi, x_bn)


def _scores(graphdef, state, ctx, h, w):
  return nnx.merge(graphdef, state)(ctx, h, w).scores_n


_scores_jit = jax.jit(_scores, static_argnums=(0, 3, 4))


def detect(model: GeneralLRRNet, ctx: SceneContext, h: int, w: int) -> np.ndarray:
  """Anomaly scores (N,) of the scene ``ctx`` (H W pixels), jitted."""
  graphdef, state = nnx.split(model)
  return np.asarray(_scores_jit(graphdef, state, ctx, int(h), int(w)))
