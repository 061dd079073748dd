"""GT-HAD: gated transformer for hyperspectral anomaly detection.

J. Lian, L. Wang, H. Sun, H. Huang, "GT-HAD: Gated Transformer for
Hyperspectral Anomaly Detection", IEEE TNNLS, 2024 (official PyTorch code:
github.com/jeline0110/GT-HAD, ``dnnmethods/GT-HAD/{main,net,block,data}.py``).

Method (one scene, no training data). The cube is min-max normalised to
[0, 1] over all values and cut into N overlapping 9 x 9 blocks ``x_n``
(window stride 3, edge-replicated "same" padding; :mod:`.blocks`). A small
network ``f`` (:mod:`.net`: conv head, one gated transformer block over the
3 x 3 patches of a block, conv tail) reconstructs each block given its gate
``g_n``. Training, for epochs ``e = 1 .. E`` (E = 150):

  for each shuffled mini-batch S (64 blocks, last one smaller):
    L_S = mean_{n in S, pixels, bands} (f(x_n; g_n) - x_n)^2
    theta <- Adam(lr = 1e-3).step(grad L_S)
  if e % 25 == 0 and e != E:                   (search epochs 25, 50, .., 125)
    y_n = f(x_n; g_n) as computed in that epoch's batches (before each update)
    g   = CMM(fold(y), x)                      (:func:`blocks.match_gates`)

with ``g = 0`` (every block masks its own patch, AFB) until the first search.
After the last epoch every block is reconstructed once more and the score is

  s = minmax( sum_b fold( AvgPool_{5x3x3}( (x_n - f(x_n; g_n))^2 ) ) )

the squared residual mean-filtered per block over (band, row, column),
averaged over overlapping blocks and summed over bands.

Differences from the official code are listed in BUILD_NOTES.md ("GT-HAD").
"""

from __future__ import annotations

import functools
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from lrrjax.errors import ConfigError, SceneError
from lrrjax.gthad.blocks import (BlockGrid, block_grid, extract_blocks,
                                 fold_blocks, match_gates, pool_residual)
from lrrjax.gthad.net import GTNet

DESCRIPTION = (
    "GT-HAD (Lian et al., TNNLS 2024): gated transformer reconstructing 9x9 "
    "blocks, gates from content matching every 25 epochs; score = pooled "
    "squared reconstruction residual.")

# Official settings (main.py unless noted).
DEFAULT_EPOCHS = 150          # end_iter = 150
DEFAULT_SEARCH_EVERY = 25     # search_iter = 25 (search when e % 25 == 0, e != end)
DEFAULT_LR = 1e-3             # LR = 1e-3, torch.optim.Adam defaults otherwise
DEFAULT_BATCH = 64            # DataLoader(batch_size=64, shuffle=True, drop_last=False)
DEFAULT_EMBED_DIM = 64        # Net(embed_dim=64)
DEFAULT_PATCH_SIZE = 3        # patch_size = 3
DEFAULT_PATCH_STRIDE = 3      # patch_stride = 3 (block = 3 x 3 patches)
DEFAULT_WINDOW_STRIDE = 3     # DatasetHsi(wstride=3)
DEFAULT_MLP_RATIO = 2.0       # Net(mlp_ratio=2.0)

__all__ = ["BlockGrid", "GTNet", "block_grid", "extract_blocks", "fold_blocks",
           "gt_had", "match_gates", "minmax_global", "pool_residual",
           "method_fn"]


def minmax_global(cube_hwb: np.ndarray) -> np.ndarray:
  """``(x - min x) / max(x - min x)`` over all values, float32 (main.py)."""
  x = np.asarray(cube_hwb, dtype=np.float64)
  x = x - x.min()
  return (x / x.max()).astype(np.float32)


class TrainState(NamedTuple):
  params: Any        # nnx.State of GTNet's parameters
  opt_state: Any     # optax Adam state
  gate_n: jax.Array  # (N,) float32 gates in {0, 1}


