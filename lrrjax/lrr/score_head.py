"""The score head of the generalised LRR-Net+ (:mod:`lrrjax.lrr.general`):
scale-free per-pixel features of the LRR result and their non-negative
combination.

Features (:func:`features`): ``log(1 + ||s_i|| / m)``, ``log(||e_i|| / m)`` with
``e = X - D L`` and ``m = median ||e_i||``, its noise-whitened version, the local
contrast of the residual at the dual windows of ``RINGS`` (none since parameter
version 2) and of the whitened residual at ``WHITE_RINGS``, white top-hats of the
residual map by squares (``TOPHATS``) and by area (``AREAS``, since parameter
version 3: :mod:`lrrjax.lrr.area`); optionally the area top-hats after an
edge-preserving (guided) filter (``GUIDED_R``; none in the shipped head), and
(since parameter version 5) AED's attribute step on the scene itself: white and
black area top-hats of its first ``PC_COMPONENTS`` standardised principal
components (:func:`pc_features`), and (since version 6) the same top-hats
divided by each component's local clutter scale (``PC_CFAR``).
Score (:func:`head`): ``z = softplus(a) . phi``. Each raw value depends only on
a pixel's window, so strips with a halo give the whole scene's values
(:mod:`lrrjax.lrr.tiled`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from lrrjax.lrr import area, prox
from lrrjax.lrr.scene import band_weights

Array = jax.Array

# (inner half-width, outer half-width) of the dual windows. Parameter version 1
# had plain rings 3/9, 5/15 and 9/19 as well; the head trained on all 14 scenes
# gave them weights < 0.012 and leaving them out changed no LOSO AUC (BUILD_NOTES
# "Later ablations"), while their box sums cost ~60 % of the feature pass.
RINGS = ()
WHITE_RINGS = ((2, 7),)   # on the noise-whitened residual
TOPHATS = (2, 5, 8)       # half-widths of the square openings: 5x5, 11x11, 17x17
# Area thresholds (pixels) of the area openings: the areas of the three squares,
# any shape. Grey levels of the log residual map quantised to steps of 1/16 from
# -4 to 8 (e^-4 ~ 0.02 and e^8 ~ 3000 medians; the 14 shared scenes' maps span
# -1.4 .. 3.9); below -4 the map is clipped. (The first version clipped at the
# median, 0: BUILD_NOTES "Parameter version 3".)
AREAS = (25, 121, 289)
AREA_LEVELS = tuple(k / 16 for k in range(-4 * 16, 8 * 16 + 1))
# The guided filter (He et al., ECCV 2010) of the area top-hats, guided by the
# clipped log residual map itself: (2r+1)^2 windows, eps in log units squared.
# AED's edge-preserving step as a strip-local operator. None: no guided
# features. It was shipped briefly as parameter version 4 (GUIDED_R = 2,
# GUIDED_EPS = 0.1) and withdrawn: with a consistent feature pool it changed
# the leave-one-scene-out AUC by +0.0002 (mean) / +0.0004 (worst scene), not
# worth its cost (BUILD_NOTES "Parameter version 4, withdrawn").
GUIDED_R = None
GUIDED_EPS = 0.1
N_GUIDED = len(AREAS) if GUIDED_R is not None else 0
# AED's attribute step (Kang et al., IEEE TGRS 2017) on the scene's first
# PC_COMPONENTS principal components (band-weighted input; components of the
# whole scene, of the pixel sample in strips), each standardised by its median
# and 1.4826 MAD: white + black area top-hats at AREAS on a ladder of MAD units
# -8..8 in steps of 1/8, summed over components and polarities, log1p; one
# feature per area. Fixed before any AUC of it (BUILD_NOTES "Parameter version 5").
PC_COMPONENTS = 3
PC_LEVELS = tuple(k / 8 for k in range(-8 * 8, 8 * 8 + 1))
# Since parameter version 6, the same top-hats once more with each component's
# divided by its local clutter scale (a CFAR normalisation): max(1, c_k), c_k the
# standard deviation of the standardised score over the ring between the
# (2 PC_CFAR[0] + 1)^2 and (2 PC_CFAR[1] + 1)^2 squares (pixels inside the
# image). None: no such features. Fixed before any AUC of it (BUILD_NOTES
# "CFAR-normalised principal-component top-hats").
PC_CFAR = (8, 16)
N_PC = (2 if PC_CFAR else 1) * len(AREAS) if PC_COMPONENTS else 0
N_FEATURES = (3 + len(RINGS) + len(WHITE_RINGS) + len(TOPHATS) + len(AREAS) + N_GUIDED
              + N_PC)


def _box_sum(x_hwc: Array, r: int) -> Array:
  """Sum over the (2r+1) x (2r+1) window centred on each pixel (zero outside),
  (H, W, C).

  Separable: a (2r+1)-tap sum along rows, then along columns (O(r) per pixel;
  ``jnp.cumsum`` lowers to a quadratic reduce_window on XLA:CPU; shifted-slice
  sums and summed-area tables were slower, ``experiments/kernel_variants.py``).
  """
  k = 2 * r + 1
  pad = ((r, r), (0, 0), (0, 0))
  s = jax.lax.reduce_window(x_hwc, 0.0, jax.lax.add, (k, 1, 1), (1, 1, 1), pad)
  pad = ((0, 0), (r, r), (0, 0))
  return jax.lax.reduce_window(s, 0.0, jax.lax.add, (1, k, 1), (1, 1, 1), pad)


def _window_count(n: int, r: int) -> Array:
  """Pixels of a (2r+1) window centred on each of n positions inside [0, n), (n,)."""
  i = jnp.arange(n)
  return (jnp.minimum(i + r, n - 1) - jnp.maximum(i - r, 0) + 1).astype(jnp.float32)


def _ring_count(h: int, w: int, inner: int, outer: int) -> Array:
  """Pixels of each pixel's dual-window ring inside the image, (H, W), >= 1."""
  cnt = (_window_count(h, outer)[:, None] * _window_count(w, outer)[None, :]
         - _window_count(h, inner)[:, None] * _window_count(w, inner)[None, :])
  return jnp.maximum(cnt, 1.0)


