"""Pixel-parallel LRR-Net+ inference with JAX's own sharding.

Every LRR stage is column-wise (one column per pixel) except a few reductions
over pixels (the K x K and B x B Gram matrices, the median/MAD of the robust atom
mask). Sharding X (B x N) along N over a device mesh therefore lets GSPMD
partition the jitted network and insert the all-reduces itself; nothing here
schedules work by hand. Multi-host: call ``jax.distributed.initialize()`` first
(``experiments/main.py --distributed``) and the mesh spans every process's
devices.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

PIXELS = "pixels"


def pixel_mesh(devices=None) -> Mesh:
  """A 1-D mesh named ``pixels`` over ``devices`` (default: all devices)."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (PIXELS,))


def shard_pixels(x_bn, mesh: Mesh | None = None) -> jax.Array:
  """Places ``x_bn`` (B, N) on ``mesh`` split along pixels (N divisible by the mesh size)."""
  mesh = pixel_mesh() if mesh is None else mesh
  n_dev = mesh.devices.size
  if np.shape(x_bn)[1] % n_dev:
    from lrrjax.errors import ConfigError  # pylint: disable=import-outside-toplevel
    raise ConfigError(f"{np.shape(x_bn)[1]} pixels cannot be split evenly over {n_dev} devices")
  return jax.device_put(x_bn, NamedSharding(mesh, PartitionSpec(None, PIXELS)))
