"""The scene side of the generalised LRR-Net+ (:mod:`lrrjax.lrr.general`):
everything derived from one scene at call time, nothing trained.

Global min-max normalisation, the robust per-band noise (:func:`band_noise`)
and its band weights (:func:`band_weights`), and the LRASR-style dictionary
as pixel indices (:mod:`lrrjax.lrr.atoms`: on the host, or its traced twin
inside :func:`scene_context`), gathered in a :class:`SceneContext` by
:func:`prepare` (a raw cube) or :func:`context_of` (normalised pixels).
:func:`scene_context` traces with symbolic H, W, B (:mod:`jax.export`).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lrrjax.lrr import atoms as atoms_lib
from lrrjax.lrr import prox

Array = jax.Array


class SceneContext(NamedTuple):
  """What the network needs from one scene (B bands, N = H W pixels)."""
  x_bn: Array       # (B, N) globally min-max normalised pixels, row-major raster
  noise_b: Array    # (B,) robust noise std per band (0: zero-variance band)
  atoms_k: Array    # (K,) int32 pixel indices of the initial dictionary


def normalize_cube(cube_hwb) -> np.ndarray:
  """Global min-max normalisation (as ``lrrjax.io.normalize(cube, "global")``)."""
  from lrrjax import io  # pylint: disable=import-outside-toplevel
  return io.normalize(cube_hwb, "global")


def even_sample(total, m):
  """``m`` evenly spaced indices of ``range(total)``, (m,) int32.

  ``idx_i = floor(i (total - 1) / (m - 1))`` in exact integer arithmetic (as
  ``np.linspace(0, total - 1, m).astype(int)`` means; float rounding there puts
  a few indices one lower for some sizes, e.g. 124 row counts h in [257, 3000)
  and N = 4166 pixels; none of the benchmark scenes' sizes). ``total`` and ``m``
  may be symbolic dimensions (:mod:`jax.export`); ``m <= total``, so the indices
  are distinct. The product is split as ``i q + (i r) // (m - 1)`` with
  ``total - 1 = q (m - 1) + r``: int32 suffices for ``total < 2^31``, ``m < 46341``.
  """
  i = jnp.arange(m, dtype=jnp.int32)
  d = jnp.maximum(jnp.asarray(m, jnp.int32) - 1, 1)
  t1 = jnp.asarray(total, jnp.int32) - 1
  return i * (t1 // d) + (i * (t1 % d)) // d


def _min_dim(a, b):
  """``min(a, b)`` for ints or symbolic dimensions (:mod:`jax.export`)."""
  if isinstance(a, int) and isinstance(b, int):
    return min(a, b)
  return jax.core.min_dim(a, b)


def _band_noise(x_bn: Array, h, w, max_rows: int = 256) -> Array:
  """:func:`band_noise`, traceable with symbolic ``h``, ``w`` (``w >= 2`` then)."""
  b = x_bn.shape[0]
  x_bhw = x_bn.reshape(b, h, w)
  if w < 2:
    d = x_bhw[:, 1:, :] - x_bhw[:, :-1, :]
  else:
    sub = x_bhw[:, even_sample(h, _min_dim(h, max_rows)), :]
    d = sub[:, :, 1:] - sub[:, :, :-1]
  sigma = noise_from_diffs(d.reshape(b, d.shape[1] * d.shape[2]))
  var = jnp.var(x_bn, axis=1)
  return jnp.where(var > 0, sigma, 0.0)


def noise_from_diffs(d_bd: Array) -> Array:
  """``1.4826 MAD(d) / sqrt(2)`` per band of neighbour differences ``d`` (B, D), (B,).

  Medians by :func:`lrrjax.lrr.prox.bisect_median` (no sort).
  """
  med = prox.bisect_median(d_bd, axis=1)[:, None]
  return 1.4826 * prox.bisect_median(jnp.abs(d_bd - med), axis=1) / jnp.sqrt(2.0)


@functools.partial(jax.jit, static_argnames=("h", "w", "max_rows"))
def band_noise(x_bn: Array, h: int, w: int, max_rows: int = 256) -> Array:
  """Robust per-band noise std from horizontal neighbour differences, (B,).

  ``sigma_b = 1.4826 MAD_{r,c}(x[r, c+1, b] - x[r, c, b]) / sqrt(2)`` over at most
  ``max_rows`` evenly spaced rows (:func:`even_sample`); 0 for a band whose
  values are all equal. Medians by :func:`lrrjax.lrr.prox.bisect_median` (no sort).
  """
  return _band_noise(x_bn, h, w, max_rows)


def band_weights(noise_b: Array, gamma: Array) -> Array:
  """``omega_b = (sigma_b / median sigma)^(-gamma)``, 0 for zero-variance bands.

  ``sigma_b`` is floored at 0.1 median (quantised bands whose MAD is 0).
  """
  live = noise_b > 0
  pos = jnp.where(live, noise_b, jnp.nan)
  med = jnp.nanmedian(pos)  # (B values: the sort is cheap)
  med = jnp.where(jnp.isfinite(med) & (med > 0), med, 1.0)
  rel = jnp.maximum(jnp.where(live, noise_b, med) / med, 0.1)
  return jnp.where(live, rel ** (-gamma), 0.0)


dictionary_atoms = atoms_lib.dictionary_atoms


def normalize_global(cube_hwb: Array) -> Array:
  """Global min-max ``(x - min x) / (max x - min x)`` in float32 (0 for a constant cube).

  The jnp form of :func:`normalize_cube`, traceable with symbolic shapes; the
  cube is cast to float32 first (exact for integer data below 2^24).
  """
  x = jnp.asarray(cube_hwb, jnp.float32)
  lo = jnp.min(x)
  span = jnp.max(x) - lo
  return jnp.where(span > 0, (x - lo) / jnp.where(span > 0, span, 1.0), 0.0)


def scene_context(cube_hwb: Array, *, gamma0: float = 0.0, n_clusters: int = 15,
                  per_cluster: int = 4, n_sample: int = 4096, seed: int = 0) -> SceneContext:
  """:func:`prepare` as one traceable function of the raw cube (H, W, B).

  H, W and B may be symbolic (:mod:`jax.export`; then ``W >= 2`` must be a
  constraint). The exported detector (:mod:`lrrjax.export`) traces it: the
  same normalisation and band noise as :func:`prepare`, and the traced twin
  of the host dictionary selection (:mod:`lrrjax.lrr.atoms`).
  """
  x_bn, noise_b, xw_bn = _scene_base(cube_hwb, gamma0)
  atoms = atoms_lib.dictionary_atoms_traced(xw_bn, jnp.asarray(seed, jnp.uint32), n_clusters,
                                            per_cluster, n_sample)
  return SceneContext(x_bn, noise_b, atoms)


def _scene_base(cube_hwb: Array, gamma0: float):
  """Normalised pixels (B, N), band noise (B,) and the pixels weighted with
  ``gamma0`` (B, N), from which the dictionary is chosen."""
  h, w, b = cube_hwb.shape
  x_bn = normalize_global(cube_hwb).reshape(h * w, b).T
  noise_b = _band_noise(x_bn, h, w)
  return x_bn, noise_b, band_weights(noise_b, jnp.float32(gamma0))[:, None] * x_bn


_scene_base_jit = jax.jit(_scene_base, static_argnames=("gamma0",))


def prepare(cube_hwb, *, gamma0: float = 0.0, n_clusters: int = 15, per_cluster: int = 4,
            n_sample: int = 4096, seed: int = 0) -> SceneContext:
  """The :class:`SceneContext` of a raw cube (H, W, B): no parameter is trained here.

  The cube is min-max normalised globally (:func:`normalize_global`, float32)
  and its band noise estimated (one jitted program); the dictionary atoms are
  chosen on the host (:func:`lrrjax.lrr.atoms.dictionary_atoms`) in the space
  weighted with ``gamma0`` (the initial noise-weighting exponent).
  """
  x_bn, noise_b, xw_bn = _scene_base_jit(jnp.asarray(cube_hwb, jnp.float32), float(gamma0))
  atoms = dictionary_atoms(xw_bn, int(seed), int(n_clusters), int(per_cluster), int(n_sample))
  return SceneContext(x_bn, noise_b, jnp.asarray(atoms))


def context_of(x_bn, h: int, w: int, *, gamma0: float = 0.0, n_clusters: int = 15,
               per_cluster: int = 4, n_sample: int = 4096, seed: int = 0) -> SceneContext:
  """:func:`prepare` for already normalised pixels ``x_bn`` (B, H W)."""
  x_bn = jnp.asarray(x_bn, jnp.float32)
  noise_b = band_noise(x_bn, h, w)
  xw_bn = band_weights(noise_b, jnp.float32(gamma0))[:, None] * x_bn
  atoms = dictionary_atoms(xw_bn, int(seed), n_clusters, per_cluster, n_sample)
  return SceneContext(x_bn, noise_b, jnp.asarray(atoms))
