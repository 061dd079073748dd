"""Auto-AD: autonomous hyperspectral anomaly detection with a skip autoencoder.

S. Wang, X. Wang, L. Zhang, Y. Zhong, "Auto-AD: Autonomous Hyperspectral
Anomaly Detection Network Based on Fully Convolutional Autoencoder", IEEE TGRS
60:5503314, 2021 (official PyTorch code: github.com/RSIDEA-WHU2020/Auto-AD,
``AD_main_loop.py`` and ``models/skip.py``, itself the deep-image-prior skip
network of Ulyanov et al.).

Method (one scene, no training data). With the cube ``x`` (H, W, B) min-max
normalised to [0, 1] over all values, a fixed input ``z0 ~ U[0, 1) * 0.1`` of
shape (H, W, B) and a skip encoder-decoder ``f_theta``, iteration ``j`` does

  z_j     = z0 + sigma * n_j,  n_j ~ N(0, I)              (fresh every step)
  y_j     = f_theta(z_j)                                  (H, W, B) in (0, 1)
  r_j(p)  = sum_b (y_j(p, b) - x(p, b))^2                 (per pixel)
  w       = (max r_j - r_j) / (max r_j - min r_j)         if j % 100 == 0, j > 0
  L_j     = mean_{p, b} (w(p) y_j(p, b) - w(p) x(p, b))^2
  theta  <- Adam(lr).step(grad L_j)

with ``w = 1`` until the first refresh. Pixels the background model cannot
reconstruct (anomalies) get small weight, so the network stops fitting them.
Training stops after ``iters`` steps or earlier when the loss plateaus (see
:func:`plateau_stop`). The detection map is ``sqrt(r)`` of the last iteration,
the per-pixel l2 reconstruction error.

Design choices and their sources are listed in notes/autoad.md.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from lrrjax.errors import ConfigError, SceneError

DESCRIPTION = (
    "Auto-AD (Wang et al., TGRS 2021): deep-image-prior skip autoencoder fitted "
    "to the scene from random noise with residual-based pixel weights; score = "
    "per-pixel l2 reconstruction error.")

# Defaults of the official code (AD_main_loop.py); see notes/autoad.md.
DEFAULT_ITERS = 1001
DEFAULT_LR = 0.01
DEFAULT_CHANNELS = 128
DEFAULT_SCALES = 5
DEFAULT_INPUT_SCALE = 0.1      # get_noise(..., 'u', var=1/10): U[0,1) * 0.1
DEFAULT_REG_NOISE_STD = 0.1    # reg_noise_std = 0.1
DEFAULT_PLATEAU = 1.5e-5       # thres = 0.000015
DEFAULT_PLATEAU_WINDOW = 50    # loss_np has 50 slots, checked when j % 50 == 0
DEFAULT_REFRESH_EVERY = 100    # weighting block runs when j % 100 == 0, j != 0
LEAKY_SLOPE = 0.2              # DIP act('LeakyReLU') = nn.LeakyReLU(0.2)
BN_EPS = 1e-5                  # torch.nn.BatchNorm2d default


# --------------------------------------------------------------------------
# Pure pieces (tested against numpy oracles).
# --------------------------------------------------------------------------


def pixel_residual(out_hwb: jax.Array, x_hwb: jax.Array) -> jax.Array:
  """Squared l2 reconstruction error per pixel.

  Args:
    out_hwb: network output, (..., H, W, B).
    x_hwb: target cube, same shape.

  Returns:
    ``r_hw = sum_b (out - x)^2``, shape (..., H, W).
  """
  return jnp.sum(jnp.square(out_hwb - x_hwb), axis=-1)


def residual_weights(r_hw: jax.Array) -> jax.Array:
  """Auto-AD pixel weights from the per-pixel squared residual.

  ``w = (max r - r) / (max r - min r)``: the worst-reconstructed pixel gets 0,
  the best gets 1, linear in between (official code: ``r_max - residual``
  followed by min-max normalisation; ``min(r_max - r) = 0`` and
  ``max(r_max - r) = r_max - r_min``). When all residuals are equal the
  official code divides 0 by 0; here every weight is 1 instead.

  Args:
    r_hw: per-pixel squared residual, any shape; reduced over all axes.

  Returns:
    Weights in [0, 1], same shape and dtype as ``r_hw``.
  """
  r_max = jnp.max(r_hw)
  span = r_max - jnp.min(r_hw)
  safe = jnp.where(span > 0, span, 1.0)
  return jnp.where(span > 0, (r_max - r_hw) / safe, jnp.ones_like(r_hw))


def plateau_stop(losses, j: int, threshold: float,
                 window: int = DEFAULT_PLATEAU_WINDOW) -> bool:
  """Auto-AD's early-stop rule, as a pure function of the loss history.

  The official loop stores ``|L_k - L_{k-1}|`` in a ring buffer of ``window``
  slots and, when ``j % window == 0``, stops if the buffer mean is below
  ``threshold``. At such a ``j >= window`` the buffer holds exactly the
  differences for ``k = j - window + 1 .. j``, so the rule is

    stop(j)  <=>  j % window == 0  and  j >= window  and
                  mean_{k=j-window+1..j} |L_k - L_{k-1}| < threshold.

  (The official buffer is zero-filled and first checked at ``j = window``, when
  it is already full, so no partial window is ever averaged.)

  Args:
    losses: sequence of the losses ``L_0 .. L_m`` (``m >= j``), one per step.
    j: zero-based index of the iteration just run.
    threshold: plateau threshold; ``None`` or ``<= 0`` disables the rule.
    window: number of consecutive differences averaged (and check period).

  Returns:
    True if training stops after iteration ``j``.
  """
  if threshold is None or threshold <= 0 or window < 1:
    return False
  if j < window or j % window != 0:
    return False
  seg = np.asarray(losses[j - window:j + 1], dtype=np.float64)
  return bool(np.mean(np.abs(np.diff(seg))) < threshold)


def minmax_global(cube_hwb: np.ndarray) -> np.ndarray:
  """``(x - min x) / (max x - min x)`` over all values, float32."""
  x = np.asarray(cube_hwb, dtype=np.float64)
  lo, hi = float(x.min()), float(x.max())
  return ((x - lo) / (hi - lo)).astype(np.float32)


# --------------------------------------------------------------------------
# Network: the deep-image-prior ``skip`` encoder-decoder in Flax NNX.
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TorchBiasInit:
  """PyTorch's default conv bias init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

  A frozen dataclass (equal by value, hashable) rather than a closure: NNX keeps
  initialisers in the static graph definition, so a fresh closure per model
  would force ``nnx.jit`` to recompile the train step for every call.
  """
  fan_in: int

  def __call__(self, key, shape, dtype=jnp.float32):
    bound = 1.0 / math.sqrt(self.fan_in)
    return jax.random.uniform(key, shape, dtype, -bound, bound)


@functools.lru_cache(maxsize=32)
def _adam(lr: float) -> optax.GradientTransformation:
  """One optax.adam object per learning rate (static in the NNX graph, so
  reusing it lets ``nnx.jit`` reuse the compiled step across calls)."""
  return optax.adam(lr)


# PyTorch's default conv weight init (kaiming_uniform, a=sqrt(5)) is
# U(-1/sqrt(fan_in), 1/sqrt(fan_in)) = variance_scaling(1/3, fan_in, uniform).
_torch_kernel_init = jax.nn.initializers.variance_scaling(
    1.0 / 3.0, "fan_in", "uniform")


class ReflectConv(nnx.Module):
  """``k x k`` convolution with reflection padding ``(k-1)//2`` (DIP ``conv``).

  With stride 2 the output has ``ceil(n / 2)`` rows/columns.
  """

  def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1, *,
               rngs: nnx.Rngs):
    self.pad = (k - 1) // 2
    self.conv = nnx.Conv(
        c_in, c_out, (k, k), strides=stride, padding="VALID",
        kernel_init=_torch_kernel_init,
        bias_init=TorchBiasInit(c_in * k * k), rngs=rngs)

  def __call__(self, x):
    p = self.pad
    if p:
      x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
    return self.conv(x)


def _bn(c: int, rngs: nnx.Rngs) -> nnx.BatchNorm:
  # Always batch statistics: the official code never calls net.eval().
  return nnx.BatchNorm(c, use_running_average=False, epsilon=BN_EPS,
                       use_fast_variance=False, rngs=rngs)


class ConvBnAct(nnx.Module):
  """ReflectConv -> BatchNorm -> LeakyReLU(0.2)."""

  def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1, *,
               rngs: nnx.Rngs):
    self.conv = ReflectConv(c_in, c_out, k, stride, rngs=rngs)
    self.bn = _bn(c_out, rngs)

  def __call__(self, x):
    return jax.nn.leaky_relu(self.bn(self.conv(x)), LEAKY_SLOPE)


def _crop_to(x, h: int, w: int):
  """DIP ``Concat`` centre crop: offset ``(n - target) // 2`` per axis."""
  dh = (x.shape[1] - h) // 2
  dw = (x.shape[2] - w) // 2
  return x[:, dh:dh + h, dw:dw + w, :]


