"""GT-HAD block geometry: extraction, folding, content matching, score pooling.

The official code (``dnnmethods/GT-HAD/block.py`` of github.com/jeline0110/
GT-HAD) cuts the normalised cube into overlapping ``k x k`` blocks with a
sliding window of stride ``s`` after TensorFlow-style "same" padding by edge
replication, and folds per-block arrays back by averaging the blocks that
cover each pixel. All functions here are channels-last: a cube is
``x_hwb`` (H, W, B) and a block stack ``x_nkkb`` (N, k, k, B), blocks in
row-major order of their top-left corners (``torch.nn.Unfold``'s order).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

POOL_BKK = (5, 3, 3)   # main.py: nn.AvgPool3d(kernel_size=(5, 3, 3), padding=(2, 1, 1))
PAIRWISE_EPS = 1e-6    # torch.nn.PairwiseDistance default eps (added to x1 - x2)
MATCH_CANDIDATES = 4   # nearest candidates re-ranked by the exact distance


class BlockGrid(NamedTuple):
  """Where the blocks of an (H, W) scene lie.

  ``pad_*`` are the replicated rows/columns added before/after each axis:
  ``n_out = ceil(n / s)`` windows, ``pad = max(0, (n_out - 1) s + k - n)``,
  ``before = floor(pad / 2)``, ``after = pad - before`` (``same_padding``).
  Block ``(i, j)`` covers padded rows ``i s .. i s + k - 1`` and columns
  ``j s .. j s + k - 1``; its flat index is ``i * n_cols + j``.
  """
  height: int
  width: int
  size: int          # k
  stride: int        # s
  n_rows: int        # windows down
  n_cols: int        # windows across
  pad_top: int
  pad_bottom: int
  pad_left: int
  pad_right: int

  @property
  def n_blocks(self) -> int:
    return self.n_rows * self.n_cols


def _same_pad(n: int, k: int, s: int) -> tuple[int, int, int]:
  n_out = -(-n // s)
  pad = max(0, (n_out - 1) * s + k - n)
  return n_out, pad // 2, pad - pad // 2


def block_grid(height: int, width: int, size: int, stride: int) -> BlockGrid:
  """The :class:`BlockGrid` of an (height, width) scene."""
  n_rows, top, bottom = _same_pad(height, size, stride)
  n_cols, left, right = _same_pad(width, size, stride)
  return BlockGrid(height, width, size, stride, n_rows, n_cols, top, bottom,
                   left, right)


def _block_rows_cols(g: BlockGrid) -> tuple[np.ndarray, np.ndarray]:
  """Padded-image row (n_rows, k) and column (n_cols, k) indices of blocks."""
  rows = g.stride * np.arange(g.n_rows)[:, None] + np.arange(g.size)[None]
  cols = g.stride * np.arange(g.n_cols)[:, None] + np.arange(g.size)[None]
  return rows, cols


def extract_blocks(x_hwb: jax.Array, g: BlockGrid) -> jax.Array:
  """Cuts the cube into overlapping blocks (official ``Block_embedding``).

  ``x_pad = edge_pad(x)``; ``blocks[i n_cols + j, u, v] = x_pad[i s + u, j s + v]``.

  Args:
    x_hwb: (H, W, B) cube.
    g: grid of the cube's (H, W).

  Returns:
    (N, k, k, B) blocks, N = n_rows * n_cols.
  """
  x_pad = jnp.pad(x_hwb, ((g.pad_top, g.pad_bottom), (g.pad_left, g.pad_right),
                          (0, 0)), mode="edge")
  rows, cols = _block_rows_cols(g)
  x_ijkkb = x_pad[rows[:, None, :, None], cols[None, :, None, :]]
  return x_ijkkb.reshape(g.n_blocks, g.size, g.size, x_hwb.shape[-1])


def fold_blocks(x_nkkb: jax.Array, g: BlockGrid) -> jax.Array:
  """Averages overlapping blocks back into an (H, W, B) image (``Block_fold``).

  ``out[p] = sum_{blocks n covering p} x_n[p] / #{blocks covering p}``, pixel
  positions taken in the padded frame and the padding cropped. For blocks cut
  from one cube this reproduces the cube exactly.

  Args:
    x_nkkb: (N, k, k, B) per-block values.
    g: grid the blocks were cut with.

  Returns:
    (H, W, B) image.
  """
  b = x_nkkb.shape[-1]
  hp = g.height + g.pad_top + g.pad_bottom
  wp = g.width + g.pad_left + g.pad_right
  rows, cols = _block_rows_cols(g)
  r = np.broadcast_to(rows[:, None, :, None], (g.n_rows, g.n_cols, g.size, g.size))
  c = np.broadcast_to(cols[None, :, None, :], (g.n_rows, g.n_cols, g.size, g.size))
  r, c = r.reshape(-1), c.reshape(-1)
  count = np.zeros((hp, wp), np.float32)
  np.add.at(count, (r, c), 1.0)
  total = jnp.zeros((hp, wp, b), x_nkkb.dtype).at[r, c].add(x_nkkb.reshape(-1, b))
  out = total / jnp.asarray(np.maximum(count, 1.0))[..., None]
  return out[g.pad_top:g.pad_top + g.height, g.pad_left:g.pad_left + g.width]


def match_gates(recon_nkkb: jax.Array, query_nkkb: jax.Array,
                g: BlockGrid) -> jax.Array:
  """Content-matching method (CMM, official ``Block_search``).

  The reconstructed blocks are folded into an image, re-cut into key blocks
  ``k_i``, and each key is compared with every original block ``q_j``:

    d(i, j) = || k_i - q_j + eps ||_2      (torch PairwiseDistance, eps 1e-6)
    gate_i  = 1  if argmin_j d(i, j) = i  else 0.

  ``gate_i = 1`` (the block's reconstruction is closest to itself) marks a
  background block; its attention keeps the diagonal (BFB), the others mask
  it (AFB). The distances are ranked first by the expansion
  ``|k|^2 - 2 k.q + |q|^2`` (after centring on the mean query block, to limit
  cancellation), and the ``MATCH_CANDIDATES`` nearest are re-ranked by the
  exact distance above; ties go to the lower index.

  Args:
    recon_nkkb: (N, k, k, B) network outputs of every block.
    query_nkkb: (N, k, k, B) blocks of the input cube.
    g: their grid.

  Returns:
    (N,) float32 gates in {0, 1}.
  """
  n = query_nkkb.shape[0]
  key_nd = extract_blocks(fold_blocks(recon_nkkb, g), g).reshape(n, -1)
  query_nd = query_nkkb.reshape(n, -1)
  centre_d = jnp.mean(query_nd, axis=0)
  kc, qc = key_nd - centre_d, query_nd - centre_d
  d2_nn = (jnp.sum(kc * kc, 1)[:, None] - 2.0 * kc @ qc.T
           + jnp.sum(qc * qc, 1)[None, :])
  m = min(MATCH_CANDIDATES, n)
  _, cand_nm = jax.lax.top_k(-d2_nn, m)
  diff_nmd = key_nd[:, None, :] - query_nd[cand_nm] + PAIRWISE_EPS
  exact_nm = jnp.sum(diff_nmd * diff_nmd, axis=-1)
  # lexicographic (distance, index) minimum: exact ties go to the lower index
  best = jnp.min(exact_nm, axis=1, keepdims=True)
  idx = jnp.min(jnp.where(exact_nm == best, cand_nm, n), axis=1)
  return (idx == jnp.arange(n)).astype(jnp.float32)


def pool_residual(res_nkkb: jax.Array) -> jax.Array:
  """Per-block 3-D mean filter of the squared residual (official scoring).

  ``nn.AvgPool3d((5, 3, 3), stride 1, padding (2, 1, 1))`` applied to an
  (N, B, k, k) tensor treats it as unbatched (C=N, D=B, H=k, W=k): each block
  is filtered on its own over (band, row, column) with zero padding and the
  divisor always 45 (``count_include_pad=True``).

  Args:
    res_nkkb: (N, k, k, B) squared residual.

  Returns:
    (N, k, k, B) pooled residual.
  """
  pb, pk, _ = POOL_BKK
  window = (1, pk, pk, pb)
  pads = ((0, 0), (pk // 2, pk // 2), (pk // 2, pk // 2), (pb // 2, pb // 2))
  total = jax.lax.reduce_window(res_nkkb, 0.0, jax.lax.add, window,
                                (1, 1, 1, 1), pads)
  return total / float(np.prod(POOL_BKK))