def ring_mean(x_hwb: Array, inner: int, outer: int) -> Array:
  """Mean over the dual-window ring (outer square minus inner square) of each
  pixel, counting only pixels inside the image; (H, W, B)."""
  h, w, _ = x_hwb.shape
  num = _box_sum(x_hwb, outer) - _box_sum(x_hwb, inner)
  return num / _ring_count(h, w, inner, outer)[:, :, None]


def guided_filter(guide_hw: Array, p_chw: Array, r: int, eps: float) -> Array:
  """Guided filter (He et al. 2010) of each channel of ``p_chw`` (C, H, W) by
  ``guide_hw`` (H, W); (C, H, W).

  In every (2r+1)^2 window ``k`` (clipped at the border) the output is the
  linear function of the guide ``q = a_k I + b_k`` closest to ``p`` in least
  squares with a ridge ``eps a_k^2``: ``a_k = cov_k(I, p) / (var_k(I) + eps)``,
  ``b_k = mean_k(p) - a_k mean_k(I)``; each pixel averages the ``a_k``, ``b_k`` of
  the windows that hold it. It smooths ``p`` where the guide is flat and keeps
  its steps where the guide has edges. A value reads 2r rows around its pixel.
  """
  h, w = guide_hw.shape
  cnt = (_window_count(h, r)[:, None] * _window_count(w, r)[None, :])[:, :, None]

  def mean(x_hwc):
    return _box_sum(x_hwc, r) / cnt

  g = guide_hw[:, :, None]
  p = jnp.moveaxis(p_chw, 0, -1)
  mg, mp = mean(g), mean(p)
  a = (mean(g * p) - mg * mp) / (mean(g * g) - mg * mg + eps)
  b = mp - a * mg
  return jnp.moveaxis(mean(a) * g + mean(b), -1, 0)


