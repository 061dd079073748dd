"""Background dictionaries for low-rank representation: k-means and LRASR.

All functions are jitted and vectorised over pixels and clusters (masks and
segment sums, no Python loop over pixels or clusters), deterministic for a
given ``seed``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def _sq_dists(x_nb, c_kb):
  """Squared Euclidean distances (N, k), clipped at 0."""
  d = (jnp.sum(x_nb ** 2, axis=1)[:, None] - 2.0 * x_nb @ c_kb.T
       + jnp.sum(c_kb ** 2, axis=1)[None, :])
  return jnp.maximum(d, 0.0)


def _kmeanspp_init(x_nb, k, key):
  """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007; as scikit-learn).

  First centre uniform; each next centre: draw ``2 + floor(ln k)`` candidates
  with probability proportional to the squared distance to the nearest chosen
  centre and keep the candidate that minimises the resulting potential.
  """
  n, b = x_nb.shape
  trials = 2 + int(np.log(k))
  key, sub = jax.random.split(key)
  first = jax.random.randint(sub, (), 0, n)
  cent = jnp.zeros((k, b), x_nb.dtype).at[0].set(x_nb[first])
  d2 = jnp.sum((x_nb - x_nb[first]) ** 2, axis=1)

  def body(j, carry):
    cent, d2, key = carry
    key, sub = jax.random.split(key)
    total = jnp.sum(d2)
    # D^2 sampling; if all points coincide with chosen centres, sample uniformly.
    logits = jnp.where(total > 0, jnp.log(jnp.maximum(d2, 0.0) / jnp.where(total > 0, total, 1.0)),
                       jnp.zeros_like(d2))
    cand = jax.random.categorical(sub, logits, shape=(trials,))
    d2_tn = jnp.minimum(d2[None, :], _sq_dists(x_nb, x_nb[cand]).T)
    best = jnp.argmin(jnp.sum(d2_tn, axis=1))
    return cent.at[j].set(x_nb[cand[best]]), d2_tn[best], key

  cent, _, _ = jax.lax.fori_loop(1, k, body, (cent, d2, key))
  return cent


@functools.partial(jax.jit, static_argnames=("k", "iters"))
def kmeans_traceable(x_nb, k, seed, iters):
  """:func:`kmeans` with a traced ``seed`` (uint32) and any pixel count, for use
  inside other traced functions (symbolic shapes, :mod:`jax.export`)."""
  x_nb = x_nb.astype(jnp.result_type(x_nb.dtype, jnp.float32))
  # Centre and scale globally for conditioning of ||x||^2 - 2 x.c + ||c||^2
  # (k-means is equivariant to a global shift/scale).
  mu = jnp.mean(x_nb, axis=0)
  scale = jnp.sqrt(jnp.mean((x_nb - mu) ** 2))
  scale = jnp.where(scale > 0, scale, 1.0)
  xs = (x_nb - mu) / scale
  cent = _kmeanspp_init(xs, k, jax.random.key(seed))

  def assign(c):
    return jnp.argmin(_sq_dists(xs, c), axis=1)

  def cond(carry):
    i, _, _, changed = carry
    return jnp.logical_and(i < iters, changed)

  def body(carry):
    i, c, labels, _ = carry
    sums = jax.ops.segment_sum(xs, labels, num_segments=k)
    counts = jax.ops.segment_sum(jnp.ones_like(labels, xs.dtype), labels, num_segments=k)
    # an empty cluster keeps its previous centroid
    c = jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], c)
    new = assign(c)
    return i + 1, c, new, jnp.any(new != labels)

  labels0 = assign(cent)
  _, cent, labels, _ = jax.lax.while_loop(cond, body, (0, cent, labels0, True))
  return cent * scale + mu, labels


def kmeans(x_nb, k: int, seed: int = 0, iters: int = 50):
  """k-means clustering with k-means++ seeding and Lloyd iterations.

  Minimises ``sum_i ||x_i - c_{l(i)}||^2``.  Seeding: greedy k-means++ (first
  centre uniform, then for each next centre ``2 + ln k`` candidates drawn with
  probability proportional to the squared distance to the nearest chosen
  centre, the one lowering the potential most is kept; ``jax.random``,
  deterministic in ``seed``).  A single initialisation (no restarts).  Lloyd iterations (assign to nearest centre, centre = mean of its
  members; an empty cluster keeps its centre) run in a ``lax.while_loop`` until
  the labels stop changing or ``iters`` updates were made.

  Args:
    x_nb: (N, B) data, one row per sample.
    k: number of clusters (1 <= k <= N).
    seed: PRNG seed.
    iters: maximum number of Lloyd updates.

  Returns:
    ``(centroids_kb, labels_n)``: (k, B) centroids (float32 unless x is
    float64) and (N,) int32 labels, consistent (labels are the nearest
    centroid of the returned centroids up to ties).
  """
  x_nb = jnp.asarray(x_nb)
  _check_k(k, x_nb.shape[0])
  return kmeans_traceable(x_nb, int(k), jnp.asarray(seed, jnp.uint32), int(iters))


def kmeans_dictionary(x_bn, k: int, seed: int = 0):
  """Dictionary of the k-means centroids of the pixels, (B, k)."""
  cent, _ = kmeans(jnp.asarray(x_bn).T, k, seed=seed)
  return cent.T


def _check_k(k, n):
  from lrrjax.errors import ConfigError
  if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
    raise ConfigError(f"number of clusters k={k!r} must be an integer in [1, N={n}]")


def cluster_rx(x_nb, labels_n, k: int):
  """Within-cluster RX: Mahalanobis distance of each pixel to its own cluster.

  ``d_i = (x_i - mu_c)^T C_c^+ (x_i - mu_c)`` with ``c = l(i)``, ``mu_c`` and
  ``C_c = (1/n_c) sum_{l(j)=c} (x_j - mu_c)(x_j - mu_c)^T`` the cluster mean and
  covariance.  ``C_c^+`` is the eigen-pseudo-inverse dropping eigenvalues below
  ``lambda_max * B * eps`` (so clusters with n_c <= B, singular covariance, are
  handled like ``pinv``).

  Args:
    x_nb: (N, B) pixels.
    labels_n: (N,) cluster labels in [0, k).
    k: number of clusters (static).

  Returns:
    (N,) scores.
  """
  return _cluster_rx(jnp.asarray(x_nb), jnp.asarray(labels_n), int(k))


@functools.partial(jax.jit, static_argnames=("k",))
def _cluster_rx(x_nb, labels_n, k):
  x_nb = x_nb.astype(jnp.result_type(x_nb.dtype, jnp.float32))
  n, b = x_nb.shape
  counts = jax.ops.segment_sum(jnp.ones((n,), x_nb.dtype), labels_n, num_segments=k)
  mu_kb = jax.ops.segment_sum(x_nb, labels_n, num_segments=k) / jnp.maximum(counts, 1.0)[:, None]
  xc_nb = x_nb - mu_kb[labels_n]
  # per-band scaling inside each cluster (Mahalanobis is invariant to it) for
  # conditioning of the float32 eigendecomposition.
  var_kb = jax.ops.segment_sum(xc_nb ** 2, labels_n, num_segments=k) / jnp.maximum(counts, 1.0)[:, None]
  std_kb = jnp.sqrt(var_kb)
  std_kb = jnp.where(std_kb > 0, std_kb, 1.0)
  xs_nb = xc_nb / std_kb[labels_n]
  onehot_kn = (labels_n[None, :] == jnp.arange(k)[:, None]).astype(x_nb.dtype)
  cov_kbb = jnp.einsum("kn,nb,nc->kbc", onehot_kn, xs_nb, xs_nb) / jnp.maximum(counts, 1.0)[:, None, None]
  w_kb, v_kbb = jnp.linalg.eigh(cov_kbb)
  tol = jnp.max(w_kb, axis=1, keepdims=True) * b * jnp.finfo(x_nb.dtype).eps
  inv_kb = jnp.where(w_kb > tol, 1.0 / jnp.where(w_kb > tol, w_kb, 1.0), 0.0)
  # d_i = sum_j inv_j (v_j . xs_i)^2, computed cluster by cluster with masks.
  def per_cluster(args):
    v_bb, inv_b, c = args
    proj = xs_nb @ v_bb
    d = jnp.sum(inv_b * proj ** 2, axis=1)
    return jnp.where(labels_n == c, d, 0.0)

  d_kn = jax.lax.map(per_cluster, (v_kbb, inv_kb, jnp.arange(k)))
  return jnp.sum(d_kn, axis=0)


@functools.partial(jax.jit, static_argnames=("n_clusters", "per_cluster"))
def _lrasr_dictionary(x_bn, n_clusters, per_cluster, seed):
  x_nb = x_bn.T.astype(jnp.result_type(x_bn.dtype, jnp.float32))
  cent_kb, labels = kmeans_traceable(x_nb, n_clusters, seed, 50)
  d_n = _cluster_rx(x_nb, labels, n_clusters)
  member_kn = labels[None, :] == jnp.arange(n_clusters)[:, None]
  # lowest RX first; non-members get +inf so they sort last.
  key_kn = jnp.where(member_kn, d_n[None, :], jnp.inf)
  _, idx_kp = jax.lax.top_k(-key_kn, per_cluster)
  counts_k = jnp.sum(member_kn, axis=1)
  valid_kp = jnp.arange(per_cluster)[None, :] < counts_k[:, None]
  atoms_kpb = jnp.where(valid_kp[:, :, None], x_nb[idx_kp], cent_kb[:, None, :])
  return atoms_kpb.reshape(n_clusters * per_cluster, -1).T


def lrasr_dictionary(x_bn, n_clusters: int = 15, per_cluster: int = 20, seed: int = 0):
  """LRASR background dictionary (Xu et al., IEEE TGRS 54(4), 2016).

  The pixels are clustered with :func:`kmeans` (``n_clusters``, ``seed``); in
  each cluster the ``per_cluster`` pixels with the lowest within-cluster RX
  score (:func:`cluster_rx`: Mahalanobis distance to the cluster mean under the
  cluster covariance's pseudo-inverse) are taken as atoms, i.e. the most
  typical background pixels of each class.

  The output has the fixed size ``K = n_clusters * per_cluster``: atoms of
  cluster ``c`` occupy columns ``c*per_cluster .. (c+1)*per_cluster - 1`` in
  order of increasing RX score.  A cluster with ``n_c < per_cluster`` pixels
  contributes all of them, and its remaining ``per_cluster - n_c`` slots hold
  the cluster's k-means centroid (repeated; duplicate atoms do not change the
  span of the dictionary).  Ties in RX score are broken by pixel index.

  Args:
    x_bn: (B, N) pixels as columns.
    n_clusters: number of k-means clusters.
    per_cluster: atoms per cluster.
    seed: k-means seed.

  Returns:
    d_bk: (B, n_clusters * per_cluster) dictionary.
  """
  from lrrjax.errors import ConfigError
  x_bn = jnp.asarray(x_bn)
  if x_bn.ndim != 2:
    raise ConfigError(f"x_bn must be (B, N), got shape {x_bn.shape}")
  _check_k(n_clusters, x_bn.shape[1])
  if isinstance(per_cluster, bool) or not isinstance(per_cluster, int) or not 1 <= per_cluster <= x_bn.shape[1]:
    raise ConfigError(f"per_cluster={per_cluster!r} must be an integer in [1, N={x_bn.shape[1]}]")
  return _lrasr_dictionary(x_bn, int(n_clusters), int(per_cluster), jnp.asarray(seed, jnp.uint32))
