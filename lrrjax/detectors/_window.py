"""Dual (guard + outer) sliding windows, vectorised with gather indices.

A dual window centred on a pixel is the ``outer x outer`` square minus the
``inner x inner`` guard square around it; the pixels left (the *ring*) are the
local background sample.  Both sizes are odd, ``1 <= inner < outer``.  There are
``n = outer**2 - inner**2`` ring pixels for every pixel of the scene.

Borders use mirror padding with numpy's ``'reflect'`` mode (the edge pixel is
*not* repeated: ``..., x2, x1 | x0, x1, x2, ...``; ``'symmetric'`` would repeat
the edge row, counting it twice).  Near a border, mirroring can bring pixels of
the guard window -- even the centre pixel itself, e.g. column 1 mirrors onto
column -1 -- into the ring; a detector that sees the pixel under test in its own
background is blind there (CRD represents it exactly).  Ring entries whose
mirrored source pixel lies inside the guard window of the centre (Chebyshev
distance <= inner // 2) are therefore masked out; the detectors use weighted
statistics with these 0/1 masks, so a border pixel has a ring of fewer than
``n`` distinct-role samples (mirrored duplicates outside the guard remain).

The ring of every pixel is fetched with one gather from the flattened cube with
(mirrored) source indices ``idx[p, j]`` and masks ``mask[p, j]``, computed per chunk
inside the compiled function from the centre indices and the ring offsets.  Pixels are processed in chunks
(``lax.map`` over chunks, ``vmap`` inside a chunk) so the peak memory is
``chunk * n * B`` floats for the gathered rings, not ``N * n * B``.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from lrrjax.errors import ConfigError

PADDING_MODE = "reflect"


def check_window(inner, outer, shape) -> tuple[int, int]:
  """Validates a dual window against a cube shape (H, W, B).

  Args:
    inner: guard window size (odd, >= 1).
    outer: outer window size (odd, > inner, <= min(H, W)).
    shape: the cube shape ``(H, W, B)``.

  Returns:
    ``(inner, outer)`` as Python ints.

  Raises:
    ConfigError: naming the window and the scene shape.
  """
  desc = f"window (inner={inner!r}, outer={outer!r})"
  if len(shape) != 3:
    raise ConfigError(f"{desc}: expected a cube of shape (H, W, B), got shape {tuple(shape)}")
  for name, v in (("inner", inner), ("outer", outer)):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
      raise ConfigError(f"{desc}: {name} must be an integer, got {type(v).__name__}")
    if v < 1:
      raise ConfigError(f"{desc}: {name} must be >= 1")
    if v % 2 == 0:
      raise ConfigError(f"{desc}: {name} must be odd so the window has a centre pixel")
  inner, outer = int(inner), int(outer)
  if inner >= outer:
    raise ConfigError(f"{desc}: inner must be smaller than outer")
  h, w = int(shape[0]), int(shape[1])
  if outer > min(h, w):
    raise ConfigError(
        f"{desc}: outer window larger than the scene of shape {tuple(int(s) for s in shape)} "
        f"(needs outer <= min(H, W) = {min(h, w)})")
  return inner, outer


def ring_offsets(inner: int, outer: int) -> np.ndarray:
  """Offsets ``(dy, dx)`` of the ring pixels, raster order, shape (n, 2)."""
  ho, hi = outer // 2, inner // 2
  dy, dx = np.meshgrid(np.arange(-ho, ho + 1), np.arange(-ho, ho + 1), indexing="ij")
  keep = np.maximum(np.abs(dy), np.abs(dx)) > hi
  return np.stack([dy[keep], dx[keep]], axis=1)


def _reflect(c: np.ndarray, size: int) -> np.ndarray:
  c = np.where(c < 0, -c, c)
  return np.where(c > size - 1, 2 * (size - 1) - c, c)


def ring_indices(h: int, w: int, inner: int, outer: int) -> tuple[np.ndarray, np.ndarray]:
  """Mirrored source pixel indices (N, n) and 0/1 masks (N, n) of every ring.

  ``idx[p, j]`` is the raster index of the pixel that ring entry ``j`` of pixel
  ``p`` reads after 'reflect' mirroring; ``mask[p, j]`` is 0 where that source
  lies inside the guard window of ``p`` (see module docstring), else 1.
  """
  off = ring_offsets(inner, outer)
  rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  rows, cols = rows.reshape(-1, 1), cols.reshape(-1, 1)
  sr = _reflect(rows + off[None, :, 0], h)
  sc = _reflect(cols + off[None, :, 1], w)
  inside_guard = np.maximum(np.abs(sr - rows), np.abs(sc - cols)) <= inner // 2
  return (sr * w + sc).astype(np.int32), (~inside_guard).astype(np.float32)


def chunked_rings(h: int, w: int, inner: int, outer: int, chunk: int = 256):
  """Centre pixels split into chunks, and the ring's geometry.

  Returns numpy arrays ``(centre (C, chunk), offsets (n, 2), guard ())`` to be
  passed to the jitted :func:`map_rings` as arguments (not baked into the
  compiled program as constants): the padded raster indices of the centres,
  :func:`ring_offsets` and ``inner // 2``. :func:`map_rings` derives each
  chunk's mirrored ring indices and masks from them (the values
  :func:`ring_indices` gives), so memory does not hold an (N, n) index array.
  """
  n_pix = h * w
  chunk = max(1, min(int(chunk), n_pix))
  n_chunks = -(-n_pix // chunk)
  pad = n_chunks * chunk - n_pix
  centre = np.concatenate([np.arange(n_pix, dtype=np.int32), np.zeros(pad, np.int32)])
  return (centre.reshape(n_chunks, chunk), ring_offsets(inner, outer).astype(np.int32),
          np.asarray(inner // 2, np.int32))


def _reflect_jnp(c, size: int):
  c = jnp.where(c < 0, -c, c)
  return jnp.where(c > size - 1, 2 * (size - 1) - c, c)


def chunk_rings(centre_c: jax.Array, off_n2: jax.Array, guard: jax.Array, h: int, w: int):
  """:func:`ring_indices` of the pixels ``centre_c`` (c,): ``(idx (c, n), mask (c, n))``."""
  rows, cols = (centre_c // w)[:, None], (centre_c % w)[:, None]
  sr = _reflect_jnp(rows + off_n2[None, :, 0], h)
  sc = _reflect_jnp(cols + off_n2[None, :, 1], w)
  inside_guard = jnp.maximum(jnp.abs(sr - rows), jnp.abs(sc - cols)) <= guard
  return sr * w + sc, (~inside_guard)


def map_rings(kernel: Callable, cube_hwb: jax.Array, rings) -> jax.Array:
  """Applies ``kernel(y_b, ring_nb, mask_n) -> scalar`` to every pixel.

  Args:
    kernel: per-pixel function of the pixel spectrum ``y_b`` (B,), its ring
      ``ring_nb`` (n, B) and the ring's 0/1 mask ``mask_n`` (n,); vmapped over a
      chunk of pixels.
    cube_hwb: (H, W, B) array.
    rings: ``chunked_rings(H, W, inner, outer, chunk)`` (as arrays).

  Returns:
    (H, W) scores.
  """
  h, w, b = cube_hwb.shape
  flat = cube_hwb.reshape(-1, b)
  centre, off, guard = rings

  def one_chunk(c):
    i, m = chunk_rings(c, off, guard, h, w)
    return jax.vmap(kernel)(flat[c], flat[i], m.astype(flat.dtype))

  scores = jax.lax.map(one_chunk, centre).reshape(-1)[:h * w]
  return scores.reshape(h, w)


def ridge_residual_sq(a_mn: jax.Array, b_m: jax.Array, reg_n: jax.Array) -> jax.Array:
  """Squared residual of the ridge system, computed stably with a QR factorisation.

  Minimises ``||b - A w||^2 + sum_j reg_j w_j^2`` via the augmented least-squares
  problem ``[A; diag(sqrt(reg))] w ~ [b; 0]`` and returns the residual split as
  ``(||b - A w*||^2, sum_j reg_j w*_j^2)``.  Working with the (m + n) x n
  augmented matrix instead of the normal equations keeps the condition number
  at the square root of the Gram matrix's, so float32 is enough.

  Args:
    a_mn: (m, n) design matrix.
    b_m: (m,) target.
    reg_n: (n,) non-negative ridge weights.

  Returns:
    ``(fit_sq, pen_sq)`` scalars.
  """
  m, n = a_mn.shape
  aug = jnp.concatenate([a_mn, jnp.diag(jnp.sqrt(reg_n))], axis=0)
  rhs = jnp.concatenate([b_m, jnp.zeros((n,), b_m.dtype)])
  q, _ = jnp.linalg.qr(aug, mode="reduced")
  res = rhs - q @ (q.T @ rhs)
  return jnp.sum(res[:m] ** 2), jnp.sum(res[m:] ** 2)


def ridge_residual_chol(a_mn: jax.Array, b_m: jax.Array, reg: jax.Array) -> jax.Array:
  """``min_w ||b - A w||^2 + reg ||w||^2`` via Cholesky of ``A^T A + reg I``.

  For a well-conditioned system (``reg`` not tiny relative to ``||A||^2``).  The
  objective is evaluated at the computed ``w`` (not as ``||b||^2 - b^T A w``),
  so an O(delta) error in ``w`` only costs O(delta^2) in the value.

  Args:
    a_mn: (m, n) design matrix.
    b_m: (m,) target.
    reg: scalar ridge > 0.

  Returns:
    The minimal objective value (scalar).
  """
  n = a_mn.shape[1]
  g = a_mn.T @ a_mn + reg * jnp.eye(n, dtype=a_mn.dtype)
  c = jax.scipy.linalg.cho_factor(g, lower=True)
  w = jax.scipy.linalg.cho_solve(c, a_mn.T @ b_m)
  res = b_m - a_mn @ w
  return jnp.sum(res ** 2) + reg * jnp.sum(w ** 2)


__all__ = ["PADDING_MODE", "check_window", "ring_offsets", "map_rings", "chunked_rings", "chunk_rings", "ring_indices", "ridge_residual_sq",
           "ridge_residual_chol"]


def prepare(cube_hwb, inner: int, outer: int, chunk: int):
  """Checks the window against the cube and builds its chunked rings.

  Returns ``(cube, rings)``: the cube as a floating JAX array and
  :func:`chunked_rings` for its H x W.
  """
  cube = jnp.asarray(cube_hwb)
  inner, outer = check_window(inner, outer, cube.shape)
  if not jnp.issubdtype(cube.dtype, jnp.floating):
    cube = cube.astype(jnp.float32)
  return cube, chunked_rings(cube.shape[0], cube.shape[1], inner, outer, chunk)
