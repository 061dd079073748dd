"""The guided filter of lrrjax.lrr.score_head (optional head maps; the shipped
head has none) against a
direct loop over windows, and its locality on strips."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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
                                   + score_head.N_GUIDED + score_head.N_PC)


# ---------------------------------------------- principal-component features --


def _pc_oracle(x_bn, h, w):
  """pc_features by numpy / scipy / scikit-image: eigh of the covariance,
  medians and MADs by sorting, exact area openings of the map floored to the
  ladder (on ladder-valued images the quantised opening is exact)."""
  from skimage import morphology  # pylint: disable=import-outside-toplevel
  x = np.asarray(x_bn, np.float64)
  xc = x - x.mean(axis=1, keepdims=True)
  _, v = np.linalg.eigh(xc @ xc.T / x.shape[1])
  p = v[:, ::-1][:, :score_head.PC_COMPONENTS].T @ xc
  lo, step = score_head.PC_LEVELS[0], score_head.PC_LEVELS[1] - score_head.PC_LEVELS[0]
  hi = score_head.PC_LEVELS[-1]
  tot = np.zeros((len(score_head.AREAS), h, w))
  normed = np.zeros_like(tot)
  for pk in p:
    srt = np.sort(pk)
    med = srt[(pk.size - 1) // 2]                     # the lower middle value
    mad = np.sort(np.abs(pk - med))[(pk.size - 1) // 2]
    z = (pk - med) / (1.4826 * mad)
    scale = np.maximum(_ring_std(z.reshape(h, w), *score_head.PC_CFAR), 1.0)
    for f in (z, -z):
      g = np.maximum(f, lo).reshape(h, w)
      q = np.minimum(np.floor((g - lo) / step) * step + lo, hi)
      for i, a in enumerate(score_head.AREAS):
        top = g - morphology.area_opening(q, area_threshold=a, connectivity=1)
        tot[i] += top
        normed[i] += top / scale
  out = [tot] + ([normed] if score_head.PC_CFAR else [])
  return np.log1p(np.concatenate(out)).reshape(score_head.N_PC, -1)


def _ring_std(z_hw, inner, outer):
  """Standard deviation of ``z_hw`` over each pixel's ring (outer square minus
  inner square, pixels inside the image), by explicit windows."""
  h, w = z_hw.shape
  out = np.zeros((h, w))
  for i in range(h):
    for j in range(w):
      win = np.zeros((h, w), bool)
      win[max(i - outer, 0):i + outer + 1, max(j - outer, 0):j + outer + 1] = True
      win[max(i - inner, 0):i + inner + 1, max(j - inner, 0):j + inner + 1] = False
      out[i, j] = z_hw[win].std()
  return out


def _pc_scene(seed, h=40, w=36, b=12):
  """A smooth rank-3 background, noise, a small bright and a small dark blob, (B, N)."""
  rng = np.random.default_rng(seed)
  r, c = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
  coef = np.stack([np.sin(3 * r + c), np.cos(2 * c - r), r * c]).reshape(3, -1)
  x = rng.normal(size=(b, 3)) @ coef + 0.05 * rng.normal(size=(b, h * w))
  img = x.reshape(b, h, w)
  img[:, 5:8, 6:9] += 3.0 * rng.normal(size=(b, 1, 1))
  img[:, 20:22, 25:30] -= 2.0 * rng.normal(size=(b, 1, 1))
  return img.reshape(b, -1).astype(np.float32)


def _pc_features(x_bn, h, w):
  pcs = score_head.pc_basis(jnp.asarray(x_bn))
  p_kn = ((jnp.asarray(x_bn).T - pcs.mean_b) @ pcs.v_bk).T
  return np.asarray(score_head.pc_features(p_kn, score_head.pc_stats(p_kn), h, w))


def test_pc_features_match_numpy_and_skimage():
  for seed in (0, 1):
    x = _pc_scene(seed)
    got = _pc_features(x, 40, 36)
    # float32 principal axes and medians against float64: the ladder floors a
    # few values differently (one level, 1/8) at most
    d = np.abs(np.expm1(got) - np.expm1(_pc_oracle(x, 40, 36)))
    assert got.shape == (score_head.N_PC, 40 * 36)
    assert np.mean(d < 1e-3) > 0.97 and d.max() < 2 * 2 * score_head.PC_COMPONENTS / 8


def test_pc_features_ignore_offsets_scales_and_axis_signs():
  x = _pc_scene(2)
  base = _pc_features(x, 40, 36)
  # (float32 rounding moves a few values across a ladder level: one step each)
  d = np.abs(np.expm1(_pc_features(3.0 * x + 5.0, 40, 36)) - np.expm1(base))
  assert np.mean(d < 1e-3) > 0.97 and d.max() < 2 * 2 * score_head.PC_COMPONENTS / 8
  # flipping a component's sign swaps its white and black top-hats: same sum
  # (an odd pixel count, so that the median of -p is minus that of p)
  x = _pc_scene(2, 39, 35)
  pcs = score_head.pc_basis(jnp.asarray(x))
  p_kn = ((jnp.asarray(x).T - pcs.mean_b) @ pcs.v_bk).T
  flipped = p_kn * jnp.asarray([-1.0, 1.0, -1.0])[:, None]
  d = np.abs(np.expm1(score_head.pc_features(flipped, score_head.pc_stats(flipped), 39, 35))
             - np.expm1(score_head.pc_features(p_kn, score_head.pc_stats(p_kn), 39, 35)))
  assert np.mean(d < 1e-4) > 0.99 and d.max() < 2 * 2 * score_head.PC_COMPONENTS / 8


def test_pc_features_fire_on_dark_and_bright_blobs():
  x = _pc_scene(3)
  phi = _pc_features(x, 40, 36)[list(score_head.AREAS).index(25)].reshape(40, 36)
  bg = np.median(phi)
  assert phi[5:8, 6:9].min() > bg + 1.0 and phi[20:22, 25:30].min() > bg + 1.0


def test_cfar_pc_features_discount_rough_clutter_and_never_amplify():
  """The CFAR copies of the PC top-hats (``PC_CFAR``) never exceed the plain
  ones, and the same small blob keeps its top-hat in a flat region but loses
  most of it inside a rough one (texture along the blob's own spectrum)."""
  if not score_head.PC_CFAR:
    pytest.skip("no CFAR features in this head (score_head.PC_CFAR is None)")
  n_a, h, w, b = len(score_head.AREAS), 80, 80, 12
  rng = np.random.default_rng(4)
  v = rng.normal(size=(b, 1, 1))
  v /= np.linalg.norm(v)
  img = rng.uniform(0.2, 0.8, size=(b, 1, 1)) + 0.02 * rng.normal(size=(b, h, w))
  img[:, 40:, :] += v * rng.normal(size=(1, 40, w))      # rough lower half
  img[:, 10:12, 10:12] += 4.0 * v                        # a blob in the flat half
  img[:, 60:62, 60:62] += 4.0 * v                        # the same in the rough half
  phi = _pc_features(img.reshape(b, -1).astype(np.float32), h, w)
  plain, normed = np.expm1(phi[:n_a]), np.expm1(phi[n_a:])
  assert np.all(normed <= plain * (1 + 1e-5) + 1e-6)
  i25 = list(score_head.AREAS).index(25)
  p, q = plain[i25].reshape(h, w), normed[i25].reshape(h, w)
  flat, rough = (slice(10, 12), slice(10, 12)), (slice(60, 62), slice(60, 62))
  assert q[flat].mean() > 0.8 * p[flat].mean()
  assert q[rough].mean() < 0.6 * p[rough].mean()


def test_ritz_axes_equal_eigh_where_the_spectrum_decays():
  """The export's principal axes (symbolic band count) against eigh."""
  rng = np.random.default_rng(5)
  for b in (12, 31, 200):
    q, _ = np.linalg.qr(rng.normal(size=(b, b)))
    lam = 10.0 ** -np.arange(b, dtype=np.float64) * 0.7  # a decaying spectrum
    c = (q * lam) @ q.T
    got = np.asarray(score_head._ritz_axes(jnp.asarray(c, jnp.float32), 3))
    np.testing.assert_allclose(np.abs(np.sum(got * q[:, :3], axis=0)), 1.0, atol=1e-5)


def test_pc_basis_lowers_with_a_symbolic_band_count():
  x = _pc_scene(4)
  b, n = jax.export.symbolic_shape("b, n", constraints=("b >= 8",))
  spec = jax.ShapeDtypeStruct((b, n), jnp.float32)
  exp = jax.export.export(jax.jit(lambda v: score_head.pc_basis(v).v_bk))(spec)
  got = np.asarray(exp.call(jnp.asarray(x)))
  want = np.asarray(score_head.pc_basis(jnp.asarray(x)).v_bk)
  np.testing.assert_allclose(np.abs(np.sum(got * want, axis=0)), 1.0, atol=1e-4)
