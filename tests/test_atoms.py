"""The host dictionary selection (lrrjax.lrr.atoms) and its traced twin."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lrrjax import io, synthetic
from lrrjax.lrr import atoms, scene


def test_hash_draws_equal_in_numpy_and_jax():
  counter = np.arange(200_000, dtype=np.uint32)
  for seed in (0, 7, 2 ** 32 - 1):
    u = atoms.hash_u01(seed, counter)
    np.testing.assert_array_equal(u, np.asarray(atoms._hash_u01_jnp(seed, counter)))  # pylint: disable=protected-access
    assert u.dtype == np.float32 and u.min() >= 0.0 and u.max() < 1.0
    assert abs(float(u.mean()) - 0.5) < 0.005 and len(np.unique(u)) > 190_000


def test_even_sample_equals_the_scene_one():
  for total, m in ((10_000, 4096), (4166, 4096), (22_500, 4096), (300, 300), (7, 2)):
    np.testing.assert_array_equal(atoms.even_sample(total, m),
                                  np.asarray(scene.even_sample(total, m)))


def _x_bn(cube):
  h, w, b = cube.shape
  return np.asarray(io.normalize(cube, "global"), np.float32).reshape(h * w, b).T


@pytest.mark.parametrize("shape,seed", [((30, 40, 25), 0), ((64, 70, 60), 3), ((17, 23, 9), 1)])
def test_traced_twin_gives_the_host_atoms(shape, seed):
  x = _x_bn(synthetic.make_scene(*shape, n_targets=4, seed=seed).cube)
  host = atoms.dictionary_atoms(x, seed, 6, 3, 1000)
  twin = jax.jit(functools.partial(atoms.dictionary_atoms_traced, seed=seed, n_clusters=6,
                                   per_cluster=3, n_sample=1000))(x)
  np.testing.assert_array_equal(host, np.asarray(twin))
  assert host.shape == (18,) and host.dtype == np.int32
  assert np.all((host >= 0) & (host < x.shape[1]))


def test_clusters_with_few_or_no_members():
  """Five clusters over three distinct pixel values: clusters without
  members name the sample's first pixel, short ones repeat their best; the
  twin agrees."""
  base = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
  x = np.repeat(base, [5, 1, 2], axis=0).T  # (2, 8)
  host = atoms.dictionary_atoms(x, 0, 5, 3, 4096)
  twin = np.asarray(atoms.dictionary_atoms_traced(jnp.asarray(x), 0, 5, 3, 4096))
  np.testing.assert_array_equal(host, twin)
  per = host.reshape(5, 3)
  for row in per:  # a cluster's atoms are one value class
    assert len({tuple(x[:, i]) for i in row}) == 1
  assert {tuple(x[:, i]) for i in host} == {tuple(v) for v in base}


def test_typicality_matches_explicit_clusters():
  rng = np.random.default_rng(4)
  x = rng.normal(size=(90, 5)).astype(np.float32)
  x[:, 2] = 1.0  # a zero-variance band is ignored
  labels = rng.integers(0, 3, size=90).astype(np.int32)
  got = atoms.typicality(x, labels, 3)
  want = np.zeros(90)
  for c in range(3):
    xc = x[labels == c] - x[labels == c].mean(axis=0)
    var = (xc ** 2).mean(axis=0)
    inv = np.where(var > 0, 1.0 / np.where(var > 0, var, 1.0), 0.0)
    want[labels == c] = (xc ** 2 * inv).sum(axis=1)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_prepare_and_scene_context_share_the_atoms():
  """The command line's prepare (host selection) and the traced scene_context
  of the exported detector choose the same dictionary."""
  cube = synthetic.make_scene(40, 36, 30, n_targets=5, seed=5).cube
  kw = {"n_clusters": 5, "per_cluster": 2, "n_sample": 900, "seed": 2}
  host = scene.prepare(cube, **kw)
  traced = jax.jit(functools.partial(scene.scene_context, **kw))(jnp.asarray(cube, jnp.float32))
  np.testing.assert_array_equal(np.asarray(host.atoms_k), np.asarray(traced.atoms_k))
  np.testing.assert_array_equal(np.asarray(host.noise_b), np.asarray(traced.noise_b))