def grey_opening(f_hw: Array, r: int) -> Array:
  """Grey-level opening (erosion, then dilation) by a (2r+1)^2 square, (H, W)."""
  win, one = (2 * r + 1, 2 * r + 1), (1, 1)
  ero = jax.lax.reduce_window(f_hw, jnp.inf, jax.lax.min, win, one, "SAME")
  return jax.lax.reduce_window(ero, -jnp.inf, jax.lax.max, win, one, "SAME")


N_NORMS = 3 + len(RINGS) + len(WHITE_RINGS)  # per-pixel norms behind the features
N_RAW = N_NORMS + PC_COMPONENTS                # ... and the principal-component scores
TOPHAT_HALO = 2 * max(TOPHATS)  # rows an opening (erosion, then dilation) reads
# Rows the features read around a pixel: the square openings', and an area
# opening's a - 1 (lrrjax.lrr.area: "Locality") plus the guided filter's 2r.
# (and the CFAR ring's outer half-width).
FEATURE_HALO = max(TOPHAT_HALO, max(AREAS, default=1) - 1 + 2 * (GUIDED_R or 0),
                   PC_CFAR[1] if PC_CFAR else 0)


class PCBasis(NamedTuple):
  """Principal axes of a scene's band-weighted pixels (:func:`pc_basis`)."""
  mean_b: Array   # (B,) band means
  v_bk: Array     # (B, PC_COMPONENTS) eigenvectors of the covariance, largest first


RITZ_BLOCK = 8     # subspace size of the symbolic-shape principal axes
RITZ_ITERS = 40


def _ritz_axes(c_bb: Array, k: int) -> Array:
  """The top-``k`` eigenvectors of the symmetric PSD ``c_bb`` (B, B) by subspace
  iteration on a block of ``RITZ_BLOCK`` vectors (start: the first cosine
  basis vectors over the bands; Gram-Schmidt twice per step), then
  Rayleigh-Ritz: the eigenvectors of the small ``V^T C V``. Only fixed-size
  decompositions, so it lowers with a symbolic band count (``jax.export``:
  XLA's eigh needs static non-batch dimensions). Ritz vector i converges like
  ``(lambda_{RITZ_BLOCK+1} / lambda_i)^iters``."""
  b = c_bb.shape[0]
  p = RITZ_BLOCK
  t = (jnp.arange(b, dtype=c_bb.dtype) + 0.5) / b
  v = jnp.cos(jnp.pi * t[:, None] * jnp.arange(p, dtype=c_bb.dtype)[None, :])

  def orth(v):
    cols = []
    for j in range(p):
      u = v[:, j]
      for _ in range(2):
        for q in cols:
          u = u - jnp.dot(q, u) * q
      cols.append(u / jnp.maximum(jnp.linalg.norm(u), jnp.finfo(c_bb.dtype).tiny))
    return jnp.stack(cols, axis=1)

  v = jax.lax.fori_loop(0, RITZ_ITERS, lambda _, v: orth(c_bb @ v), orth(v))
  _, w_pp = jnp.linalg.eigh(v.T @ c_bb @ v)
  return v @ w_pp[:, ::-1][:, :k]


def pc_basis(x_bn: Array) -> PCBasis:
  """The first ``PC_COMPONENTS`` principal axes of the pixels ``x_bn`` (B, N):
  eigenvectors of the B x B covariance ``(X - m)(X - m)^T / N`` of the largest
  eigenvalues (their signs do not matter: the features are symmetric in them).
  No gradient. ``jnp.linalg.eigh`` when B is known; with a symbolic B (the
  exported detector) :func:`_ritz_axes`, the same axes to float rounding where
  the spectrum has a gap after the block (tested on the 14 shared scenes)."""
  x = jax.lax.stop_gradient(x_bn)
  m_b = jnp.mean(x, axis=1)
  xc = x - m_b[:, None]
  c_bb = xc @ xc.T / x.shape[1]
  if not isinstance(x.shape[0], int):
    return PCBasis(m_b, _ritz_axes(c_bb, PC_COMPONENTS))
  _, v_bb = jnp.linalg.eigh(c_bb)
  return PCBasis(m_b, v_bb[:, ::-1][:, :PC_COMPONENTS])


