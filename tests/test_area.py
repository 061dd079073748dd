"""Area openings in JAX (lrrjax.lrr.area) against scikit-image and scipy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage
from skimage import morphology

from lrrjax.lrr import area

LEVELS = tuple(k / 16 for k in range(8 * 16 + 1))


def _image(seed, h=40, w=36):
  """A log-residual-like map: noise, a few small and large bright blobs."""
  rng = np.random.default_rng(seed)
  f = rng.normal(0.0, 0.4, (h, w))
  for _ in range(6):
    r, c = rng.integers(0, h - 12), rng.integers(0, w - 12)
    sh, sw = rng.integers(1, 12, size=2)
    f[r:r + sh, c:c + sw] += rng.uniform(0.5, 4.0)
  return f.astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_component_labels_match_scipy(seed):
  mask = np.random.default_rng(seed).random((30, 27)) < 0.55
  lab = np.asarray(jax.jit(area.component_labels)(jnp.asarray(mask)))
  ref, n = ndimage.label(mask)  # 4-connectivity by default
  assert (lab[~mask] == mask.size).all()
  # same partition, and every label is the smallest raster index of its component
  for k in range(1, n + 1):
    comp = ref == k
    vals = np.unique(lab[comp])
    assert vals.size == 1 and vals[0] == np.flatnonzero(comp.ravel()).min()


def test_component_labels_of_a_long_snake():
  """One 4-connected serpentine path through the whole image (the longest
  component a 31 x 30 image holds), cut once near its end."""
  mask = np.zeros((31, 30), bool)
  mask[::2] = True                     # every other row ...
  mask[1::4, -1] = True                # ... joined at alternate ends
  mask[3::4, 0] = True
  mask[-1, 3:12] = False               # and a second component: a gap in the last row
  lab = np.asarray(jax.jit(area.component_labels)(jnp.asarray(mask)))
  ref, n = ndimage.label(mask)
  assert n == 2
  for k in range(1, n + 1):
    comp = ref == k
    vals = np.unique(lab[comp])
    assert vals.size == 1 and vals[0] == np.flatnonzero(comp.ravel()).min()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_area_tophats_within_one_level_of_skimage(seed):
  f = _image(seed)
  areas = (1, 5, 25, 121)
  got = np.asarray(jax.jit(lambda x: area.area_tophats(x, areas, LEVELS))(jnp.asarray(f)))
  g = np.maximum(f, 0.0).astype(np.float64)
  step = LEVELS[1] - LEVELS[0]
  for i, a in enumerate(areas):
    exact = g - morphology.area_opening(g, area_threshold=a, connectivity=1)
    d = got[i] - exact
    # quantised opening <= exact opening, by less than a level step (below the top level)
    assert d.min() >= -1e-5 and d.max() < step + 1e-5, (a, d.min(), d.max())
  # area 1: every component is large enough, the opening is g floored to the ladder
  np.testing.assert_allclose(got[0], g - np.floor(g * 16) / 16, atol=1e-5)


def test_area_tophats_is_local_with_halo():
  """Strips with a halo of max(areas) - 1 rows give the whole image's values."""
  f = _image(3, h=70, w=30)
  areas = (9, 25)
  whole = np.asarray(area.area_tophats(jnp.asarray(f), areas, LEVELS))
  halo = max(areas) - 1
  fn = jax.jit(lambda x: area.area_tophats(x, areas, LEVELS))
  for r0, r1 in [(0, 20), (20, 45), (45, 70)]:
    p0, p1 = max(r0 - halo, 0), min(r1 + halo, f.shape[0])
    part = np.asarray(fn(jnp.asarray(f[p0:p1])))
    np.testing.assert_array_equal(part[:, r0 - p0:r1 - p0], whole[:, r0:r1])


def test_area_tophats_gradient_is_finite():
  f = jnp.asarray(_image(4, 16, 16))
  g = jax.grad(lambda x: jnp.sum(area.area_tophats(x, (5, 25), LEVELS)))(f)
  assert np.isfinite(np.asarray(g)).all()
  # the opening carries no gradient: d/df of max(f, 0) summed over the areas
  np.testing.assert_allclose(np.asarray(g), 2.0 * (np.asarray(f) >= 0.0), atol=0)


def test_image_smaller_than_area_opens_to_lowest_level():
  f = jnp.asarray(np.random.default_rng(5).normal(0.0, 1.0, (4, 5)).astype(np.float32))
  got = np.asarray(area.area_openings(f, (25,), LEVELS))
  assert np.allclose(got, LEVELS[0])


def test_area_tophats_maps_equal_one_call_per_map():
  """Maps on ladders of different lengths in one loop (the shorter ladders
  padded with their lowest level) give exactly each map's own area_tophats,
  values and gradients."""
  coarse = tuple(k / 8 for k in range(-16, 17))          # 33 levels, from -2
  maps = np.stack([_image(6), -_image(7), 0.5 * _image(8)])
  ladders = [LEVELS, coarse, coarse[:9]]
  areas = (5, 25)
  got = np.asarray(jax.jit(lambda f: area.area_tophats_maps(f, areas, ladders))(
      jnp.asarray(maps)))
  assert got.shape == (3, 2) + maps.shape[1:]
  for m, levels in enumerate(ladders):
    want = np.asarray(jax.jit(lambda f, lv=levels: area.area_tophats(f, areas, lv))(
        jnp.asarray(maps[m])))
    np.testing.assert_array_equal(got[m], want)
  g = jax.grad(lambda f: jnp.sum(area.area_tophats_maps(f, areas, ladders)))(jnp.asarray(maps))
  lows = np.array([min(lv) for lv in ladders])[:, None, None]
  np.testing.assert_allclose(np.asarray(g), 2.0 * (maps >= lows), atol=0)


def test_area_tophats_maps_needs_one_ladder_per_map():
  with pytest.raises(ValueError, match="3 maps but 2 ladders"):
    area.area_tophats_maps(jnp.zeros((3, 8, 8)), (5,), [LEVELS, LEVELS])