# --------------------------------------------------------------------------
# Jitted pieces (one compilation per (shape, config)).
# --------------------------------------------------------------------------


def _batches(key, n: int, batch: int) -> jax.Array:
  """A random permutation of 0..n-1 cut into (M, batch) rows; the last row is
  completed with the dummy index n (masked out of the loss)."""
  m = -(-n // batch)
  perm = jax.random.permutation(key, n)
  return jnp.concatenate([perm, jnp.full((m * batch - n,), n, perm.dtype)]
                         ).reshape(m, batch)


@functools.lru_cache(maxsize=16)
def _epoch_fn(graphdef, lr: float, batch: int):
  """Jitted ``epoch(state, x_nkkb, key) -> (state, loss_m, recon_nkkb)``."""
  tx = optax.adam(lr)

  def epoch(state: TrainState, x_nkkb, key):
    n = x_nkkb.shape[0]
    per_block = float(np.prod(x_nkkb.shape[1:]))
    x_pad = jnp.concatenate([x_nkkb, jnp.zeros_like(x_nkkb[:1])])
    g_pad = jnp.concatenate([state.gate_n, jnp.zeros((1,), jnp.float32)])
    idx_mb = _batches(key, n, batch)

    def step(carry, idx_b):
      params, opt_state = carry
      xb, gb = x_pad[idx_b], g_pad[idx_b]
      valid_b = (idx_b < n).astype(jnp.float32)

      def loss_fn(p):
        out = nnx.merge(graphdef, p)(xb, gb)
        sq_b = jnp.sum(jnp.square(out - xb), axis=(1, 2, 3))
        return jnp.sum(valid_b * sq_b) / (jnp.sum(valid_b) * per_block), out

      (loss, out), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), (loss, out)

    (params, opt_state), (loss_m, out_mb) = jax.lax.scan(
        step, (state.params, state.opt_state), idx_mb, unroll=True)
    recon = jnp.zeros_like(x_pad).at[idx_mb.reshape(-1)].set(
        out_mb.reshape((-1,) + x_nkkb.shape[1:]))[:n]
    return TrainState(params, opt_state, state.gate_n), loss_m, recon

  return tx, jax.jit(epoch)