def raw_features(s_norm_n: Array, e_nb: Array, noise_b: Array, h: int, w: int,
                 x_nb: Array | None = None, pcs: PCBasis | None = None) -> Array:
  """The per-pixel values the features are made of, (N_RAW, N), from the column
  norms of ``S`` (N,), the pixel-major residual ``E`` (N, B), the band-weighted
  input ``x_nb`` (N, B) and the scene's principal axes ``pcs``, pixels in raster
  order.

  ``||s_i||``, ``||e_i||``, ``||e_i omega||`` (``omega = band_weights(sigma, 1)``:
  1 / sigma relative to the median, floored, 0 for dead bands), then for each
  dual window of ``RINGS`` ``||e_i - ring_mean(E)_i||`` (local contrast) and for
  each of ``WHITE_RINGS`` the same of the noise-whitened residual. Each value
  depends only on the pixel's own window (at most ``max(RINGS outer)`` rows
  away), so strips with that halo give the same values as the whole scene. Then
  the ``PC_COMPONENTS`` principal-component scores ``(x_i - m) . v_k`` (per
  pixel; needs ``x_nb`` and ``pcs`` when ``PC_COMPONENTS > 0``).
  """
  b = e_nb.shape[1]
  norm = lambda v_nb: prox.safe_norm(v_nb, axis=-1)[:, 0]  # noqa: E731
  # 1 / sigma_b with sigma_b floored at 0.1 median sigma, as in band_weights:
  # near-constant bands (sigma ~1e-12 on abu-beach-2) would otherwise dominate.
  inv_b = band_weights(noise_b, 1.0)

  # Box sums once per distinct half-width; the whitened ring mean is the ring
  # mean scaled per band (a box sum commutes with a per-band factor).
  e_hwb = e_nb.reshape(h, w, b)
  boxes = {r: _box_sum(e_hwb, r) for r in sorted({r for ring in RINGS + WHITE_RINGS
                                                  for r in ring})}

  def ring(inner, outer):
    return (boxes[outer] - boxes[inner]) / _ring_count(h, w, inner, outer)[:, :, None]

  raw = [s_norm_n, norm(e_nb), norm(e_nb * inv_b)]
  raw += [norm((e_hwb - ring(i, o)).reshape(-1, b)) for i, o in RINGS]
  raw += [norm((inv_b * (e_hwb - ring(i, o))).reshape(-1, b)) for i, o in WHITE_RINGS]
  raw = jnp.stack(raw)
  if not PC_COMPONENTS:
    return raw
  if x_nb is None or pcs is None:
    raise ValueError("raw_features needs the input x_nb and its principal axes pcs "
                     f"(PC_COMPONENTS = {PC_COMPONENTS})")
  p_kn = ((jax.lax.stop_gradient(x_nb) - pcs.mean_b) @ pcs.v_bk).T
  return jnp.concatenate([raw, p_kn.astype(raw.dtype)])


def scene_median(v: Array, axis: int = -1) -> Array:
  """Median along ``axis`` (:func:`lrrjax.lrr.prox.bisect_median`) floored at
  the dtype's ``tiny``, without gradient: the scale of a feature."""
  tiny = jnp.finfo(v.dtype).tiny
  return jax.lax.stop_gradient(jnp.maximum(prox.bisect_median(v, axis=axis), tiny))


def pc_stats(p_kn: Array) -> Array:
  """Median and MAD of each principal-component score over the scene,
  (2 K,): ``[med_1..med_K, mad_1..mad_K]`` (:func:`lrrjax.lrr.prox.bisect_median`,
  no gradient; these can be negative, so no floor)."""
  p = jax.lax.stop_gradient(p_kn)
  med = prox.bisect_median(p, axis=-1)
  mad = prox.bisect_median(jnp.abs(p - med[..., None]), axis=-1)
  return jnp.concatenate([med, mad], axis=-1)


