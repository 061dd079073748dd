"""GT-HAD network in Flax NNX (official ``dnnmethods/GT-HAD/net.py``).

One block ``x`` (k, k, B), k = patch_size * patch_stride, goes through

  e   = Conv3x3_{B -> C}(x)                   zero padding 1
  u   = LN_1(e)                               over C, eps 1e-5
  u_n = the k x k block cut into N = patch_stride^2 patches of
        P = patch_size^2 pixels, u_n in R^{P x C}
  q_n = vec(u_n W_q + b_q)                    W_q: C -> C/2, q_n in R^{P C/2}
  A   = softmax(q q^T / sqrt(P C / 2) + M)    (N, N)
  M   = -100 I  (AFB, gate 0)  or  0  (BFB, gate 1)
  a_n = sum_m A_nm u_m                        values are u itself (no projection)
  y   = a + MLP(LN_2(a))                      MLP: C -> r C -> C, exact GELU
  out = Conv3x3_{C -> B}(y)                   zero padding 1

Note the official block has no residual around the attention. The gate of a
block comes from the content-matching search (:func:`blocks.match_gates`).
Initialisation follows PyTorch's defaults (uniform ``+-1/sqrt(fan_in)`` for
conv and linear weights and biases, LayerNorm 1/0) so that training starts from
the same distribution as the official code.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx

MASK_VALUE = -100.0   # net.py: self.mask[self.mask == 1] = -100.0
LN_EPS = 1e-5         # torch.nn.LayerNorm default


@dataclasses.dataclass(frozen=True)
class TorchUniform:
  """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default Linear/Conv init
  of weights (kaiming_uniform with a = sqrt(5)) and biases. A frozen dataclass
  so the NNX graph definition is hashable and equal across models."""
  fan_in: int

  def __call__(self, key, shape, dtype=jnp.float32):
    bound = 1.0 / math.sqrt(self.fan_in)
    return jax.random.uniform(key, shape, dtype, -bound, bound)


def _linear(c_in: int, c_out: int, rngs: nnx.Rngs) -> nnx.Linear:
  init = TorchUniform(c_in)
  return nnx.Linear(c_in, c_out, kernel_init=init, bias_init=init, rngs=rngs)


def _conv3(c_in: int, c_out: int, rngs: nnx.Rngs) -> nnx.Conv:
  init = TorchUniform(c_in * 9)
  return nnx.Conv(c_in, c_out, (3, 3), padding=((1, 1), (1, 1)),
                  kernel_init=init, bias_init=init, rngs=rngs)


def to_patches(x_bkkc: jax.Array, patch_size: int, patch_stride: int) -> jax.Array:
  """(Bt, k, k, C) -> (Bt, N, P, C): patch n = row-major over the
  patch_stride x patch_stride grid, pixel p = row-major inside the patch."""
  bt, c = x_bkkc.shape[0], x_bkkc.shape[-1]
  s, p = patch_stride, patch_size
  x = x_bkkc.reshape(bt, s, p, s, p, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(bt, s * s, p * p, c)


def from_patches(x_bnpc: jax.Array, patch_size: int, patch_stride: int) -> jax.Array:
  """Inverse of :func:`to_patches`: (Bt, N, P, C) -> (Bt, k, k, C)."""
  bt, c = x_bnpc.shape[0], x_bnpc.shape[-1]
  s, p = patch_stride, patch_size
  x = x_bnpc.reshape(bt, s, s, p, p, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(bt, s * p, s * p, c)


class GatedAttention(nnx.Module):
  """Patch attention with the gated diagonal mask (official ``Attention``)."""

  def __init__(self, dim: int, patch_size: int, patch_stride: int, *,
               rngs: nnx.Rngs):
    self.patch_size, self.patch_stride = patch_size, patch_stride
    self.fc = _linear(dim, dim // 2, rngs)
    self.scale = float((dim // 2 * patch_size ** 2) ** -0.5)

  def __call__(self, u_bkkc: jax.Array, gate_b: jax.Array) -> jax.Array:
    p, s = self.patch_size, self.patch_stride
    u_bnpc = to_patches(u_bkkc, p, s)
    bt, n = u_bnpc.shape[:2]
    q_bnd = self.fc(u_bnpc).reshape(bt, n, -1)
    logits = jnp.einsum("bnd,bmd->bnm", q_bnd, q_bnd) * self.scale
    mask_bnn = MASK_VALUE * jnp.eye(n, dtype=logits.dtype)[None] * (
        1.0 - gate_b)[:, None, None]
    attn = jax.nn.softmax(logits + mask_bnn, axis=-1)
    a_bnpc = jnp.einsum("bnm,bmpc->bnpc", attn, u_bnpc)
    return from_patches(a_bnpc, p, s)


class GatedTransformerBlock(nnx.Module):
  """LN -> gated attention -> (+ MLP(LN)) (official ``TransformerBlock``)."""

  def __init__(self, dim: int, patch_size: int, patch_stride: int,
               mlp_ratio: float, *, rngs: nnx.Rngs):
    self.norm1 = nnx.LayerNorm(dim, epsilon=LN_EPS, use_fast_variance=False,
                               rngs=rngs)
    self.attn = GatedAttention(dim, patch_size, patch_stride, rngs=rngs)
    self.norm2 = nnx.LayerNorm(dim, epsilon=LN_EPS, use_fast_variance=False,
                               rngs=rngs)
    hidden = int(dim * mlp_ratio)
    self.fc1 = _linear(dim, hidden, rngs)
    self.fc2 = _linear(hidden, dim, rngs)

  def __call__(self, x_bkkc: jax.Array, gate_b: jax.Array) -> jax.Array:
    a = self.attn(self.norm1(x_bkkc), gate_b)
    h = jax.nn.gelu(self.fc1(self.norm2(a)), approximate=False)
    return a + self.fc2(h)


class GTNet(nnx.Module):
  """Conv head -> one gated transformer block -> conv tail (official ``Net``)."""

  def __init__(self, bands: int, embed_dim: int, patch_size: int,
               patch_stride: int, mlp_ratio: float, *, rngs: nnx.Rngs):
    self.head = _conv3(bands, embed_dim, rngs)
    self.block = GatedTransformerBlock(embed_dim, patch_size, patch_stride,
                                       mlp_ratio, rngs=rngs)
    self.tail = _conv3(embed_dim, bands, rngs)

  def __call__(self, x_bkkb: jax.Array, gate_b: jax.Array) -> jax.Array:
    """(Bt, k, k, B) blocks and (Bt,) gates -> (Bt, k, k, B) reconstruction."""
    return self.tail(self.block(self.head(x_bkkb), gate_b))
