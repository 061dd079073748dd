"""Pixel-parallel LRR-Net+ training and inference with JAX's own sharding.

Every LRR stage is column-wise (one column per pixel) except a few reductions
over pixels (the K x K and B x B Gram matrices, the median/MAD of the robust atom
mask). Sharding X (B x N) along N over a device mesh therefore lets GSPMD
partition the jitted network and insert the all-reduces itself; nothing here
schedules work by hand. Training (``train.data_parallel``) is data-parallel:
each step's pixel batch and the teacher's S are split along pixels, the
parameters and optimiser state are replicated, and the gradient all-reduce is
GSPMD's. Multi-host: call ``jax.distributed.initialize()`` first
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


def pixel_sharding(mesh: Mesh) -> NamedSharding:
  """(B, N) arrays split along N (pixels) over ``mesh``."""
  return NamedSharding(mesh, PartitionSpec(None, PIXELS))


def replicated(mesh: Mesh) -> NamedSharding:
  """Every device holds the whole array (parameters, optimiser state)."""
  return NamedSharding(mesh, PartitionSpec())


def check_divisible(n_pixels: int, mesh: Mesh, what: str = "pixels") -> None:
  """Raises ``ConfigError`` unless ``n_pixels`` splits evenly over the mesh."""
  n_dev = mesh.devices.size
  if n_pixels % n_dev:
    from lrrjax.errors import ConfigError  # pylint: disable=import-outside-toplevel
    raise ConfigError(f"{n_pixels} {what} cannot be split evenly over {n_dev} devices")


def shard_pixels(x_bn, mesh: Mesh | None = None) -> jax.Array:
  """Places ``x_bn`` (B, N) on ``mesh`` split along pixels (N divisible by the mesh size).

  Built with ``jax.make_array_from_callback`` from the host copy, so on several
  processes (``jax.distributed``) each one supplies its own devices' shards.
  """
  mesh = pixel_mesh() if mesh is None else mesh
  check_divisible(np.shape(x_bn)[1], mesh)
  if isinstance(x_bn, jax.Array) and not x_bn.is_fully_addressable:
    return jax.device_put(x_bn, pixel_sharding(mesh))
  host = np.asarray(x_bn, np.float32)
  return jax.make_array_from_callback(host.shape, pixel_sharding(mesh), lambda idx: host[idx])
