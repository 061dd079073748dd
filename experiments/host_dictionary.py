"""A candidate for the cold start of ``lrrjax detect``: the dictionary
selection on the host (numpy) instead of inside the compiled ``scene_context``.

The selection (k-means on a pixel sample, then each cluster's most typical
members; :func:`lrrjax.lrr.scene.dictionary_atoms`) runs in milliseconds but
is three quarters of ``scene_context``'s XLA compilation (about 1.1 s of 1.5 s,
``results/compile_parts.json``). This is the same scheme in numpy, with one
change that a traced twin (for the exported detector) could follow exactly:
every k-means++ draw is made by inverse-CDF sampling from a counter-based
integer hash of ``(seed, counter)`` instead of ``jax.random``. Written down,
with the rule that would adopt it, before its code or any run (BUILD_NOTES,
"Issue #8's targets re-measured", *Next candidate*)::

  python experiments/head_features.py hostdict --out results/ablation_general/v6_hostdict

runs the leave-one-scene-out of ``experiments/generalization.py`` with this
selection patched into :func:`lrrjax.lrr.scene.context_of` (the path of the
feature pool and of the held-out scenes' features), and records the host
selection's seconds per scene beside the jitted one's. Nothing in the package
changes.
"""

from __future__ import annotations

import pathlib
import sys
import time

import numpy as np

_GOLDEN = np.uint32(0x9E3779B9)
_ROUNDS = ((16, np.uint32(0x7FEB352D)), (15, np.uint32(0x846CA68B)))


def hash_u01(seed: int, counter) -> np.ndarray:
  """Uniforms in [0, 1) from the integer hash of ``(seed, counter)``, float32
  (uint32 multiply / xor-shift rounds, wrapping; exact in any backend)."""
  x = np.atleast_1d(np.asarray(counter, np.uint32)) * _GOLDEN + np.uint32(seed)
  for shift, mul in _ROUNDS:
    x = (x ^ (x >> np.uint32(shift))) * mul
  x = x ^ (x >> np.uint32(16))
  return (x >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)


def even_sample(total: int, m: int) -> np.ndarray:
  """:func:`lrrjax.lrr.scene.even_sample` in numpy: ``floor(i (total - 1) / (m - 1))``."""
  i = np.arange(m, dtype=np.int64)
  d = max(m - 1, 1)
  return (i * ((total - 1) // d) + (i * ((total - 1) % d)) // d).astype(np.int32)


def _sq_dists(x_mb: np.ndarray, c_kb: np.ndarray) -> np.ndarray:
  """``||x||^2 - 2 x.c + ||c||^2`` (M, K), clipped at 0 (as the jnp form)."""
  d = (np.sum(x_mb ** 2, axis=1)[:, None] - np.float32(2.0) * (x_mb @ c_kb.T)
       + np.sum(c_kb ** 2, axis=1)[None, :])
  return np.maximum(d, np.float32(0.0))


def kmeanspp(x_mb: np.ndarray, k: int, seed: int) -> np.ndarray:
  """Greedy k-means++ seeding (first centre uniform, then ``2 + ln k``
  D^2-distributed candidates per centre, the one lowering the potential most
  kept), every draw by inverse CDF from :func:`hash_u01`; (k, B)."""
  m, b = x_mb.shape
  trials = 2 + int(np.log(k))
  first = min(int(hash_u01(seed, 0)[0] * m), m - 1)
  cent = np.zeros((k, b), np.float32)
  cent[0] = x_mb[first]
  d2 = np.sum((x_mb - x_mb[first]) ** 2, axis=1)
  for j in range(1, k):
    u = hash_u01(seed, 1 + (j - 1) * trials + np.arange(trials))
    cdf = np.cumsum(d2, dtype=np.float32)
    total = cdf[-1]
    if total > 0:
      cand = np.sum(cdf[None, :] <= (u * total)[:, None], axis=1)
    else:  # every point on a chosen centre: uniform
      cand = (u * m).astype(np.int64)
    cand = np.minimum(cand, m - 1)
    d2_tm = np.minimum(d2[None, :], _sq_dists(x_mb, x_mb[cand]).T)
    best = int(np.argmin(np.sum(d2_tm, axis=1)))
    cent[j] = x_mb[cand[best]]
    d2 = d2_tm[best]
  return cent


def kmeans(x_mb: np.ndarray, k: int, seed: int, iters: int = 50):
  """:func:`lrrjax.dictionary.kmeans` with :func:`kmeanspp` seeding, float32:
  centred and scaled globally, Lloyd iterations until the labels stop changing
  or ``iters`` updates (an empty cluster keeps its centre). (centroids, labels)."""
  x_mb = np.asarray(x_mb, np.float32)
  mu = x_mb.mean(axis=0)
  scale = np.float32(np.sqrt(np.mean((x_mb - mu) ** 2)))
  scale = scale if scale > 0 else np.float32(1.0)
  xs = (x_mb - mu) / scale
  cent = kmeanspp(xs, k, seed)
  labels = np.argmin(_sq_dists(xs, cent), axis=1)
  for _ in range(iters):
    onehot = (labels[None, :] == np.arange(k)[:, None]).astype(np.float32)
    counts = onehot.sum(axis=1)
    sums = onehot @ xs
    cent = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1.0)[:, None], cent)
    new = np.argmin(_sq_dists(xs, cent), axis=1)
    changed = bool(np.any(new != labels))
    labels = new
    if not changed:
      break
  return cent * scale + mu, labels.astype(np.int32)