@functools.lru_cache(maxsize=16)
def _score_fn(graphdef, grid: BlockGrid, batch: int):
  """Jitted ``score(params, x_nkkb, gate_n) -> s_hw`` (before min-max)."""

  def score(params, x_nkkb, gate_n):
    model = nnx.merge(graphdef, params)
    n = x_nkkb.shape[0]
    m = -(-n // batch)
    pad = m * batch - n
    xs = jnp.concatenate([x_nkkb, jnp.zeros((pad,) + x_nkkb.shape[1:], x_nkkb.dtype)])
    gs = jnp.concatenate([gate_n, jnp.zeros((pad,), gate_n.dtype)])
    out = jax.lax.map(lambda a: model(*a), (xs.reshape((m, batch) + x_nkkb.shape[1:]),
                                            gs.reshape(m, batch)))
    out = out.reshape(xs.shape)[:n]
    res = pool_residual(jnp.square(x_nkkb - out))
    return jnp.sum(fold_blocks(res, grid), axis=-1)

  return jax.jit(score)


@functools.lru_cache(maxsize=16)
def _search_fn(grid: BlockGrid):
  return jax.jit(functools.partial(match_gates, g=grid))


# --------------------------------------------------------------------------
# Input checks.
# --------------------------------------------------------------------------


def _as_cube(scene_or_cube) -> tuple[np.ndarray, str]:
  """The (H, W, B) cube and a name for messages; SceneError if unusable."""
  if hasattr(scene_or_cube, "cube"):
    cube = scene_or_cube.cube
    name = f"scene {getattr(scene_or_cube, 'name', '?')!r}"
  else:
    cube, name = scene_or_cube, "cube"
  try:
    cube = np.asarray(cube)
  except Exception as e:  # pragma: no cover - exotic inputs
    raise SceneError(f"gt_had: {name} is not array-like: {e}") from e
  if cube.ndim != 3 or min(cube.shape) < 1:
    raise SceneError(f"gt_had: {name} must be a non-empty (H, W, B) cube, got "
                     f"shape {cube.shape}")
  if not np.issubdtype(cube.dtype, np.number) or np.iscomplexobj(cube):
    raise SceneError(f"gt_had: {name} must be real numeric, got {cube.dtype}")
  if not np.all(np.isfinite(cube)):
    raise SceneError(f"gt_had: {name} of shape {cube.shape} has NaN or inf values")
  if cube.min() == cube.max():
    raise SceneError(f"gt_had: {name} of shape {cube.shape} is constant "
                     f"({cube.min()}); min-max normalisation is undefined")
  return cube, name


def _check_config(shape, name, epochs, search_every, lr, batch_size, embed_dim,
                  patch_size, patch_stride, window_stride, mlp_ratio) -> None:
  def bad(msg):
    raise ConfigError(f"gt_had: {msg}")

  for key, value, low in (("epochs", epochs, 1), ("search_every", search_every, 1),
                          ("batch_size", batch_size, 1), ("embed_dim", embed_dim, 2),
                          ("patch_size", patch_size, 1),
                          ("patch_stride", patch_stride, 1),
                          ("window_stride", window_stride, 1)):
    if isinstance(value, bool) or int(value) != value or value < low:
      bad(f"{key} must be an integer >= {low}, got {value!r}")
  if not lr > 0:
    bad(f"lr must be > 0, got {lr!r}")
  if not mlp_ratio > 0 or int(embed_dim * mlp_ratio) < 1:
    bad(f"mlp_ratio must give a hidden width >= 1, got {mlp_ratio!r}")
  k = patch_size * patch_stride
  h, w, _ = shape
  if k > h or k > w:
    bad(f"block size patch_size * patch_stride = {k} is larger than {name} "
        f"of shape {shape} (H, W must be >= {k})")
  if window_stride > k:
    bad(f"window_stride={window_stride} is larger than the block size {k}; "
        f"pixels between windows would have no block")
  if block_grid(h, w, k, window_stride).n_blocks < 2:
    bad(f"{name} of shape {shape} gives a single {k}x{k} block; the content "
        f"matching needs at least 2")


# --------------------------------------------------------------------------
# Entry points.
# --------------------------------------------------------------------------


def gt_had(scene_or_cube, seed: int = 0, epochs: int = DEFAULT_EPOCHS,
           search_every: int = DEFAULT_SEARCH_EVERY, lr: float = DEFAULT_LR,
           batch_size: int = DEFAULT_BATCH, embed_dim: int = DEFAULT_EMBED_DIM,
           patch_size: int = DEFAULT_PATCH_SIZE,
           patch_stride: int = DEFAULT_PATCH_STRIDE,
           window_stride: int = DEFAULT_WINDOW_STRIDE,
           mlp_ratio: float = DEFAULT_MLP_RATIO, return_info: bool = False,
           progress=None):
  """Runs GT-HAD on one scene and returns the anomaly map.

  Args:
    scene_or_cube: a ``lrrjax.io.Scene`` (uses ``.cube``) or an (H, W, B) array.
    seed: seeds the parameters and the per-epoch shuffles.
    epochs: training epochs (official 150); the last one is scored.
    search_every: content-matching period in epochs (official 25; searches
      at every multiple below ``epochs``).
    lr: Adam learning rate (official 1e-3).
    batch_size: blocks per Adam step (official 64).
    embed_dim: channels C of the transformer (official 64).
    patch_size, patch_stride: a block is ``patch_stride x patch_stride``
      patches of ``patch_size x patch_size`` pixels (official 3 and 3).
    window_stride: stride of the block window (official 3).
    mlp_ratio: MLP hidden width / C (official 2.0).
    return_info: also return a dict with ``loss_history`` (mean batch loss
      per epoch), ``gates`` ((N,) final gates), ``n_matched`` (matched blocks
      after each search), ``n_blocks``, ``seconds``.
    progress: optional ``progress(epoch, mean_loss)`` callback per epoch.

  Returns:
    (H, W) float32 scores in [0, 1]; or ``(scores, info)``.

  Raises:
    SceneError: the cube is not a finite, non-constant (H, W, B) array.
    ConfigError: a parameter is out of range or does not fit the scene.
  """
  cube, name = _as_cube(scene_or_cube)
  _check_config(cube.shape, name, epochs, search_every, lr, batch_size,
                embed_dim, patch_size, patch_stride, window_stride, mlp_ratio)
  h, w, b = cube.shape
  k = int(patch_size) * int(patch_stride)
  grid = block_grid(h, w, k, int(window_stride))
  x_nkkb = extract_blocks(jnp.asarray(minmax_global(cube)), grid)

  t0 = time.perf_counter()
  key = jax.random.key(seed)
  k_param, k_shuffle = jax.random.split(key)
  model = GTNet(b, int(embed_dim), int(patch_size), int(patch_stride),
                float(mlp_ratio), rngs=nnx.Rngs(params=k_param))
  graphdef, params = nnx.split(model)
  tx, epoch_fn = _epoch_fn(graphdef, float(lr), int(batch_size))
  state = TrainState(params, tx.init(params),
                     jnp.zeros((grid.n_blocks,), jnp.float32))
  search = _search_fn(grid)
  losses, matched = [], []
  for e in range(1, int(epochs) + 1):
    state, loss_m, recon = epoch_fn(state, x_nkkb, jax.random.fold_in(k_shuffle, e))
    if e % search_every == 0 and e != epochs:
      state = state._replace(gate_n=search(recon, x_nkkb))
      matched.append(int(jnp.sum(state.gate_n)))
    losses.append(loss_m)
    if progress is not None:
      progress(e, float(jnp.mean(loss_m)))
  s_hw = _score_fn(graphdef, grid, int(batch_size))(state.params, x_nkkb, state.gate_n)
  s_hw = np.asarray(s_hw, np.float64)
  s_hw = s_hw - s_hw.min()
  top = s_hw.max()
  scores = (s_hw / top if top > 0 else s_hw).astype(np.float32)
  if not return_info:
    return scores
  info = dict(loss_history=np.asarray([np.mean(np.asarray(l)) for l in losses],
                                      np.float32),
              gates=np.asarray(state.gate_n), n_matched=matched,
              n_blocks=grid.n_blocks, seconds=time.perf_counter() - t0)
  return scores, info


def method_fn(scene, seed: int = 0, epochs: int = DEFAULT_EPOCHS,
              search_every: int = DEFAULT_SEARCH_EVERY, lr: float = DEFAULT_LR,
              batch_size: int = DEFAULT_BATCH, embed_dim: int = DEFAULT_EMBED_DIM,
              patch_size: int = DEFAULT_PATCH_SIZE,
              patch_stride: int = DEFAULT_PATCH_STRIDE,
              window_stride: int = DEFAULT_WINDOW_STRIDE,
              mlp_ratio: float = DEFAULT_MLP_RATIO) -> np.ndarray:
  """Registry entry point (method ``gt-had``): :func:`gt_had` scores (H, W)."""
  return gt_had(scene, seed=seed, epochs=epochs, search_every=search_every,
                lr=lr, batch_size=batch_size, embed_dim=embed_dim,
                patch_size=patch_size, patch_stride=patch_stride,
                window_stride=window_stride, mlp_ratio=mlp_ratio)


def _register() -> None:
  from lrrjax import detectors
  detectors.register(detectors.MethodSpec("gt-had", method_fn, DESCRIPTION))


_register()
