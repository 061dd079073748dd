"""The deep-image-prior ``skip`` encoder-decoder of Auto-AD in Flax NNX, with
PyTorch's default initialisation."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lrrjax.autoad.defaults import BN_EPS, DEFAULT_CHANNELS, DEFAULT_SCALES, LEAKY_SLOPE


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
