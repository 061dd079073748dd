"""Fitting Auto-AD to one scene (:func:`auto_ad`) and its registry entry
point (:func:`method_fn`), with the official code's defaults."""

from __future__ import annotations

import functools
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from lrrjax.autoad.defaults import (DEFAULT_CHANNELS, DEFAULT_INPUT_SCALE, DEFAULT_ITERS,
                                    DEFAULT_LR, DEFAULT_PLATEAU, DEFAULT_PLATEAU_WINDOW,
                                    DEFAULT_REFRESH_EVERY, DEFAULT_REG_NOISE_STD,
                                    DEFAULT_SCALES)
from lrrjax.autoad.net import SkipNet, count_params
from lrrjax.autoad.ops import minmax_global, pixel_residual, plateau_stop, residual_weights
from lrrjax.errors import ConfigError, SceneError


@functools.lru_cache(maxsize=32)
def _adam(lr: float) -> optax.GradientTransformation:
  """One optax.adam object per learning rate (static in the NNX graph, so
  reusing it lets ``nnx.jit`` reuse the compiled step across calls)."""
  return optax.adam(lr)


class StepOut(NamedTuple):
  loss: jax.Array      # scalar weighted MSE of this step (before the update)
  r_hw: jax.Array      # (H, W) squared residual of this step's output
  w_hw: jax.Array      # (H, W) weights used in this step's loss


@nnx.jit
def _train_step(model, optimizer, z0, x, w_prev, refresh, key, step,
                reg_noise_std):
  """One Auto-AD step: perturb input, forward, (maybe) refresh w, Adam update."""
  z = z0 + reg_noise_std * jax.random.normal(
      jax.random.fold_in(key, step), z0.shape, z0.dtype)

  def loss_fn(m):
    out = m(z)
    r = pixel_residual(jax.lax.stop_gradient(out), x)[0]
    w = jnp.where(refresh, residual_weights(r), w_prev)
    wb = w[None, :, :, None]
    loss = jnp.mean(jnp.square(out * wb - x * wb))
    return loss, (r, w)

  (loss, (r, w)), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
  optimizer.update(model, grads)
  return StepOut(loss, r, w)


def _as_cube(scene_or_cube) -> tuple[np.ndarray, str]:
  """Returns the (H, W, B) cube and a name for messages."""
  if hasattr(scene_or_cube, "cube"):
    cube = scene_or_cube.cube
    name = f"scene {getattr(scene_or_cube, 'name', '?')!r}"
  else:
    cube = scene_or_cube
    name = "cube"
  try:
    cube = np.asarray(cube)
  except Exception as e:  # pragma: no cover - exotic inputs
    raise SceneError(f"auto_ad: {name} is not array-like: {e}") from e
  if cube.ndim != 3 or min(cube.shape) < 1:
    raise SceneError(
        f"auto_ad: {name} must be a non-empty (H, W, B) cube, got shape "
        f"{cube.shape}")
  if not np.issubdtype(cube.dtype, np.number) or np.iscomplexobj(cube):
    raise SceneError(f"auto_ad: {name} must be real numeric, got {cube.dtype}")
  if not np.all(np.isfinite(cube)):
    raise SceneError(
        f"auto_ad: {name} of shape {cube.shape} has NaN or inf values")
  if cube.min() == cube.max():
    raise SceneError(
        f"auto_ad: {name} of shape {cube.shape} is constant "
        f"({cube.min()}); min-max normalisation is undefined")
  if cube.shape[0] < 2 or cube.shape[1] < 2:
    raise SceneError(
        f"auto_ad: {name} needs H, W >= 2 for reflection padding, got shape "
        f"{cube.shape}")
  return cube, name


def _check_config(iters, lr, channels, scales, skip_channels, reg_noise_std,
                  input_scale, plateau_window, refresh_every):
  def bad(msg):
    raise ConfigError(f"auto_ad: {msg}")

  def integer_at_least(name, value, low):
    if int(value) != value or value < low:
      bad(f"{name} must be an integer >= {low}, got {value!r}")

  integer_at_least("iters", iters, 1)
  if not lr > 0:
    bad(f"lr must be > 0, got {lr!r}")
  integer_at_least("channels", channels, 1)
  integer_at_least("scales", scales, 1)
  if skip_channels is not None and (int(skip_channels) != skip_channels
                                    or skip_channels < 0):
    bad(f"skip_channels must be an integer >= 0 or None, got "
        f"{skip_channels!r}")
  if not reg_noise_std >= 0:
    bad(f"reg_noise_std must be >= 0, got {reg_noise_std!r}")
  if not input_scale > 0:
    bad(f"input_scale must be > 0, got {input_scale!r}")
  integer_at_least("plateau_window", plateau_window, 1)
  integer_at_least("refresh_every", refresh_every, 1)