def typicality(x_mb: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
  """:func:`lrrjax.lrr.scene.cluster_typicality` in numpy, (M,)."""
  onehot = (labels[None, :] == np.arange(k)[:, None]).astype(np.float32)
  cnt = np.maximum(onehot.sum(axis=1), 1.0)[:, None]
  mu_kb = (onehot @ x_mb) / cnt
  xc = x_mb - mu_kb[labels]
  var_kb = (onehot @ xc ** 2) / cnt
  inv_kb = np.where(var_kb > 0, 1.0 / np.where(var_kb > 0, var_kb, 1.0), 0.0).astype(np.float32)
  return np.sum(xc ** 2 * inv_kb[labels], axis=1)


def dictionary_atoms(x_bn, seed, n_clusters: int = 15, per_cluster: int = 4,
                     n_sample: int = 4096) -> np.ndarray:
  """The candidate for :func:`lrrjax.lrr.scene.dictionary_atoms`: pixel
  indices (n_clusters * per_cluster,) int32, each cluster's most typical
  members first; a cluster with fewer members repeats its best one, an empty
  cluster names the sample's first pixel (as the jnp form's ``top_k``)."""
  x_bn = np.asarray(x_bn, np.float32)
  n = x_bn.shape[1]
  pick = even_sample(n, min(n, n_sample))
  x_mb = np.ascontiguousarray(x_bn[:, pick].T)
  _, labels = kmeans(x_mb, n_clusters, int(np.asarray(seed)))
  d_m = typicality(x_mb, labels, n_clusters)
  idx = np.zeros((n_clusters, per_cluster), np.int64)
  for c in range(n_clusters):  # 15 clusters, not pixels
    members = np.flatnonzero(labels == c)
    if members.size:
      order = members[np.argsort(d_m[members], kind="stable")][:per_cluster]
      idx[c] = np.concatenate([order, np.full(per_cluster - order.size, order[0])])
  return pick[idx.reshape(-1)]


def dictionary_atoms_traced(x_bn, seed, n_clusters: int = 15, per_cluster: int = 4,
                            n_sample: int = 4096):
  """The traced twin of :func:`dictionary_atoms` (what the exported detector
  would need): the same hash draws, the same steps in ``jax.numpy``, one
  ``lax.fori_loop`` for the seeding and one ``lax.while_loop`` for Lloyd.
  Float32 sums run in another order in XLA than in numpy, so the two may part
  where a draw or an assignment sits on a near tie (:func:`twin_check`)."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import scene  # pylint: disable=import-outside-toplevel

  def u01(counter):
    x = jnp.asarray(counter, jnp.uint32) * jnp.uint32(_GOLDEN) + jnp.asarray(seed, jnp.uint32)
    for shift, mul in _ROUNDS:
      x = (x ^ (x >> shift)) * jnp.uint32(mul)
    x = x ^ (x >> 16)
    return (x >> 8).astype(jnp.float32) * jnp.float32(2.0 ** -24)

  def sq(x, c):
    d = jnp.sum(x ** 2, axis=1)[:, None] - 2.0 * (x @ c.T) + jnp.sum(c ** 2, axis=1)[None, :]
    return jnp.maximum(d, 0.0)

  k = n_clusters
  x_bn = jnp.asarray(x_bn, jnp.float32)
  n = x_bn.shape[1]
  pick = scene.even_sample(n, min(n, n_sample))
  x_mb = x_bn[:, pick].T
  m, b = x_mb.shape
  mu = jnp.mean(x_mb, axis=0)
  scale = jnp.sqrt(jnp.mean((x_mb - mu) ** 2))
  xs = (x_mb - mu) / jnp.where(scale > 0, scale, 1.0)
  trials = 2 + int(np.log(k))
  first = jnp.minimum((u01(0) * m).astype(jnp.int32), m - 1)
  d2 = jnp.sum((xs - xs[first]) ** 2, axis=1)

  def seed_step(j, carry):
    cent, d2 = carry
    u = u01(1 + (j - 1) * trials + jnp.arange(trials, dtype=jnp.uint32))
    cdf = jnp.cumsum(d2)
    total = cdf[-1]
    by_cdf = jnp.sum(cdf[None, :] <= (u * total)[:, None], axis=1)
    cand = jnp.minimum(jnp.where(total > 0, by_cdf, (u * m).astype(jnp.int32)), m - 1)
    d2_tm = jnp.minimum(d2[None, :], sq(xs, xs[cand]).T)
    best = jnp.argmin(jnp.sum(d2_tm, axis=1))
    return cent.at[j].set(xs[cand[best]]), d2_tm[best]

  cent0 = jnp.zeros((k, b), jnp.float32).at[0].set(xs[first])
  cent, _ = jax.lax.fori_loop(1, k, seed_step, (cent0, d2))

  def lloyd(carry):
    i, c, labels, _ = carry
    onehot = (labels[None, :] == jnp.arange(k)[:, None]).astype(jnp.float32)
    counts = onehot.sum(axis=1)
    c = jnp.where(counts[:, None] > 0, (onehot @ xs) / jnp.maximum(counts, 1.0)[:, None], c)
    new = jnp.argmin(sq(xs, c), axis=1)
    return i + 1, c, new, jnp.any(new != labels)

  labels0 = jnp.argmin(sq(xs, cent), axis=1)
  _, _, labels, _ = jax.lax.while_loop(lambda c: (c[0] < 50) & c[3], lloyd,
                                       (0, cent, labels0, jnp.array(True)))
  onehot = (labels[None, :] == jnp.arange(k)[:, None]).astype(jnp.float32)
  cnt = jnp.maximum(onehot.sum(axis=1), 1.0)[:, None]
  xc = x_mb - ((onehot @ x_mb) / cnt)[labels]
  var_kb = (onehot @ xc ** 2) / cnt
  inv_kb = jnp.where(var_kb > 0, 1.0 / jnp.where(var_kb > 0, var_kb, 1.0), 0.0)
  d_m = jnp.sum(xc ** 2 * inv_kb[labels], axis=1)
  key_km = jnp.where(onehot > 0, d_m[None, :], jnp.inf)
  neg, idx = jax.lax.top_k(-key_km, per_cluster)
  idx = jnp.where(jnp.isfinite(neg), idx, jnp.argmin(key_km, axis=1)[:, None])
  return pick[idx.reshape(-1)]


def twin_check(data_dir, out) -> dict:
  """Per scene: the host atoms against the traced twin's (jitted) and against
  the host atoms of the cube with 7 zero bands appended (zero-band padding must
  not change the dictionary); written to ``OUT/twin.json``."""
  import functools  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  from lrrjax import io, provenance  # pylint: disable=import-outside-toplevel
  twin = jax.jit(functools.partial(dictionary_atoms_traced, seed=0))
  rows = {}
  for path in io.list_scenes(data_dir):
    s = io.load_scene(path)
    h, w, b = s.cube.shape
    x_bn = np.asarray(io.normalize(s.cube, "global"), np.float32).reshape(h * w, b).T
    host = dictionary_atoms(x_bn, 0)
    traced = np.asarray(twin(x_bn))
    padded = dictionary_atoms(np.concatenate([x_bn, np.zeros((7, h * w), np.float32)]), 0)
    rows[s.name] = {"twin_equal": bool(np.array_equal(host, traced)),
                    "twin_shared_atoms": len(set(host.tolist()) & set(traced.tolist())),
                    "padding_equal": bool(np.array_equal(host, padded))}
    print(s.name, rows[s.name], flush=True)
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  provenance.write_json(out / "twin.json", {"scenes": rows, "provenance": provenance.record()})
  return rows


def patch() -> list[str]:
  """Puts :func:`dictionary_atoms` into :mod:`lrrjax.lrr.scene` (this process),
  where ``context_of`` looks it up; returns no extra feature names."""
  from lrrjax.lrr import scene  # pylint: disable=import-outside-toplevel
  scene.dictionary_atoms = dictionary_atoms
  return []


def selection_seconds(data_dir, out) -> dict:
  """Host vs jitted selection seconds (median of 5 after one untimed call)
  and whether their atoms agree, per scene; written to ``OUT/selection.json``."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from lrrjax import io, provenance  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import scene  # pylint: disable=import-outside-toplevel
  jitted = scene.dictionary_atoms
  rows = {}
  for path in io.list_scenes(data_dir):
    s = io.load_scene(path)
    h, w, b = s.cube.shape
    x_bn = np.asarray(io.normalize(s.cube, "global"), np.float32).reshape(h * w, b).T
    row = {}
    for name, fn in (("host", lambda: dictionary_atoms(x_bn, 0)),
                     ("jit", lambda: np.asarray(jitted(jnp.asarray(x_bn), jnp.uint32(0))))):
      atoms = fn()
      ts = []
      for _ in range(5):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
      row[f"{name}_s"] = float(np.median(ts))
      row[f"{name}_atoms"] = atoms.tolist()
    row["same_atom_set"] = sorted(row["host_atoms"]) == sorted(row["jit_atoms"])
    rows[s.name] = row
    print(f"{s.name}: host {row['host_s'] * 1e3:.1f} ms, jit {row['jit_s'] * 1e3:.1f} ms, "
          f"same atoms {row['same_atom_set']}", flush=True)
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  provenance.write_json(out / "selection.json", {"scenes": rows, "provenance": provenance.record()})
  return rows


if __name__ == "__main__":
  if len(sys.argv) == 4 and sys.argv[1] == "twin" and sys.argv[2] == "--out":
    from lrrjax import io as _io  # pylint: disable=import-outside-toplevel
    twin_check(_io.data_dir(), sys.argv[3])
    sys.exit(0)
  sys.exit("usage: python experiments/host_dictionary.py twin --out DIR "
           "(the LOSO run: python experiments/head_features.py hostdict --out DIR)")
