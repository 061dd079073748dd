"""Area openings in pure JAX (threshold decomposition + connected components).

The area opening of a grey image ``f`` with area threshold ``a`` is

  gamma_a(f)(p) = max { t : the connected component of {f >= t} holding p
                            has at least a pixels },

so ``f - gamma_a(f)`` (the *white area top-hat*) keeps every bright structure,
at every grey level, of fewer than ``a`` pixels, whatever its shape, and drops
large bright regions (Vincent, 1993; the attribute filters of AED). scikit-image
computes it exactly with a max-tree, a sequential algorithm; here the grey levels
are quantised to a fixed ladder ``t_k`` and each level's components are found by
label propagation, all inside ``jit`` (no host callback, so it exports and runs
on CPU, GPU and TPU):

* levels from the top down (``lax.scan``); a level's binary image contains the
  one above it, so its labels start from the converged labels of that level and
  only the new pixels start from their own index;
* connected components (4-connected) by min-label propagation with root
  hooking and pointer jumping, in a ``lax.while_loop`` until nothing changes:
  each pixel takes the smallest label among itself and its neighbours, every
  *root* (the pixel a label names) takes the smallest such label of the pixels
  that name it (a scatter-min, as in Shiloach-Vishkin), and each pixel then
  follows its root (``l <- par[l]``, twice). Labels only decrease and always name
  a pixel of the same component, so they converge to the smallest raster index
  of the component, in a few iterations however long the component (at most 7
  a level on 1024 x 1024 noise maps; neighbour propagation with one jump alone
  needed up to ~400 on 512 x 512, and was 4-7x slower overall);
* a component's area by a segment sum over the labels.

The image is first clipped from below at the lowest level ``t_0``
(``g = max(f, t_0)``: at ``t_0`` the whole image is one component), and the
quantised opening of ``g`` is the highest ladder level at which the pixel's
component is large enough, so ``gamma_q <= gamma(g)`` and the quantised top-hat
exceeds the exact one of ``g`` by less than one level step below the top level
(tested against scikit-image).

Locality: whether the component of ``{f >= t}`` holding ``p`` has at least ``a``
pixels depends only on the pixels at most ``a - 1`` rows away (a component of
fewer pixels lies wholly within that distance; one of ``a`` or more holds at
least ``a`` pixels within it, a breadth-first ball around ``p``). Strips with a
halo of ``a - 1`` rows therefore give the whole image's values.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

Array = jax.Array


def _neighbour_min(lab_hw: Array, big: int) -> Array:
  """Min over the pixel and its 4 neighbours (``big`` outside the image)."""
  p = jnp.pad(lab_hw, 1, constant_values=big)
  return jnp.minimum(jnp.minimum(jnp.minimum(p[:-2, 1:-1], p[2:, 1:-1]),
                                 jnp.minimum(p[1:-1, :-2], p[1:-1, 2:])), lab_hw)


def component_labels(mask_hw: Array, init_hw: Array | None = None) -> Array:
  """Labels (H, W) int32 of the 4-connected components of ``mask_hw``: every
  pixel of a component gets the smallest raster index in it; ``H W`` outside.

  ``init_hw``: starting labels (each must be the raster index of a pixel of
  the same component, e.g. the converged labels of a sub-mask); default each
  pixel's own index.
  """
  h, w = mask_hw.shape
  big = h * w
  idx = jnp.arange(big, dtype=jnp.int32).reshape(h, w)
  lab = idx if init_hw is None else jnp.minimum(init_hw, idx)
  lab = jnp.where(mask_hw, lab, big)

  def step(lab):
    nxt = jnp.where(mask_hw, _neighbour_min(lab, big), big).reshape(-1)
    flat = lab.reshape(-1)
    # hook: each root takes the smallest neighbour label of the pixels naming it
    # (background pixels name ``big``, out of range: dropped)
    par = flat.at[flat].min(nxt, mode="drop")
    new = jnp.minimum(nxt, jnp.take(par, jnp.minimum(flat, big - 1)))
    new = jnp.minimum(new, jnp.take(par, jnp.minimum(new, big - 1)))
    return jnp.where(mask_hw, new.reshape(h, w), big)

  def cond(carry):
    return carry[1]

  def body(carry):
    lab, _ = carry
    new = step(lab)
    return new, jnp.any(new != lab)

  lab, _ = jax.lax.while_loop(cond, body, (lab, jnp.array(True)))
  return lab


def _openings_desc(f_hw: Array, areas: Sequence[int], t_k: Array, *,
                   border_large: bool = False) -> Array:
  """:func:`area_openings` on the ladder ``t_k`` given top down as an array
  (L,) (traced: one compiled loop serves any ladder of that length). A level
  equal to the one above it adds no pixel and is skipped, so a ladder padded
  at its bottom with repeats of its lowest level gives the same openings.

  ``border_large``: a component touching the image's first or last row or
  column counts as large whatever its area (the ``border`` ablation of
  ``experiments/head_features.py``; it failed its rule, so nothing ships it)."""
  low = t_k[-1]
  f_hw = jnp.maximum(jax.lax.stop_gradient(f_hw), low)
  h, w = f_hw.shape
  big = h * w
  a_a = jnp.asarray(list(areas), jnp.float32)[:, None, None]
  neg = jnp.asarray(-jnp.inf, f_hw.dtype)

  def grow(carry, mask, t):
    lab, gam = carry
    lab = component_labels(mask, lab)
    seg = jnp.minimum(lab, big - 1)
    counts = jax.ops.segment_sum(mask.reshape(-1).astype(jnp.float32), seg.reshape(-1),
                                 num_segments=big)
    area_hw = jnp.where(mask, jnp.take(counts, seg), 0.0)
    large = area_hw[None] >= a_a
    if border_large:
      rim = jnp.ones((h, w), bool).at[1:-1, 1:-1].set(False)
      touch = jax.ops.segment_max((mask & rim).reshape(-1).astype(jnp.int32), seg.reshape(-1),
                                  num_segments=big) > 0
      large = large | (mask & jnp.take(touch, seg))[None]
    hit = large & (gam == neg)
    return lab, jnp.where(hit, t, gam)

  def level(carry, t):
    # A level that adds no pixel to the one above has the same components and
    # areas, and every pixel whose area reached a threshold was set above:
    # skipped (the tails of a map; under vmap both branches would run).
    mask = f_hw >= t
    new = jnp.any(mask & (carry[0] == big))
    return jax.lax.cond(new, lambda c: grow(c, mask, t), lambda c: c, carry), None

  init = (jnp.full((h, w), big, jnp.int32), jnp.full((len(areas), h, w), neg, f_hw.dtype))
  (_, gam), _ = jax.lax.scan(level, init, t_k.astype(f_hw.dtype))
  return jnp.where(gam == neg, low.astype(f_hw.dtype), gam)


def _ladder(levels: Sequence[float], length: int | None = None) -> Array:
  """The ascending ladder ``levels`` top down, padded at the bottom to
  ``length`` with its lowest level, (length,)."""
  t = sorted(levels)[::-1]
  return jnp.asarray(t + [t[-1]] * ((length or len(t)) - len(t)), jnp.float32)


def area_openings(f_hw: Array, areas: Sequence[int], levels: Sequence[float]) -> Array:
  """Quantised area openings (len(areas), H, W) of ``max(f_hw, min(levels))``
  on the ascending ladder ``levels`` (see the module docstring); no gradient
  flows through the opening. An image of fewer than ``a`` pixels opens to the
  lowest level."""
  return _openings_desc(f_hw, areas, _ladder(levels).astype(f_hw.dtype))


def area_tophats(f_hw: Array, areas: Sequence[int], levels: Sequence[float]) -> Array:
  """White area top-hats ``g - gamma_a(g)`` of ``g = max(f, min(levels))``
  (len(areas), H, W), >= 0; the gradient is that of ``g``."""
  g = jnp.maximum(f_hw, min(levels))
  return g[None] - area_openings(g, areas, levels)


def area_tophats_maps(f_mhw: Array, areas: Sequence[int],
                      ladders: Sequence[Sequence[float]]) -> Array:
  """:func:`area_tophats` of each map ``f_mhw[m]`` on its own ladder
  ``ladders[m]``, (M, len(areas), H, W), by one ``lax.map`` (one compiled
  loop for all maps: the ladders are padded to the longest, which changes
  no value).

  ``lax.map``, not ``vmap``: one map at a time keeps the skipping of levels
  that add no pixel (a batched cond runs both branches) and stops each map's
  label propagation when that map has converged."""
  if len(ladders) != f_mhw.shape[0]:
    raise ValueError(f"{f_mhw.shape[0]} maps but {len(ladders)} ladders")
  length = max(len(lv) for lv in ladders)
  t_ml = jnp.stack([_ladder(lv, length) for lv in ladders]).astype(f_mhw.dtype)

  def one(args):
    f_hw, t_k = args
    g = jnp.maximum(f_hw, t_k[-1])
    return g[None] - _openings_desc(g, areas, t_k)

  return jax.lax.map(one, (f_mhw, t_ml))