def auto_ad(scene_or_cube, iters: int = DEFAULT_ITERS, seed: int = 0,
            lr: float = DEFAULT_LR, channels: int = DEFAULT_CHANNELS,
            scales: int = DEFAULT_SCALES, plateau: float | None = DEFAULT_PLATEAU,
            progress: Callable[[int, float], Any] | None = None,
            return_info: bool = False, *, skip_channels: int | None = None,
            reg_noise_std: float = DEFAULT_REG_NOISE_STD,
            input_scale: float = DEFAULT_INPUT_SCALE,
            plateau_window: int = DEFAULT_PLATEAU_WINDOW,
            refresh_every: int = DEFAULT_REFRESH_EVERY,
            progress_every: int = 100):
  """Runs Auto-AD on one scene and returns the anomaly map.

  Args:
    scene_or_cube: a ``lrrjax.io.Scene`` (uses ``.cube``) or an (H, W, B)
      array. Any H, W >= 2 (no multiple-of-32 requirement).
    iters: maximum number of Adam steps (official: 1001).
    seed: seeds parameters, the fixed input noise and the per-step noise.
    lr: Adam learning rate (official 0.01; optax/torch default betas, eps).
    channels: channels of every down/up conv (official 128).
    scales: number of encoder-decoder scales (official 5).
    plateau: early-stop threshold on the mean absolute loss change over
      ``plateau_window`` steps (official 1.5e-5); None or 0 disables it.
    progress: optional ``progress(iteration, loss)`` callback, called every
      ``progress_every`` iterations (1-based count) and after the last one.
    return_info: also return a dict with ``iterations`` (steps run),
      ``stopped_early``, ``final_loss``, ``loss_history`` (np.float32, one
      per step), ``seconds`` (wall time of the loop incl. compile),
      ``n_params``, ``weights`` ((H, W) pixel weights of the last step).
    skip_channels: channels of the 1x1 skip branches; None = ``channels``
      (official code passes ``num_channels_skip=[128]*5``; the DIP default is 4).
    reg_noise_std: std of the Gaussian input perturbation (official 0.1).
    input_scale: fixed input is ``U[0, 1) * input_scale`` (official 0.1).
    plateau_window: see :func:`plateau_stop` (official 50).
    refresh_every: weight refresh period (official 100).
    progress_every: callback period in iterations.

  Returns:
    Scores (H, W) float32 numpy: per-pixel l2 error ``||x - x_hat||_2`` of the
    last step's reconstruction; or ``(scores, info)`` if ``return_info``.

  Raises:
    SceneError: the cube is not a finite, non-constant (H, W, B) array.
    ConfigError: a parameter is out of range.
  """
  cube, _ = _as_cube(scene_or_cube)
  _check_config(iters, lr, channels, scales, skip_channels, reg_noise_std,
                input_scale, plateau_window, refresh_every)
  iters, channels, scales = int(iters), int(channels), int(scales)
  h, w, b = cube.shape
  x = jnp.asarray(minmax_global(cube))[None]          # (1, H, W, B)

  key = jax.random.key(seed)
  k_param, k_input, k_noise = jax.random.split(key, 3)
  model = SkipNet(b, b, channels, scales, skip_channels,
                  rngs=nnx.Rngs(params=k_param))
  optimizer = nnx.Optimizer(model, _adam(float(lr)), wrt=nnx.Param)
  z0 = input_scale * jax.random.uniform(k_input, (1, h, w, b), jnp.float32)
  w_hw = jnp.ones((h, w), jnp.float32)
  noise_std = jnp.float32(reg_noise_std)

  losses = []          # device scalars; fetched in blocks at check points
  history = np.zeros((0,), np.float32)
  stopped = False
  t0 = time.perf_counter()
  out = None
  step_fn = nnx.cached_partial(_train_step, model, optimizer)
  for j in range(iters):
    refresh = jnp.bool_(j > 0 and j % refresh_every == 0)
    out = step_fn(z0, x, w_hw, refresh, k_noise, jnp.uint32(j), noise_std)
    w_hw = out.w_hw
    losses.append(out.loss)
    last = j == iters - 1
    check = (plateau is not None and plateau > 0 and j >= plateau_window
             and j % plateau_window == 0)
    report = progress is not None and ((j + 1) % progress_every == 0 or last)
    if check or report or last:
      history = np.concatenate(
          [history, np.asarray(jax.device_get(losses), np.float32)])
      losses = []
      if check and plateau_stop(history, j, plateau, plateau_window):
        stopped = True
      if progress is not None and (report or stopped):
        progress(j + 1, float(history[j]))
      if stopped:
        break
  scores = np.sqrt(np.asarray(out.r_hw, np.float64)).astype(np.float32)
  if not return_info:
    return scores
  info = dict(iterations=len(history), stopped_early=stopped,
              final_loss=float(history[-1]), loss_history=history,
              seconds=time.perf_counter() - t0, n_params=count_params(model),
              weights=np.asarray(w_hw, np.float32))
  return scores, info


def method_fn(scene, iters: int = DEFAULT_ITERS, seed: int = 0,
              lr: float = DEFAULT_LR, channels: int = DEFAULT_CHANNELS,
              scales: int = DEFAULT_SCALES,
              plateau: float | None = DEFAULT_PLATEAU,
              skip_channels: int | None = None,
              reg_noise_std: float = DEFAULT_REG_NOISE_STD,
              input_scale: float = DEFAULT_INPUT_SCALE,
              plateau_window: int = DEFAULT_PLATEAU_WINDOW,
              refresh_every: int = DEFAULT_REFRESH_EVERY) -> np.ndarray:
  """Registry entry point (method ``auto-ad``): :func:`auto_ad` scores (H, W).

  The explicit signature lets ``lrrjax.detectors.run_method`` reject unknown
  parameter names with a ConfigError.
  """
  return auto_ad(scene, iters=iters, seed=seed, lr=lr, channels=channels,
                 scales=scales, plateau=plateau, skip_channels=skip_channels,
                 reg_noise_std=reg_noise_std, input_scale=input_scale,
                 plateau_window=plateau_window, refresh_every=refresh_every)
