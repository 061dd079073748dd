"""The dictionary selection of the generalised LRR-Net+: which pixels of the
scene start as dictionary atoms (LRASR-style: k-means on a pixel sample, then
each cluster's most typical members).

Two forms of one scheme:

* :func:`dictionary_atoms`, on the host (numpy), is what ``lrrjax detect``,
  training and the strips run. The selection works on at most 4096 pixels and
  runs in milliseconds, but its loops were three quarters of the XLA
  compilation of the scene side (about 1.1 s of a cold command,
  ``results/compile_parts.json``).
* :func:`dictionary_atoms_traced`, its twin in ``jax.numpy``, is what
  :func:`lrrjax.lrr.scene.scene_context` traces for the exported detector
  (:mod:`lrrjax.export`), with symbolic shapes.

Both draw every random number from the same counter-based integer hash of
``(seed, counter)`` (:func:`hash_u01`: uint32 arithmetic, exact on every
backend), so they make the same draws; they sum float32 in different orders,
and gave the same atoms on all 14 shared scenes
(``results/ablation_general/v6_hostdict/twin.json``).

The scheme: ``m = min(N, n_sample)`` evenly spaced pixels (:func:`even_sample`),
centred and scaled globally; greedy k-means++ seeding (first centre uniform,
then for each next centre ``2 + floor(ln k)`` candidates drawn with probability
proportional to the squared distance to the nearest chosen centre, by inverse
CDF, and the candidate that lowers the potential most is kept); Lloyd
iterations until the labels stop changing (at most 50; an empty cluster keeps
its centre); in each cluster the ``per_cluster`` members with the smallest
distance to the cluster mean under the cluster's diagonal covariance, a cluster
with fewer members repeating its best one (an empty cluster names the sample's
first pixel).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lrrjax.lrr.precision import highest

Array = jax.Array

_GOLDEN = 0x9E3779B9
_ROUNDS = ((16, 0x7FEB352D), (15, 0x846CA68B))
LLOYD_ITERS = 50


def _hash(xp, seed, counter):
  """:func:`hash_u01` with ``xp`` numpy or ``jax.numpy`` (one formula for both
  forms, so they draw the same numbers)."""
  x = (xp.atleast_1d(xp.asarray(counter, xp.uint32)) * xp.uint32(_GOLDEN)
       + xp.asarray(seed, xp.uint32))
  for shift, mul in _ROUNDS:
    x = (x ^ (x >> xp.uint32(shift))) * xp.uint32(mul)
  x = x ^ (x >> xp.uint32(16))
  return (x >> xp.uint32(8)).astype(xp.float32) * xp.float32(2.0 ** -24)


def hash_u01(seed: int, counter) -> np.ndarray:
  """Uniforms in [0, 1) (float32, multiples of 2^-24) from an integer hash of
  ``(seed, counter)``: ``x = counter * 0x9E3779B9 + seed``, then two
  xor-shift-multiply rounds and a final xor-shift, all uint32 (wrapping)."""
  return _hash(np, seed, counter)


def _hash_u01_jnp(seed, counter) -> Array:
  """:func:`hash_u01` in ``jax.numpy`` (``seed`` may be traced)."""
  return _hash(jnp, seed, counter)


def even_sample(total: int, m: int) -> np.ndarray:
  """``floor(i (total - 1) / (m - 1))`` for ``i < m`` (int32), as
  :func:`lrrjax.lrr.scene.even_sample`, in exact integer arithmetic."""
  i = np.arange(m, dtype=np.int64)
  d = max(m - 1, 1)
  return (i * ((total - 1) // d) + (i * ((total - 1) % d)) // d).astype(np.int32)


def _sq_dists(x_mb, c_kb, xp=np):
  """``||x||^2 - 2 x.c + ||c||^2`` (M, K), clipped at 0."""
  d = (xp.sum(x_mb ** 2, axis=1)[:, None] - xp.float32(2.0) * (x_mb @ c_kb.T)
       + xp.sum(c_kb ** 2, axis=1)[None, :])
  return xp.maximum(d, xp.float32(0.0))


def _trials(k: int) -> int:
  return 2 + int(np.log(k))


def _kmeanspp(xs_mb: np.ndarray, k: int, seed: int) -> np.ndarray:
  """Greedy k-means++ seeding drawn from :func:`hash_u01` (module docstring), (k, B)."""
  m, b = xs_mb.shape
  trials = _trials(k)
  first = min(int(hash_u01(seed, 0)[0] * np.float32(m)), m - 1)
  cent = np.zeros((k, b), np.float32)
  cent[0] = xs_mb[first]
  d2 = np.sum((xs_mb - xs_mb[first]) ** 2, axis=1)
  for j in range(1, k):  # k centres, not pixels
    u = hash_u01(seed, 1 + (j - 1) * trials + np.arange(trials))
    cdf = np.cumsum(d2, dtype=np.float32)
    total = cdf[-1]
    if total > 0:
      cand = np.sum(cdf[None, :] <= (u * total)[:, None], axis=1)
    else:  # every pixel on a chosen centre: uniform
      cand = (u * np.float32(m)).astype(np.int64)
    cand = np.minimum(cand, m - 1)
    d2_tm = np.minimum(d2[None, :], _sq_dists(xs_mb, xs_mb[cand]).T)
    best = int(np.argmin(np.sum(d2_tm, axis=1)))
    cent[j] = xs_mb[cand[best]]
    d2 = d2_tm[best]
  return cent


def _onehot(labels_m, k: int, xp=np):
  return (labels_m[None, :] == xp.arange(k)[:, None]).astype(xp.float32)


def kmeans_labels(x_mb: np.ndarray, k: int, seed: int) -> np.ndarray:
  """Cluster labels (M,) int32 of the k-means of the module docstring."""
  x_mb = np.asarray(x_mb, np.float32)
  mu = x_mb.mean(axis=0)
  scale = np.float32(np.sqrt(np.mean((x_mb - mu) ** 2)))
  xs = (x_mb - mu) / (scale if scale > 0 else np.float32(1.0))
  cent = _kmeanspp(xs, k, seed)
  labels = np.argmin(_sq_dists(xs, cent), axis=1)
  for _ in range(LLOYD_ITERS):
    onehot = _onehot(labels, k)
    counts = onehot.sum(axis=1)
    cent = np.where(counts[:, None] > 0, (onehot @ xs) / np.maximum(counts, 1.0)[:, None], cent)
    new = np.argmin(_sq_dists(xs, cent), axis=1)
    if np.array_equal(new, labels):
      break
    labels = new
  return labels.astype(np.int32)


def typicality(x_mb, labels_m, k: int, xp=np):
  """``d_i = sum_b (x_ib - mu_cb)^2 / var_cb`` with ``c = l(i)`` (zero-variance
  bands ignored): the distance to the cluster mean under the cluster's diagonal
  covariance, (M,); ``xp`` numpy or ``jax.numpy``. (LRASR uses the
  full-covariance RX here; on XLA:CPU its 15 ``eigh`` of B x B took ~2.3 s per
  scene, the diagonal form ~ms.)"""
  onehot = _onehot(labels_m, k, xp)
  cnt = xp.maximum(onehot.sum(axis=1), 1.0)[:, None]
  xc = x_mb - ((onehot @ x_mb) / cnt)[labels_m]
  var_kb = (onehot @ xc ** 2) / cnt
  inv_kb = xp.where(var_kb > 0, 1.0 / xp.where(var_kb > 0, var_kb, 1.0), 0.0).astype(xp.float32)
  return xp.sum(xc ** 2 * inv_kb[labels_m], axis=1)


def dictionary_atoms(x_bn, seed, n_clusters: int = 15, per_cluster: int = 4,
                     n_sample: int = 4096) -> np.ndarray:
  """Initial dictionary as pixel indices (n_clusters * per_cluster,) int32, on
  the host (module docstring); ``x_bn`` (B, N) may be a device array (only the
  sample is copied to the host)."""
  n = x_bn.shape[1]
  pick = even_sample(n, min(n, n_sample))
  x_mb = np.ascontiguousarray(np.asarray(x_bn[:, pick], np.float32).T)
  k = int(n_clusters)
  labels = kmeans_labels(x_mb, k, int(np.asarray(seed)))
  d_m = typicality(x_mb, labels, k)
  idx = np.zeros((k, per_cluster), np.int64)
  for c in range(k):  # clusters, not pixels
    members = np.flatnonzero(labels == c)
    if members.size:
      order = members[np.argsort(d_m[members], kind="stable")][:per_cluster]
      idx[c] = np.concatenate([order, np.full(per_cluster - order.size, order[0])])
  return pick[idx.reshape(-1)]


@highest
def dictionary_atoms_traced(x_bn: Array, seed, n_clusters: int = 15, per_cluster: int = 4,
                            n_sample: int = 4096) -> Array:
  """:func:`dictionary_atoms` in ``jax.numpy`` (traceable; the pixel count may
  be a symbolic dimension): the same draws, one ``lax.fori_loop`` for the
  seeding and one ``lax.while_loop`` for Lloyd, (n_clusters * per_cluster,).
  Traced with full float32 matmul precision (:mod:`lrrjax.lrr.precision`), as
  the host computes it (a GPU's TF32 default would move the distances)."""
  from lrrjax.lrr import scene  # pylint: disable=import-outside-toplevel

  def sq(x, c):
    return _sq_dists(x, c, jnp)

  k = int(n_clusters)
  x_bn = jnp.asarray(x_bn, jnp.float32)
  pick = scene.even_sample(x_bn.shape[1], scene._min_dim(x_bn.shape[1], n_sample))  # pylint: disable=protected-access
  x_mb = x_bn[:, pick].T
  m = x_mb.shape[0]
  m_f = jnp.asarray(m, jnp.float32)
  mu = jnp.mean(x_mb, axis=0)
  scale = jnp.sqrt(jnp.mean((x_mb - mu) ** 2))
  xs = (x_mb - mu) / jnp.where(scale > 0, scale, 1.0)
  trials = _trials(k)
  first = jnp.minimum((_hash_u01_jnp(seed, 0)[0] * m_f).astype(jnp.int32), m - 1)
  d2 = jnp.sum((xs - xs[first]) ** 2, axis=1)

  def seed_step(j, carry):
    cent, d2 = carry
    u = _hash_u01_jnp(seed, 1 + (j - 1) * trials + jnp.arange(trials, dtype=jnp.uint32))
    cdf = jnp.cumsum(d2)
    total = cdf[-1]
    by_cdf = jnp.sum(cdf[None, :] <= (u * total)[:, None], axis=1)
    cand = jnp.minimum(jnp.where(total > 0, by_cdf, (u * m_f).astype(jnp.int32)), m - 1)
    d2_tm = jnp.minimum(d2[None, :], sq(xs, xs[cand]).T)
    best = jnp.argmin(jnp.sum(d2_tm, axis=1))
    return cent.at[j].set(xs[cand[best]]), d2_tm[best]

  cent0 = jnp.zeros((k, x_mb.shape[1]), jnp.float32).at[0].set(xs[first])
  cent, _ = jax.lax.fori_loop(1, k, seed_step, (cent0, d2))

  def lloyd(carry):
    i, c, labels, _ = carry
    oh = _onehot(labels, k, jnp)
    counts = oh.sum(axis=1)
    c = jnp.where(counts[:, None] > 0, (oh @ xs) / jnp.maximum(counts, 1.0)[:, None], c)
    new = jnp.argmin(sq(xs, c), axis=1)
    return i + 1, c, new, jnp.any(new != labels)

  labels0 = jnp.argmin(sq(xs, cent), axis=1)
  _, _, labels, _ = jax.lax.while_loop(lambda c: (c[0] < LLOYD_ITERS) & c[3], lloyd,
                                       (0, cent, labels0, jnp.array(True)))
  d_m = typicality(x_mb, labels, k, jnp)
  key_km = jnp.where(_onehot(labels, k, jnp) > 0, d_m[None, :], jnp.inf)
  neg, idx = jax.lax.top_k(-key_km, per_cluster)
  idx = jnp.where(jnp.isfinite(neg), idx, jnp.argmin(key_km, axis=1)[:, None])
  return pick[idx.reshape(-1)]
