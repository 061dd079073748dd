"""What the cross-scene training parts share: the parameter-file format tag,
the network and scene context from a config, band padding, donor pixels, the
devices' mesh."""

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh

from lrrjax.lrr import general

PRETRAINED_FORMAT = "lrrjax-general-lrrnet-plus"
PRETRAINED_VERSION = 6  # 2: no plain ring contrasts (7 head features), issue #9;
                        # 3: area top-hats (10 features), distractor implants, issue #8
                        # (4, guided-filtered area top-hats, 13 features, was withdrawn:
                        # a version-4 file is refused like any other);
                        # 5: principal-component area top-hats (13 features);
                        # 6: their CFAR-normalised copies (16 features)
SCENES_AXIS = "scenes"


def model_from_config(cfg: ml_collections.ConfigDict) -> general.GeneralLRRNet:
  n = cfg.net
  return general.GeneralLRRNet(stages=n.stages, lam=n.lam, mu0_scale=n.mu0_scale,
                               rho=n.rho, mu_max=n.mu_max, eta=n.dict_step,
                               gamma0=n.gamma0, outlier_k=n.outlier_k)


def context_kwargs(cfg) -> dict[str, Any]:
  n = cfg.net
  return {"gamma0": n.gamma0, "n_clusters": n.n_clusters, "per_cluster": n.per_cluster,
          "n_sample": n.n_sample, "seed": cfg.seed}


def pad_bands(x_bn: np.ndarray, bands: int) -> np.ndarray:
  """Zero-pads (B, N) to (bands, N)."""
  return np.pad(x_bn, ((0, bands - x_bn.shape[0]), (0, 0)))


def donor_pixels(cubes: Sequence[np.ndarray], rng: np.random.Generator,
                 n: int = 512) -> list[np.ndarray]:
  """``n`` random pixels (n, B_j) of every cube j: the donor spectra of implants."""
  out = []
  for cube in cubes:
    flat = cube.reshape(-1, cube.shape[2])
    out.append(flat[rng.choice(flat.shape[0], min(n, flat.shape[0]), replace=False)])
  return out


def scenes_mesh() -> Mesh:
  """A 1-D mesh over all devices whose axis splits crops / implanted versions."""
  return Mesh(np.asarray(jax.devices()), (SCENES_AXIS,))


def put_batch(arrays, sharding_):
  if sharding_ is None:
    return tuple(jnp.asarray(a) for a in arrays)
  return tuple(jax.make_array_from_callback(a.shape, sharding_, lambda idx, a=a: a[idx])
               for a in arrays)