def raw_medians(raw_fn: Array) -> Array:
  """The scene statistics of the raw values, (N_NORMS - 1 + 2 PC_COMPONENTS,):
  medians of the norms but the first (:func:`scene_median`), then
  :func:`pc_stats` of the principal-component scores."""
  med = scene_median(raw_fn[1:N_NORMS], axis=1)
  if not PC_COMPONENTS:
    return med
  return jnp.concatenate([med, pc_stats(raw_fn[N_NORMS:])])


def pc_features(p_kn: Array, stats_k2: Array, h: int, w: int) -> Array:
  """AED's attribute step on principal-component scores, (N_PC, N).

  With ``z_k = (p_k - med_k) / (1.4826 mad_k)`` (``stats_k2`` from
  :func:`pc_stats`), for each area ``a`` of ``AREAS``
  ``log(1 + sum_k [WTH_a(z_k) + WTH_a(-z_k)])``, ``WTH_a`` the white area
  top-hat on the ladder ``PC_LEVELS`` (:func:`lrrjax.lrr.area.area_tophats`):
  every connected structure of fewer than ``a`` pixels brighter *or darker*
  than its surroundings in any component. With ``PC_CFAR = (g, o)`` the same
  once more as ``log(1 + sum_k [WTH_a(z_k) + WTH_a(-z_k)] / max(1, c_k))``,
  ``c_k`` the standard deviation of ``z_k`` over the ring between the
  (2g+1)^2 and (2o+1)^2 squares around the pixel (:func:`ring_mean`): top-hats
  discounted where the clutter is rougher than the scene's MAD unit, never
  amplified. Reads ``max(AREAS) - 1`` (and ``o``) rows around a pixel.
  """
  z_mhw = _pc_maps(p_kn, stats_k2, h, w)
  tops = area.area_tophats_maps(z_mhw, AREAS, [PC_LEVELS] * z_mhw.shape[0])
  return _pc_combine(z_mhw, tops)


def _pc_maps(p_kn: Array, stats_k2: Array, h: int, w: int) -> Array:
  """The standardised scores and their negatives ``[z_1..z_K, -z_1..-z_K]``,
  (2K, H, W)."""
  k = p_kn.shape[0]
  med, mad = stats_k2[:k, None], stats_k2[k:, None]
  z_kn = (p_kn - med) / jnp.maximum(1.4826 * mad, jnp.finfo(p_kn.dtype).tiny)
  return jnp.concatenate([z_kn, -z_kn]).reshape(2 * k, h, w)


def _pc_combine(z_mhw: Array, tops: Array) -> Array:
  """:func:`pc_features` from the maps of :func:`_pc_maps` and their area
  top-hats ``tops`` (2K, len(AREAS), H, W)."""
  k = z_mhw.shape[0] // 2
  plain = jnp.log1p(jnp.sum(tops, axis=0)).reshape(len(AREAS), -1)
  if not PC_CFAR:
    return plain
  z_hwk = jnp.moveaxis(z_mhw[:k], 0, -1)
  # the first and second moments in one pair of box sums (channels 0..K-1, K..2K-1)
  m12 = ring_mean(jnp.concatenate([z_hwk, z_hwk * z_hwk], axis=-1), *PC_CFAR)
  m1, m2 = m12[..., :k], m12[..., k:]
  c_khw = jnp.moveaxis(jnp.sqrt(jnp.maximum(m2 - m1 * m1, 0.0)), -1, 0)
  scale = jnp.maximum(jnp.concatenate([c_khw, c_khw]), 1.0)       # (2K, H, W)
  normed = jnp.log1p(jnp.sum(tops / scale[:, None], axis=0)).reshape(len(AREAS), -1)
  return jnp.concatenate([plain, normed])