def upsample_nearest2(x):
  """Nearest-neighbour x2 upsampling of (N, H, W, C)."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class SkipLevel(nnx.Module):
  """One scale of the DIP skip network (recursive: holds the deeper levels).

  ``y = Act(BN(Conv1x1(Act(BN(Conv3x3(BN(concat[skip(x), up(deeper(x))])))))))``
  with ``skip(x) = Act(BN(Conv1x1(x)))`` and
  ``deeper(x) = next_level(Act(BN(Conv3x3(Act(BN(Conv3x3_stride2(x)))))))``.
  """

  def __init__(self, c_in: int, down: list[int], up: list[int],
               skip: list[int], *, rngs: nnx.Rngs):
    d, u, s = down[0], up[0], skip[0]
    deepest = len(down) == 1
    self.skip = ConvBnAct(c_in, s, 1, rngs=rngs) if s > 0 else None
    self.down1 = ConvBnAct(c_in, d, 3, 2, rngs=rngs)
    self.down2 = ConvBnAct(d, d, 3, rngs=rngs)
    self.inner = None if deepest else SkipLevel(
        d, down[1:], up[1:], skip[1:], rngs=rngs)
    k = d if deepest else up[1]
    self.bn_cat = _bn(s + k, rngs)
    self.up1 = ConvBnAct(s + k, u, 3, rngs=rngs)
    self.up2 = ConvBnAct(u, u, 1, rngs=rngs)

  def __call__(self, x):
    h, w = x.shape[1], x.shape[2]
    y = self.down2(self.down1(x))
    if self.inner is not None:
      y = self.inner(y)
    y = _crop_to(upsample_nearest2(y), h, w)
    if self.skip is not None:
      y = jnp.concatenate([self.skip(x), y], axis=-1)
    return self.up2(self.up1(self.bn_cat(y)))


class SkipNet(nnx.Module):
  """DIP ``skip(c_in, c_out, [ch]*scales, [ch]*scales, [skip_ch]*scales)``.

  Stride-2 3x3 conv down, nearest x2 up, 1x1 skip branches, BatchNorm,
  LeakyReLU(0.2), reflection padding, and a final 1x1 conv + sigmoid. Any
  H, W works: stride-2 convs give ``ceil(n/2)`` and the upsampled branch is
  cropped back to the skip branch's size (as DIP's ``Concat`` does).
  """

  def __init__(self, c_in: int, c_out: int, channels: int = DEFAULT_CHANNELS,
               scales: int = DEFAULT_SCALES, skip_channels: int | None = None,
               *, rngs: nnx.Rngs):
    s = channels if skip_channels is None else skip_channels
    self.body = SkipLevel(c_in, [channels] * scales, [channels] * scales,
                          [s] * scales, rngs=rngs)
    self.head = ReflectConv(channels, c_out, 1, rngs=rngs)

  def __call__(self, x):
    return jax.nn.sigmoid(self.head(self.body(x)))


def count_params(model: nnx.Module) -> int:
  """Number of trainable scalars (``nnx.Param``) in ``model``."""
  state = nnx.state(model, nnx.Param)
  return int(sum(np.prod(p.shape) for p in jax.tree.leaves(state)))


# --------------------------------------------------------------------------
# Training.
# --------------------------------------------------------------------------


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


def _register() -> None:
  """Registers ``auto-ad`` with the detector registry (which imports this
  module lazily; the registry does not import us at its own import time, so
  there is no cycle)."""
  from lrrjax import detectors
  detectors.register(detectors.MethodSpec("auto-ad", method_fn, DESCRIPTION))


_register()
