"""The guided filter of lrrjax.lrr.score_head (optional head maps; the shipped
head has none) against a
direct loop over windows, and its locality on strips."""

import jax
import jax.numpy as jnp
import numpy as np

from lrrjax.lrr import area, score_head


def _direct(guide, p, r, eps):
  """He et al.'s guided filter by explicit windows (clipped at the border)."""
  h, w = guide.shape
  win = lambda i, j: (slice(max(i - r, 0), i + r + 1), slice(max(j - r, 0), j + r + 1))  # noqa: E731
  a, b = np.zeros((h, w)), np.zeros((h, w))
  for i in range(h):
    for j in range(w):
      g, q = guide[win(i, j)], p[win(i, j)]
      a[i, j] = ((g * q).mean() - g.mean() * q.mean()) / (g.var() + eps)
      b[i, j] = q.mean() - a[i, j] * g.mean()
  out = np.zeros((h, w))
  for i in range(h):
    for j in range(w):
      out[i, j] = a[win(i, j)].mean() * guide[i, j] + b[win(i, j)].mean()
  return out


def test_guided_filter_matches_windows():
  rng = np.random.default_rng(0)
  guide = rng.normal(size=(19, 14))
  p = rng.normal(size=(2, 19, 14))
  got = np.asarray(score_head.guided_filter(jnp.asarray(guide, jnp.float32),
                                            jnp.asarray(p, jnp.float32), 2, 0.1))
  for c in range(2):
    np.testing.assert_allclose(got[c], _direct(guide, p[c], 2, 0.1), atol=2e-5)


def test_guided_filter_keeps_constants_and_guide_steps():
  guide = np.zeros((12, 12), np.float32)
  guide[:, 6:] = 3.0  # a step edge far above sqrt(eps)
  # a constant is kept exactly; p equal to the guide keeps its step (a ~ 1)
  p = np.stack([np.full_like(guide, 0.7), guide])
  got = np.asarray(score_head.guided_filter(jnp.asarray(guide), jnp.asarray(p), 2, 0.1))
  np.testing.assert_allclose(got[0], 0.7, atol=1e-6)
  assert np.abs(got[1] - guide).max() < 0.1


def test_head_maps_are_local_with_feature_halo_rows():
  """Area top-hats, then the guided filter: strips with a - 1 + 2r halo rows
  give the whole map's values (the rule behind FEATURE_HALO)."""
  rng = np.random.default_rng(1)
  f = rng.normal(0.0, 0.5, (60, 24)).astype(np.float32)
  f[20:26, 5:9] += 2.0
  areas, r, levels = (9, 16), 2, tuple(k / 16 for k in range(-64, 129))

  def maps(x):
    t = area.area_tophats(x, areas, levels)
    return score_head.guided_filter(jnp.clip(x, levels[0], levels[-1]), t, r, 0.1)

  fn = jax.jit(maps)
  whole = np.asarray(fn(jnp.asarray(f)))
  halo = max(areas) - 1 + 2 * r
  for r0, r1 in [(0, 17), (17, 40), (40, 60)]:
    p0, p1 = max(r0 - halo, 0), min(r1 + halo, f.shape[0])
    part = np.asarray(fn(jnp.asarray(f[p0:p1])))
    np.testing.assert_allclose(part[:, r0 - p0:r1 - p0], whole[:, r0:r1], atol=1e-5)


def test_feature_halo_covers_the_head_maps():
  assert score_head.FEATURE_HALO >= (max(score_head.AREAS) - 1
                                     + 2 * (score_head.GUIDED_R or 0))
  assert score_head.FEATURE_HALO >= 2 * max(score_head.TOPHATS)
  assert score_head.N_FEATURES == (3 + len(score_head.RINGS) + len(score_head.WHITE_RINGS)
                                   + len(score_head.TOPHATS) + len(score_head.AREAS)
                                   + score_head.N_GUIDED)
