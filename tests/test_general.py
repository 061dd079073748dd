"""Generalised LRR-Net+ (lrrjax.lrr.general): scene-derived inputs, invariances, head."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lrrjax import io, synthetic
from lrrjax.lrr import general, prox


@pytest.fixture(scope="module")
def scene():
  return synthetic.make_scene(24, 28, 30, n_targets=6, seed=5)


def _x(scene):
  return io.normalize(scene.cube).reshape(-1, scene.bands).T


def test_band_noise_matches_numpy(scene):
  x_bn = _x(scene)
  h, w = scene.height, scene.width
  got = np.asarray(general.band_noise(jnp.asarray(x_bn), h, w))
  cube = x_bn.reshape(-1, h, w).astype(np.float64)
  d = (cube[:, :, 1:] - cube[:, :, :-1]).reshape(cube.shape[0], -1)
  med = _lower_median(d)[:, None]
  want = 1.4826 * _lower_median(np.abs(d - med)) / np.sqrt(2)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)


def _lower_median(a):
  """The ceil(n/2)-th smallest value along the last axis (bisect_median's definition)."""
  return np.sort(a, axis=-1)[..., int(np.ceil(a.shape[-1] / 2)) - 1]


def test_bisect_median_matches_sorting():
  rng = np.random.default_rng(2)
  for shape in ((7, 101), (3, 64)):
    a = rng.normal(size=shape).astype(np.float32) * 10
    np.testing.assert_allclose(np.asarray(prox.bisect_median(jnp.asarray(a))), _lower_median(a),
                               atol=1e-5)
  a = np.array([[2.0, 2.0, 2.0, 5.0]], np.float32)  # ties, constant rows
  assert float(prox.bisect_median(jnp.asarray(a))[0]) == 2.0
  assert float(prox.bisect_median(jnp.full((5,), 3.0))) == 3.0


def test_band_weights_drop_dead_bands_and_interpolate():
  noise = jnp.asarray([0.0, 1.0, 2.0, 4.0, 0.0])
  w0 = np.asarray(general.band_weights(noise, 0.0))
  np.testing.assert_allclose(w0, [0, 1, 1, 1, 0])
  w1 = np.asarray(general.band_weights(noise, 1.0))
  np.testing.assert_allclose(w1, [0, 2, 1, 0.5, 0], rtol=1e-6)  # median of live bands = 2


def test_ring_mean_matches_loops():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(3, 9, 11)).astype(np.float32)
  got = np.asarray(general.ring_mean(jnp.asarray(x.transpose(1, 2, 0)), 1, 3)).transpose(2, 0, 1)
  want = np.zeros_like(x)
  for r in range(9):
    for c in range(11):
      vals = [x[:, i, j] for i in range(max(0, r - 3), min(9, r + 4))
              for j in range(max(0, c - 3), min(11, c + 4))
              if max(abs(i - r), abs(j - c)) > 1]
      want[:, r, c] = np.mean(vals, axis=0)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_zero_band_padding_changes_nothing(scene):
  """Cross-scene batches pad bands with zeros; that must not change a score."""
  model = general.GeneralLRRNet(stages=3)
  model.a_f[...] = jnp.linspace(-1.0, 1.0, general.N_FEATURES)  # a non-trivial head
  x_bn = _x(scene)
  h, w = scene.height, scene.width
  ctx = general.context_of(x_bn, h, w, n_clusters=4, per_cluster=2)
  padded = np.concatenate([x_bn, np.zeros((7, x_bn.shape[1]), np.float32)])
  ctx_p = general.context_of(padded, h, w, n_clusters=4, per_cluster=2)
  np.testing.assert_array_equal(np.asarray(ctx.atoms_k), np.asarray(ctx_p.atoms_k))
  a = general.detect(model, ctx, h, w)
  b = general.detect(model, ctx_p, h, w)
  np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def test_untrained_head_ranks_by_s_norm(scene):
  model = general.GeneralLRRNet(stages=3)
  h, w = scene.height, scene.width
  ctx = general.context_of(_x(scene), h, w, n_clusters=4, per_cluster=2)
  graphdef, state = nnx.split(model)
  out = nnx.merge(graphdef, state)(ctx, h, w)
  s_norm = np.linalg.norm(np.asarray(out.s_bn), axis=0)
  z = np.asarray(out.scores_n)
  phi = np.asarray(out.phi_fn)
  order = np.argsort(s_norm, kind="stable")
  assert np.all(np.diff(phi[0][order]) >= -1e-6)   # feature 0 is monotone in ||s_i||
  # the untrained head is feature 0 plus softplus(-10) ~ 4.5e-5 of the others
  assert np.max(np.abs(z - phi[0])) <= 5e-5 * np.abs(phi[1:]).sum(0).max() + 1e-6
  assert out.phi_fn.shape == (general.N_FEATURES, h * w)
  assert np.all(np.isfinite(np.asarray(out.phi_fn)))


def test_any_band_count_and_size_one_parameter_set():
  model = general.GeneralLRRNet(stages=2)
  for (h, w, b) in ((16, 20, 12), (23, 17, 41)):
    sc = synthetic.make_scene(h, w, b, n_targets=3, seed=b)
    ctx = general.prepare(sc.cube, n_clusters=3, per_cluster=2)
    z = general.detect(model, ctx, h, w)
    assert z.shape == (h * w,) and np.all(np.isfinite(z))
    assert np.asarray(ctx.atoms_k).shape == (6,)
    assert np.all((np.asarray(ctx.atoms_k) >= 0) & (np.asarray(ctx.atoms_k) < h * w))


def test_dictionary_atoms_deterministic_and_typical():
  rng = np.random.default_rng(1)
  centres = rng.uniform(size=(3, 8))
  x = np.concatenate([c + 0.01 * rng.normal(size=(200, 8)) for c in centres]).T
  a1 = np.asarray(general.dictionary_atoms(jnp.asarray(x, jnp.float32), jnp.uint32(0), 3, 2, 4096))
  a2 = np.asarray(general.dictionary_atoms(jnp.asarray(x, jnp.float32), jnp.uint32(0), 3, 2, 4096))
  np.testing.assert_array_equal(a1, a2)
  # two atoms from each of the three clusters, each close to its centre
  groups = sorted(int(i) // 200 for i in a1)
  assert groups == [0, 0, 1, 1, 2, 2]
  for i in a1:
    assert np.linalg.norm(x[:, i] - centres[int(i) // 200]) < 0.06
