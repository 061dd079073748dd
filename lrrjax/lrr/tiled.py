"""The generalised LRR-Net+ strip by strip: bounded memory for any scene size.

The whole-scene network (:class:`lrrjax.lrr.general.GeneralLRRNet`) couples the
pixels only through a few small global quantities per stage:

* the SVT of ``M = L + Y2/mu`` (K x N) is ``J = F M`` with the K x K matrix
  ``F = g(M M^T)`` (:func:`lrrjax.lrr.prox.gram_shrink`);
* the L step uses ``(D^T D + I)^{-1}`` and the dictionary ``D``; the atom step
  produces the next ``D`` from sums over (robustly weighted) pixels;
* the thresholds are scaled by ``||X||_2`` and the pixel count.

Given those, every other step is per pixel. The tiled form therefore runs the
network once on a **pixel sample** (P pixels of the streamed statistics,
:func:`frozen_unroll`), records per stage the operators above
(:class:`FrozenStage`), and then applies the stages to every strip with the
operators frozen (:func:`apply_frozen`): each pixel gets exactly the values the
sample run would have given it had it been in the sample (so on the sample
pixels the two agree to rounding, tested). Sample-based estimates stand in for
whole-scene ones: the singular vectors of ``M`` and the shrink gains (``F`` is
invariant to the pixel count, because ``tau_l = e^theta ||X||_2`` scales like
the singular values of ``M``: both ~ sqrt(N)), the dictionary path, and the
scale ``||X||_2 / sqrt(N)``. When the sample holds every pixel (``N <= P``,
e.g. all 100 x 100 benchmark scenes) the tiled scores equal the whole-scene ones.

Scores, in three passes (:func:`lrrjax.streaming.detect_tiled`):

1. streamed statistics: global min/max, band means and covariance (the
   principal axes of the head, exact: :func:`stream_pc_basis`), the pixel
   sample, horizontal neighbour differences of evenly spaced rows (band noise);
2. per strip (halo ``max(RINGS outer)`` rows): the :func:`lrrjax.lrr.general.raw_features`
   (N_RAW per-pixel norms and principal-component scores), written to a
   memory-mapped (N_RAW, H, W) file;
3. :func:`finish`: the scene medians of those maps and the MADs of the scores
   (exact, over all N pixels),
   then per strip (halo :data:`lrrjax.lrr.general.FEATURE_HALO`: the square
   and area openings) the features and the head.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lrrjax.errors import ConfigError
from lrrjax.lrr import admm, general, prox, score_head
from lrrjax.lrr.network import spectral_norm
from lrrjax.lrr.precision import highest

Array = jax.Array

# Horizontal differences kept per band for the noise estimate (the whole-scene
# path reads 256 rows: the same rows for W <= 513, fewer rows for wider scenes).
NOISE_ROWS = 256
NOISE_VALUES = 1 << 17
# Working memory of a strip, in float32 copies of it (X, S, E, the box sums and
# ring contrasts of the features, XLA's temporaries; the stages run in pixel
# blocks; measured 11.3-11.6 on strips of 100 and 200 rows x 512 x 200), and of
# the whole-scene path, in
# copies of the cube (measured: 3.29 GiB peak for a 512 x 512 x 200 cube of
# 0.2 GiB, BUILD_NOTES "Generalised LRR-Net+").
STRIP_OVERHEAD = 12
WHOLE_FACTOR = 16
FINISH_ROWS = 1024  # rows per strip of pass 3 (N_RAW maps; its halo, FEATURE_HALO, is 288 rows)


class FrozenStage(NamedTuple):
  """The global operators of one stage, estimated on the pixel sample.

  Stacked along a leading T axis for ``lax.scan``.
  """
  svt_kk: Array      # (K, K) F with J = F (L + Y2/mu)
  inv_kk: Array      # (K, K) (D^T D + I)^{-1}
  d_bk: Array        # (B, K) dictionary of the L and S steps
  d_next_bk: Array   # (B, K) dictionary after the atom step
  mu: Array          # penalty
  tau_s: Array       # column-shrink threshold (per pixel: needs no rescaling)


class PixelState(NamedTuple):
  """Per-pixel part of :class:`lrrjax.lrr.admm.AdmmState` (n pixels)."""
  l_kn: Array
  s_bn: Array
  y1_bn: Array
  y2_kn: Array


def _zero_state(x_bn: Array, k: int) -> PixelState:
  b, n = x_bn.shape
  z_kn = jnp.zeros((k, n), x_bn.dtype)
  z_bn = jnp.zeros((b, n), x_bn.dtype)
  return PixelState(z_kn, z_bn, z_bn, z_kn)


def _l_and_s(st: PixelState, x_bn: Array, op: FrozenStage) -> tuple[Array, Array, Array]:
  """``J = F M``, the L step and the S step of :func:`lrrjax.lrr.admm.stage`."""
  mu = op.mu
  j_kn = op.svt_kk @ (st.l_kn + st.y2_kn / mu)
  rhs_kn = op.d_bk.T @ (x_bn - st.s_bn + st.y1_bn / mu) + j_kn - st.y2_kn / mu
  l_kn = op.inv_kk @ rhs_kn
  s_bn = admm.update_s(x_bn, op.d_bk @ l_kn, st.y1_bn, mu, op.tau_s)
  return j_kn, l_kn, s_bn


def _close(st: PixelState, x_bn, j_kn, l_kn, s_bn, d_next_bk, mu) -> PixelState:
  """The multiplier step with the updated dictionary."""
  y1, y2 = admm.update_multipliers(x_bn, d_next_bk @ l_kn, s_bn, l_kn, j_kn,
                                   st.y1_bn, st.y2_kn, mu)
  return PixelState(l_kn, s_bn, y1, y2)


@highest
def frozen_unroll(x_bn: Array, d0_bk: Array, params: admm.StageParams, *,
                  outlier_k: float = 3.0) -> tuple[admm.AdmmState, FrozenStage]:
  """:func:`lrrjax.lrr.admm.unroll` (dictionary learned, bisection medians) on
  the sample ``x_bn`` (B, P), also returning every stage's :class:`FrozenStage`.

  Returns:
    ``(final AdmmState, FrozenStage stacked over T)``.
  """
  k = d0_bk.shape[1]

  def body(carry, p):
    st, d_bk = carry
    m_kn = st.l_kn + st.y2_kn / p.mu
    op = FrozenStage(prox.gram_shrink(m_kn @ m_kn.T, p.tau_l),
                     admm.inv_gram_plus_identity(d_bk.T @ d_bk), d_bk, d_bk,
                     p.mu, p.tau_s)
    j_kn, l_kn, s_bn = _l_and_s(st, x_bn, op)
    w_n = admm.background_weights(x_bn - d_bk @ l_kn, outlier_k, fast_median=True)
    d_next = admm.update_d(x_bn, s_bn, l_kn, d_bk, st.y1_bn, p.mu, p.eta, w_n)
    op = op._replace(d_next_bk=d_next)
    return (_close(st, x_bn, j_kn, l_kn, s_bn, d_next, p.mu), d_next), op

  d0 = admm.project_atoms(d0_bk)
  (st, d_bk), ops = jax.lax.scan(body, (_zero_state(x_bn, k), d0), params)
  return admm.AdmmState(st.l_kn, st.l_kn, st.s_bn, d_bk, st.y1_bn, st.y2_kn), ops


# Pixels per block of the stages (a cache-sized working set). On this 2-core
# machine, idle, a 64 x 1024 x 200 strip ran its (n, B) stages at 112 / 134
# GFLOP/s with blocks of 2048 / 4096 pixels (experiments/kernel_variants.py).
PIXEL_BLOCK = 4096


@highest
def apply_frozen_blocked(x_nb: Array, ops: FrozenStage, block: int = PIXEL_BLOCK,
                         fn=None) -> tuple[Array, Array]:
  """``fn`` (default :func:`apply_frozen`) over blocks of ``block`` pixels (``lax.map``).

  The stages are per pixel, so blocking changes nothing but the working set:
  a block's ~10 block x B temporaries stay in cache (on this 2-core CPU a
  263 x 512 x 200 strip ran its stages at ~22 GFLOP/s in one piece and at ~50 in
  blocks of 4096, under load; see PIXEL_BLOCK) and the memory of the stages no
  longer grows with the strip.
  The last block is zero-padded (zero pixels give zero S and E, then dropped).
  """
  fn = apply_frozen if fn is None else fn
  n, b = x_nb.shape
  nb = -(-n // block)
  x_kcb = jnp.pad(x_nb, ((0, nb * block - n), (0, 0))).reshape(nb, block, b)
  outs = jax.lax.map(lambda xc: fn(xc, ops), x_kcb)
  return tuple(o.reshape((nb * block,) + o.shape[2:])[:n] for o in outs)


def _frozen_step(l_nk, y2_nk, w_nb, q_nb, op: FrozenStage):
  """One frozen stage in the scaled form of :func:`apply_frozen`.

  Returns ``(L, Y2, V, ||V||, g, L D'^T)`` with ``V = W - L D^T``, its column
  norms (n, 1) and the shrink gains ``g = max(||V|| - tau_s, 0) / ||V||`` (n, 1):
  ``S = g V``.
  """
  mu = op.mu
  j_nk = (l_nk + y2_nk / mu) @ op.svt_kk.T
  l_nk = (q_nb @ op.d_bk + j_nk - y2_nk / mu) @ op.inv_kk.T
  v_nb = w_nb - l_nk @ op.d_bk.T
  norm_n1 = prox.safe_norm(v_nb, axis=-1)
  gain_n1 = jnp.maximum(norm_n1 - op.tau_s, 0.0) / jnp.where(norm_n1 > 0, norm_n1, 1.0)
  return l_nk, y2_nk + mu * (l_nk - j_nk), v_nb, norm_n1, gain_n1, l_nk @ op.d_next_bk.T


def _frozen_last_stage(x_nb: Array, ops: FrozenStage):
  """Stages 1..T-1 of :func:`apply_frozen`, then stage T's :func:`_frozen_step`."""
  c_t = ops.mu / jnp.concatenate([ops.mu[1:], ops.mu[-1:]])  # mu_t / mu_{t+1}

  def body(carry, op_c):
    op, c = op_c
    l_nk, y2_nk, v_nb, _, gain_n1, dnl_nb = _frozen_step(*carry, op)
    s_nb = gain_n1 * v_nb
    w_nb = x_nb + c * (carry[2] - dnl_nb - s_nb)
    return (l_nk, y2_nk, w_nb, w_nb - s_nb), None

  z_nk = jnp.zeros((x_nb.shape[0], ops.d_bk.shape[-1]), x_nb.dtype)
  first = jax.tree.map(lambda a: a[:-1], (ops, c_t))
  carry, _ = jax.lax.scan(body, (z_nk, z_nk, x_nb, x_nb), first)
  last = jax.tree.map(lambda a: a[-1], ops)
  return _frozen_step(*carry, last), last.tau_s


@highest
def apply_frozen(x_nb: Array, ops: FrozenStage) -> tuple[Array, Array]:
  """The T stages with frozen operators on any pixels ``x_nb`` (n, B), pixel-major.

  The stages of :func:`frozen_unroll` per pixel, in scaled form: with
  ``W_t = X + Y1_t / mu_t`` and ``Q_t = W_t - S_t``, stage t is
  ``J = (L + Y2/mu) F^T``, ``L = (Q D + J - Y2/mu) G^T`` (``G = (D^T D + I)^{-1}``),
  ``S = column_shrink(W - L D^T, tau_s)``, ``Y2 += mu (L - J)`` and
  ``W_{t+1} = X + (mu_t / mu_{t+1}) (W_t - L D'^T - S)`` (``Y1 += mu (X - D' L - S)``
  divided by the next ``mu``), ``Q_{t+1} = W_{t+1} - S``: the same values to
  float32 rounding with one pass fewer over an n x B array per stage than the
  ``Y1`` form (``experiments/kernel_variants.py``). A pixel's result does not
  depend on the others.

  Returns:
    ``(s_nb, e_nb)``: anomalies S and residual ``E = X - D_T L`` (n, B).
  """
  (_, _, v_nb, _, gain_n1, dnl_nb), _ = _frozen_last_stage(x_nb, ops)
  return gain_n1 * v_nb, x_nb - dnl_nb


@highest
def apply_frozen_norms(x_nb: Array, ops: FrozenStage) -> tuple[Array, Array]:
  """:func:`apply_frozen` returning ``||s_i||`` (n,) instead of S: the last
  shrink gives it as ``max(||v_i|| - tau_s, 0)``, so S is never written (the
  strips need only its norms). Returns ``(s_norm_n, e_nb)``."""
  (_, _, _, norm_n1, _, dnl_nb), tau_s = _frozen_last_stage(x_nb, ops)
  return jnp.maximum(norm_n1[:, 0] - tau_s, 0.0), x_nb - dnl_nb


# ------------------------------------------------------------ tiled form --


class TiledState(NamedTuple):
  """What :func:`fit` freezes for the strips."""
  lo: float              # global min of the raw cube
  span: float            # global max - min (1 for a constant cube)
  omega_b: np.ndarray    # (B,) learned band weights
  noise_b: np.ndarray    # (B,) band noise of the normalised cube
  ops: FrozenStage       # per-stage operators (stacked over T)
  a_f: np.ndarray        # (F,) head weights
  sample_pixels: int     # P
  pc_mean_b: np.ndarray  # (B,) principal axes of the band-weighted scene (every
  pc_bk: np.ndarray      # (B, PC_COMPONENTS)  pixel: stream_pc_basis)


def _noise_from_diffs(hdiff_db: np.ndarray, span: float, live_b: np.ndarray) -> Array:
  """:func:`lrrjax.lrr.general.band_noise` from raw horizontal differences (D, B)."""
  d_bd = jnp.asarray(hdiff_db.T, jnp.float32) / jnp.float32(span)
  return jnp.where(jnp.asarray(live_b), general.noise_from_diffs(d_bd), 0.0)


@jax.jit
def _normalize(raw_nb, lo, span):
  # as general.normalize_global: float32 (x - lo) / span, pixel-major (N, B)
  return (jnp.asarray(raw_nb, jnp.float32) - lo) / span


def fit(stats, finetune: bool = False, pretrained=None, workdir=None, progress=None,
        seed: int | None = None, **overrides) -> TiledState:
  """Scene context from the streamed statistics and the sample run.

  ``stats`` must carry ``hdiff_db`` (:data:`NOISE_ROWS` evenly spaced rows)
  and the covariance (:func:`stream_pc_basis`).
  The parameters are :func:`lrrjax.lrr.methods.lrrnet_plus`'s; per-scene
  training (``finetune``) has no tiled form.
  """
  del workdir, progress
  if finetune or overrides:
    raise ConfigError(
        "lrrnet-plus strip by strip uses the pretrained network only; --finetune "
        f"({', '.join(sorted(overrides)) or 'finetune'}) needs the whole scene in "
        "memory (raise --memory-budget)")
  if stats.hdiff_db is None or stats.width < 2:
    raise ConfigError(f"lrrnet-plus strip by strip needs a scene at least 2 pixels "
                      f"wide and the band-noise rows in the statistics (width {stats.width})")
  from lrrjax.lrr import cross, methods  # pylint: disable=import-outside-toplevel
  model, cfg = methods.load_general(pretrained)
  kw = cross.context_kwargs(cfg)
  if seed is not None:
    kw["seed"] = int(seed)
  lo = float(stats.band_min.min())
  span = float(stats.band_max.max()) - lo
  span = span if span > 0 else 1.0
  x_bp = _normalize(stats.sample_pb, jnp.float32(lo), jnp.float32(span)).T
  live = stats.band_max > stats.band_min
  noise_b = _noise_from_diffs(stats.hdiff_db, span, live)
  xa_bp = general.band_weights(noise_b, jnp.float32(kw["gamma0"]))[:, None] * x_bp
  atoms = general.dictionary_atoms(xa_bp, jnp.asarray(kw["seed"], jnp.uint32),
                                   kw["n_clusters"], kw["per_cluster"], kw["n_sample"])
  omega_b = general.band_weights(noise_b, model.gamma())
  xw_bp = omega_b[:, None] * x_bp
  p = x_bp.shape[1]
  if p < atoms.shape[0]:
    raise ConfigError(f"lrrnet-plus needs at least {atoms.shape[0]} pixels, the scene has {p}")
  sigma = spectral_norm(xw_bp)
  _, ops = jax.jit(frozen_unroll, static_argnames=("outlier_k",))(
      xw_bp, xw_bp[:, atoms], model.stage_params(sigma, p), outlier_k=model.outlier_k)
  if p == stats.n_pixels:  # the sample is the scene: the whole-scene path's own float32 axes
    pcs = jax.jit(general.pc_basis)(xw_bp)
    pc_mean_b, pc_bk = np.asarray(pcs.mean_b), np.asarray(pcs.v_bk)
  else:
    pc_mean_b, pc_bk = stream_pc_basis(stats, lo, span, np.asarray(omega_b))
  return TiledState(lo, span, np.asarray(omega_b), np.asarray(noise_b),
                    jax.tree.map(np.asarray, ops), np.asarray(model.a_f[...]), p,
                    pc_mean_b, pc_bk)


def stream_pc_basis(stats, lo: float, span: float, omega_b: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
  """:func:`lrrjax.lrr.general.pc_basis` of the whole scene from the streamed
  mean and covariance of the raw cube (every pixel, not the sample).

  The band-weighted pixels are ``x_w = omega (x - lo) / span``, so their mean is
  ``omega (mean - lo) / span`` and their covariance
  ``diag(omega) C diag(omega) / span^2``; its eigenvectors (float64) of the
  ``PC_COMPONENTS`` largest eigenvalues. Axes of the sample alone turned by
  ~0.009 rad on a 512 x 512 synthetic scene, enough to move the quantised
  principal-component top-hats of many background pixels by a level
  (strips vs whole scene: Spearman 0.770; with these axes 0.998,
  BUILD_NOTES "Parameter version 5"). When the sample holds every pixel,
  :func:`fit` takes the axes of the sample instead, computed as the whole-scene
  path does (float32 :func:`lrrjax.lrr.general.pc_basis`): float32 and float64
  axes differ by rounding, and that moved ~1.4 % of abu-airport-1's scores by a
  quantisation level step.

  Returns:
    ``(mean_b, v_bk)`` float32, as :class:`lrrjax.lrr.general.PCBasis`.

  Raises:
    ConfigError: ``stats`` without the covariance (``covariance=False``).
  """
  if stats.cov is None:
    raise ConfigError("lrrnet-plus strip by strip needs the streamed covariance of the "
                      "scene (stream_stats(..., covariance=True)) for its principal axes")
  om = np.asarray(omega_b, np.float64)
  mean_b = om * (np.asarray(stats.mean, np.float64) - lo) / span
  cov_bb = om[:, None] * np.asarray(stats.cov, np.float64) * om[None, :] / (span * span)
  _, v_bb = np.linalg.eigh(cov_bb)  # symmetric: stream_stats symmetrises C
  v_bk = v_bb[:, ::-1][:, :score_head.PC_COMPONENTS]
  return mean_b.astype(np.float32), np.ascontiguousarray(v_bk, np.float32)


def halo(state: TiledState) -> int:  # pylint: disable=unused-argument
  """Rows of context of the raw features: the outer half-width of the rings."""
  return max(o for _, o in general.RINGS + general.WHITE_RINGS)


def apply_frozen_devices(x_nb: Array, ops: FrozenStage, devices=None,
                         block: int = PIXEL_BLOCK, fn=None) -> tuple[Array, Array]:
  """:func:`apply_frozen_blocked` (of ``fn``, default :func:`apply_frozen`) with
  the pixels split over local devices.

  Traced inside ``jit``: the pixels (n, B) are padded to ``D x m`` (``m`` a
  multiple of ``block``), laid out as ``(D, m, B)`` with the leading axis
  sharded over a one-axis :class:`jax.sharding.Mesh` of the ``D`` devices, and
  the blocked stages are vmapped over it, so each device runs its own share
  (the stages are per pixel: no communication). One device:
  :func:`apply_frozen_blocked`.
  """
  devices = list(jax.local_devices() if devices is None else devices)
  if len(devices) == 1:
    return apply_frozen_blocked(x_nb, ops, block, fn)
  from jax.sharding import Mesh, NamedSharding, PartitionSpec  # pylint: disable=import-outside-toplevel
  nd = len(devices)
  n, b = x_nb.shape
  per = -(-n // (nd * block)) * block
  x_dmb = jnp.pad(x_nb, ((0, nd * per - n), (0, 0))).reshape(nd, per, b)
  mesh = Mesh(np.asarray(devices), ("devices",))
  x_dmb = jax.lax.with_sharding_constraint(x_dmb, NamedSharding(mesh, PartitionSpec("devices")))
  outs = jax.vmap(lambda xd: apply_frozen_blocked(xd, ops, block, fn))(x_dmb)
  return tuple(o.reshape((nd * per,) + o.shape[2:])[:n] for o in outs)


@jax.jit
def _strip_raw(tile_hwb, lo, span, omega_b, noise_b, ops, pcs):
  h, w, b = tile_hwb.shape
  x_nb = _normalize(tile_hwb.reshape(h * w, b), lo, span) * omega_b
  s_norm_n, e_nb = apply_frozen_devices(x_nb, ops, fn=apply_frozen_norms)
  return general.raw_features(s_norm_n, e_nb, noise_b, h, w, x_nb, pcs).reshape(-1, h, w)


def score(state: TiledState, tile_hwb: np.ndarray) -> np.ndarray:
  """The raw per-pixel values (N_RAW, h, W) of one strip (halo rows included)."""
  return np.asarray(_strip_raw(jnp.asarray(tile_hwb, jnp.float32), jnp.float32(state.lo),
                               jnp.float32(state.span), state.omega_b, state.noise_b,
                               state.ops, general.PCBasis(state.pc_mean_b, state.pc_bk)))


@jax.jit
def _strip_head(raw_fhw, med_f, a_f):
  _, h, w = raw_fhw.shape
  phi = general.features_from_raw(raw_fhw.reshape(raw_fhw.shape[0], -1), med_f, h, w)
  return general.head(general.HeadParams(a_f), phi).reshape(h, w)


def medians(raw_fhw) -> np.ndarray:
  """:func:`lrrjax.lrr.general.raw_medians` of the (memory-mapped) raw maps, one
  map in memory at a time (exact, over all pixels)."""
  n = general.N_NORMS
  med = [float(general.scene_median(jnp.asarray(raw_fhw[i]).reshape(-1))) for i in range(1, n)]
  pc = [np.asarray(general.pc_stats(jnp.asarray(raw_fhw[i]).reshape(1, -1)))
        for i in range(n, raw_fhw.shape[0])]
  return np.asarray(med + [s[0] for s in pc] + [s[1] for s in pc], np.float32)


def finish(state: TiledState, raw_fhw, tile_rows: int) -> Any:
  """Scores (H, W) float32 from the raw maps of every strip (pass 3)."""
  from lrrjax.io import stream  # pylint: disable=import-outside-toplevel
  med = medians(raw_fhw)
  _, hh, ww = raw_fhw.shape
  out = np.empty((hh, ww), np.float32)
  rows = max(tile_rows, FINISH_ROWS)
  tiles = ([stream.Tile(0, hh, 0, hh)] if rows >= hh else
           stream.plan_tiles(hh, rows, general.FEATURE_HALO, same_shape=True))
  for t in tiles:
    z = _strip_head(jnp.asarray(raw_fhw[:, t.p0:t.p1]), med, state.a_f)
    out[t.r0:t.r1] = np.asarray(z)[t.r0 - t.p0:t.r1 - t.p0]
  return out


def noise_rows(h: int, w: int) -> int:
  """Rows of horizontal differences for the band noise: the whole-scene
  path's 256 (:func:`lrrjax.lrr.general.band_noise`) while ``256 (W - 1) <=
  NOISE_VALUES`` (W <= 513), fewer for wider scenes."""
  return max(1, min(h, NOISE_ROWS, NOISE_VALUES // max(w - 1, 1)))