def features_from_raw(raw_fn: Array, med_f: Array, h: int, w: int) -> Array:
  """The head's features (N_FEATURES, N) from :func:`raw_features` and the scene
  medians ``med_f`` (:func:`raw_medians`).

  With ``m = median ||e_i||``: ``log(1 + ||s_i|| / m)``, then for every other
  raw norm ``v`` ``log(max(v, 1e-6 med v) / med v)``, then for each half-width
  ``r`` of ``TOPHATS`` the white top-hat of the map ``log(||e_i|| / m)`` by a
  (2r+1)^2 square (bright structures narrower than the square: small targets
  stay, large bright blocks go), then for each ``a`` of ``AREAS`` the white
  area top-hat of ``log(||e_i|| / m)`` (clipped at ``min(AREA_LEVELS)``; bright connected structures
  of fewer than ``a`` pixels at any grey level, whatever their shape;
  quantised to ``AREA_LEVELS``), then the area top-hats after
  :func:`guided_filter` (half-width ``GUIDED_R``, ``GUIDED_EPS``) guided by the
  clipped map, then :func:`pc_features` of the principal-component scores
  (``med_f``'s last ``2 PC_COMPONENTS`` entries: their :func:`pc_stats`). A
  value reads ``FEATURE_HALO`` rows around its pixel.
  """
  med = med_f[:N_NORMS - 1, None]
  rel = jnp.log(jnp.maximum(raw_fn[1:N_NORMS], 1e-6 * med) / med)
  lr_hw = rel[0].reshape(h, w)
  tops = [(lr_hw - grey_opening(lr_hw, r)).reshape(-1) for r in TOPHATS]
  if AREAS:
    # The residual map's area top-hats and the principal components' in one
    # loop (area.area_tophats_maps): the same values as one call each, with
    # one compiled opening instead of two (~0.3 s less to compile).
    maps, ladders = lr_hw[None], [AREA_LEVELS]
    if N_PC:
      z_mhw = _pc_maps(raw_fn[N_NORMS:], med_f[N_NORMS - 1:], h, w)
      maps = jnp.concatenate([maps, z_mhw.astype(lr_hw.dtype)])
      ladders += [PC_LEVELS] * z_mhw.shape[0]
    tops_m = area.area_tophats_maps(maps, AREAS, ladders)
    at_ahw = tops_m[0]
    tops += list(at_ahw.reshape(len(AREAS), -1))
    if N_GUIDED:
      guide = jnp.clip(lr_hw, min(AREA_LEVELS), max(AREA_LEVELS))
      tops += list(guided_filter(guide, at_ahw, GUIDED_R, GUIDED_EPS).reshape(N_GUIDED, -1))
    if N_PC:
      tops += list(_pc_combine(z_mhw, tops_m[1:]))
  return jnp.concatenate([jnp.log1p(raw_fn[:1] / med[:1]), rel, jnp.stack(tops)])


def features(s_nb: Array, e_nb: Array, noise_b: Array, h: int, w: int,
             x_nb: Array | None = None, pcs: PCBasis | None = None) -> Array:
  """Scale-free per-pixel features (F, N) of the LRR result ``S``, ``E = X - D L``
  and the input ``x_nb`` (pixel-major, (N, B)); ``pcs`` default
  :func:`pc_basis` of ``x_nb``.

  :func:`features_from_raw` of :func:`raw_features` with the scene's own
  medians (:func:`raw_medians`): ``log(1 + ||s_i|| / m)``; ``log(||e_i|| / m)``;
  the same for the noise-whitened residual; the local contrast of the residual
  at the dual windows of ``RINGS`` and of the whitened residual at
  ``WHITE_RINGS``; white top-hats of ``log(||e_i|| / m)`` at ``TOPHATS``, area
  top-hats at ``AREAS``; :func:`pc_features`.
  """
  if PC_COMPONENTS and pcs is None and x_nb is not None:
    pcs = pc_basis(x_nb.T)
  raw = raw_features(prox.safe_norm(s_nb, axis=-1)[:, 0], e_nb, noise_b, h, w, x_nb, pcs)
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
