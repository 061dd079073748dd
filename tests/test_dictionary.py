"""Tests for k-means and the LRASR / k-means dictionaries."""

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from lrrjax import dictionary
from lrrjax.errors import ConfigError


def _inertia(x, c, labels):
  return float(np.sum((x - np.asarray(c, np.float64)[np.asarray(labels)]) ** 2))


def test_kmeans_inertia_close_to_sklearn_on_blobs():
  x, _ = make_blobs(n_samples=600, n_features=5, centers=6, cluster_std=1.0, random_state=0)
  c, labels = dictionary.kmeans(x.astype(np.float32), 6, seed=0)
  assert c.shape == (6, 5) and labels.shape == (600,)
  # one initialisation each (ours has no restarts); greedy k-means++ both.
  sk = KMeans(6, n_init=1, random_state=0).fit(x)
  assert _inertia(x, c, labels) <= 1.03 * sk.inertia_
  # labels are the nearest returned centroid
  d = ((x[:, None, :] - np.asarray(c)[None]) ** 2).sum(-1)
  np.testing.assert_array_equal(np.asarray(labels), d.argmin(1))


def test_kmeans_deterministic_and_seed_dependent():
  x, _ = make_blobs(n_samples=300, n_features=3, centers=8, random_state=1)
  a = dictionary.kmeans(x, 8, seed=3)
  b = dictionary.kmeans(x, 8, seed=3)
  np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(b[0]))
  np.testing.assert_array_equal(np.asarray(a[1]), np.asarray(b[1]))
  c = dictionary.kmeans(x, 8, seed=4)
  assert not np.array_equal(np.asarray(a[0]), np.asarray(c[0]))


def test_kmeans_bad_k():
  with pytest.raises(ConfigError, match="k=0"):
    dictionary.kmeans(np.ones((5, 2)), 0)
  with pytest.raises(ConfigError, match="N=5"):
    dictionary.kmeans(np.ones((5, 2)), 6)


def test_kmeans_dictionary_is_centroids():
  x, _ = make_blobs(n_samples=200, n_features=4, centers=3, random_state=2)
  d = dictionary.kmeans_dictionary(x.T, 3, seed=0)
  c, _ = dictionary.kmeans(x, 3, seed=0)
  np.testing.assert_allclose(np.asarray(d), np.asarray(c).T)


def _cluster_rx_np(x, labels, k):
  out = np.zeros(len(x))
  for c in range(k):
    m = labels == c
    xc = x[m] - x[m].mean(0)
    p = np.linalg.pinv(xc.T @ xc / m.sum())
    out[m] = np.einsum("nb,bc,nc->n", xc, p, xc)
  return out


def test_cluster_rx_matches_numpy_pinv():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(90, 4)) * [1, 10, 0.1, 3]
  labels = np.repeat(np.arange(3), 30)
  x[labels == 1] += 5
  got = np.asarray(dictionary.cluster_rx(x.astype(np.float32), labels, 3))
  np.testing.assert_allclose(got, _cluster_rx_np(x, labels, 3), rtol=1e-3, atol=1e-4)


def test_lrasr_dictionary_selection_rule_and_fill():
  rng = np.random.default_rng(1)
  big = rng.normal(size=(40, 3))  # cluster A: 40 pixels around 0
  small = 50.0 + rng.normal(size=(3, 3))  # cluster B: 3 pixels far away
  x_nb = np.concatenate([big, small]).astype(np.float32)
  d = np.asarray(dictionary.lrasr_dictionary(x_nb.T, n_clusters=2, per_cluster=5, seed=0))
  assert d.shape == (3, 10)
  _, labels = dictionary.kmeans(x_nb, 2, seed=0)
  labels = np.asarray(labels)
  a = labels[0]
  assert np.all(labels[:40] == a) and np.all(labels[40:] != a)
  rx = _cluster_rx_np(x_nb.astype(np.float64), labels, 2)
  # cluster A block: its 5 lowest within-cluster RX pixels, in increasing order
  blk_a = d[:, 5 * a:5 * a + 5]
  want = x_nb[np.argsort(rx[:40])[:5]].T
  np.testing.assert_allclose(blk_a, want, rtol=1e-5)
  # cluster B (3 pixels < 5 slots): all its pixels, then its centroid twice
  blk_b = d[:, 5 * (1 - a):5 * (1 - a) + 5]
  # (3 points in 3-D: all have within-cluster RX = n - 1 = 2, a tie, so compare as sets)
  key = lambda a: a[:, np.argsort(a[0])]
  np.testing.assert_allclose(key(blk_b[:, :3]), key(x_nb[40:].T), rtol=1e-5)
  cent = x_nb[40:].mean(0)
  np.testing.assert_allclose(blk_b[:, 3], cent, rtol=1e-4)
  np.testing.assert_allclose(blk_b[:, 4], cent, rtol=1e-4)


def test_lrasr_dictionary_shape_on_real_crop(data_dir):
  import scipy.io
  cube = scipy.io.loadmat(data_dir / "sandiego.mat")["data"][:40, :40].astype(np.float32)
  x_bn = cube.reshape(-1, cube.shape[2]).T / cube.max()
  d = np.asarray(dictionary.lrasr_dictionary(x_bn, n_clusters=15, per_cluster=20, seed=0))
  assert d.shape == (cube.shape[2], 300) and np.all(np.isfinite(d))
  # every atom is a pixel of the scene or a cluster centroid (fill)
  pix = {tuple(np.round(v, 6)) for v in x_bn.T}
  n_pix_atoms = sum(tuple(np.round(v, 6)) in pix for v in d.T)
  assert n_pix_atoms >= 280


def test_lrasr_dictionary_bad_args():
  with pytest.raises(ConfigError, match="per_cluster"):
    dictionary.lrasr_dictionary(np.ones((3, 10)), n_clusters=2, per_cluster=0)
  with pytest.raises(ConfigError, match=r"\(B, N\)"):
    dictionary.lrasr_dictionary(np.ones((3, 10, 2)))
