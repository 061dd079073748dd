"""Phase 1 of cross-scene training: the score head fitted on the features of
implanted whole scenes (the feature pool, cached in the workdir), full-batch
Adam on the pairwise ranking loss."""

import functools
import json
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from lrrjax.lrr import general, implants, score_head
from lrrjax.lrr.cross.base import (PRETRAINED_VERSION, SCENES_AXIS, context_kwargs,
                                   donor_pixels, model_from_config, put_batch, scenes_mesh)

class FeaturePool(NamedTuple):
  """Head features of implanted whole scenes (V versions per scene).

  ``phi_pos_vfm``/``phi_neg_vfq``: features at the implanted pixels (padded,
  weights ``posw_vm``) and at ``neg_pixels`` random other pixels. ``scene_v`` is
  the host scene's index, ``donor_v`` the index of the scene that gave the donor
  spectra (-1: mixtures of host pixels only).
  """
  phi_pos_vfm: np.ndarray
  posw_vm: np.ndarray
  phi_neg_vfq: np.ndarray
  scene_v: np.ndarray
  donor_v: np.ndarray


def implanted_versions(cube: np.ndarray, donors: Sequence[np.ndarray | None], seed: int,
                       scene_index: int, distractors=(0, 0)):
  """Yields ``(version, implanted cube, mask)``, one version per donor entry;
  ``distractors``: :attr:`lrrjax.lrr.implants.ImplantSpec.n_distractors`."""
  for v, donor in enumerate(donors):
    rng = np.random.default_rng([seed, 31337, scene_index, v])
    spec = implants.ImplantSpec(p_donor=0.5 if donor is not None else 0.0,
                                n_distractors=tuple(distractors))
    crop, mask, _ = implants.implant(cube, rng, [] if donor is None else [donor], spec)
    yield v, crop, mask


def scene_features(model, cfg, cube_hwb_norm: np.ndarray) -> np.ndarray:
  """Head features (F, N) of a normalised cube under ``model``."""
  h, w, b = cube_hwb_norm.shape
  ctx = general.context_of(cube_hwb_norm.reshape(h * w, b).T, h, w, **context_kwargs(cfg))
  graphdef, state = nnx.split(model)
  return np.asarray(_phi_jit(graphdef, state, ctx, h, w))


def _phi(graphdef, state, ctx, h, w):
  return nnx.merge(graphdef, state)(ctx, h, w).phi_fn


_phi_jit = jax.jit(_phi, static_argnums=(0, 3, 4))


def build_feature_pool(cubes: Sequence[np.ndarray], cfg, model=None,
                       progress=None) -> FeaturePool:
  """Implants every scene ``train.versions_per_scene`` times, the donor spectra
  of version v from the v-th next scene (cyclically; the last version uses host
  mixtures only), and records the head features."""
  model = model_from_config(cfg) if model is None else model
  t = cfg.train
  rng = np.random.default_rng([cfg.seed, 7919])
  donor_px = donor_pixels(cubes, rng)
  max_pos = implants.ImplantSpec().n_max * implants.MAX_PIXELS
  rows = {k: [] for k in FeaturePool._fields}
  n_versions = int(t.versions_per_scene)
  for si, cube in enumerate(cubes):
    ring = [j % len(cubes) for j in range(si + 1, si + len(cubes))]
    others = ring[:max(n_versions - 1, 0)] + [-1]
    donors = [donor_px[j] if j >= 0 else None for j in others]
    for v, implanted, mask in implanted_versions(cube, donors, int(cfg.seed), si,
                                                 tuple(t.get("distractors", (0, 0)))):
      phi = scene_features(model, cfg, implanted)
      pos = np.flatnonzero(mask.ravel())[:max_pos]
      neg = rng.choice(np.flatnonzero(~mask.ravel()), int(t.neg_pixels), replace=False)
      rows["phi_pos_vfm"].append(np.pad(phi[:, pos], ((0, 0), (0, max_pos - pos.size))))
      rows["posw_vm"].append(np.pad(np.ones(pos.size, np.float32), (0, max_pos - pos.size)))
      rows["phi_neg_vfq"].append(phi[:, neg])
      rows["scene_v"].append(si)
      rows["donor_v"].append(others[v])
    if progress is not None:
      progress(f"features: scene {si + 1}/{len(cubes)} ({len(donors)} implanted versions)")
  return FeaturePool(*(np.asarray(rows[k], np.int32 if k in ("scene_v", "donor_v")
                                  else np.float32) for k in FeaturePool._fields))


def fold_mask(pool: FeaturePool, held_out: Sequence[int]) -> np.ndarray:
  """Versions usable when ``held_out`` scenes are unseen: neither host nor donor."""
  bad = np.isin(pool.scene_v, held_out) | np.isin(pool.donor_v, held_out)
  return ~bad


def _head_loss(hp, pool_arrays, top_k: int = 0, top_weight: float = 0.0):
  """Pairwise ranking loss of implanted (``pos``, weights ``posw``) against
  background (``neg``) pixels of each version: ``mean softplus(z_q - z_p)``
  over all pairs (a full-AUC surrogate). With ``top_k > 0`` and ``top_weight
  = w`` it is ``(1 - w)`` times that plus ``w`` times the same mean over only
  the ``top_k`` highest-scoring background pixels of each version (a partial-AUC
  surrogate: the low false-alarm end of the ROC)."""
  pos, posw, neg = pool_arrays
  zp = jax.vmap(general.head, in_axes=(None, 0))(hp, pos)   # (V, M)
  zq = jax.vmap(general.head, in_axes=(None, 0))(hp, neg)   # (V, Q)

  def ranked(zq_vq):
    per_pos = jnp.mean(jax.nn.softplus(zq_vq[:, None, :] - zp[:, :, None]), axis=2)  # (V, M)
    return jnp.sum(per_pos * posw) / jnp.maximum(jnp.sum(posw), 1.0)

  loss = ranked(zq)
  if top_k > 0 and top_weight > 0:
    loss = (1.0 - top_weight) * loss + top_weight * ranked(jax.lax.top_k(zq, top_k)[0])
  return loss


@functools.partial(jax.jit, static_argnames=("steps", "lr", "top_k", "top_weight"))
def _fit_head(hp, pos, posw, neg, steps, lr, top_k=0, top_weight=0.0):
  tx = optax.adam(lr)
  state = tx.init(hp)
  # (full batch: the whole pool of the fold is one array, so each step is exact)

  def body(carry, _):
    hp, state = carry
    loss, g = jax.value_and_grad(_head_loss)(hp, (pos, posw, neg), top_k, top_weight)
    upd, state = tx.update(g, state, hp)
    return (optax.apply_updates(hp, upd), state), loss

  (hp, _), losses = jax.lax.scan(body, (hp, state), None, length=steps)
  return hp, losses


def head_loss_options(train_cfg) -> dict[str, float]:
  """The :func:`train_head` loss options of a config's ``train`` section
  (``head_neg_top``, ``head_neg_top_weight``); a parameter file written before
  they existed has neither: the full-AUC loss."""
  return {"neg_top": float(train_cfg.get("head_neg_top", 1.0)),
          "neg_top_weight": float(train_cfg.get("head_neg_top_weight", 0.0))}


def train_head(model: general.GeneralLRRNet, pool: FeaturePool, use: np.ndarray,
               steps: int = 500, lr: float = 0.02, data_parallel: bool = False,
               neg_top: float = 1.0, neg_top_weight: float = 0.0) -> np.ndarray:
  """Fits the score head of ``model`` (in place) on the pool versions ``use``;
  returns the loss curve. Full-batch Adam on the pairwise ranking loss
  (:func:`_head_loss`; ``neg_top < 1`` with ``neg_top_weight > 0``: that share
  of each version's background sample, its highest scores, also ranked against
  the implants with weight ``neg_top_weight``).

  ``data_parallel``: the versions are split over all devices (zero-weight
  padding to a multiple of the device count); GSPMD reduces the loss.
  """
  hp = model.head_params()
  idx = np.flatnonzero(use)
  arrays = [pool.phi_pos_vfm[idx], pool.posw_vm[idx], pool.phi_neg_vfq[idx]]
  if data_parallel:
    mesh = scenes_mesh()
    pad = (-len(idx)) % mesh.devices.size
    arrays = [np.concatenate([a, np.zeros((pad,) + a.shape[1:], a.dtype)]) for a in arrays]
    arrays = list(put_batch(arrays, NamedSharding(mesh, PartitionSpec(SCENES_AXIS))))
    hp = jax.device_put(hp, NamedSharding(mesh, PartitionSpec()))
  else:
    arrays = [jnp.asarray(a) for a in arrays]
  q = pool.phi_neg_vfq.shape[-1]
  top_k = max(1, int(round(float(neg_top) * q))) if neg_top < 1 and neg_top_weight > 0 else 0
  hp, losses = _fit_head(hp, *arrays, int(steps), float(lr), top_k,
                         float(neg_top_weight) if top_k else 0.0)
  hp = jax.tree.map(lambda a: jnp.asarray(jax.device_get(a)), hp)
  model.a_f[...] = hp.a_f
  return np.asarray(losses)


def _pool_key(cfg, scene_names) -> str:
  return json.dumps({"config": cfg.to_dict(), "scenes": list(scene_names),
                     "version": PRETRAINED_VERSION}, sort_keys=True)


def load_feature_pool(path, cfg, scene_names) -> FeaturePool | None:
  if path is None or not path.exists():
    return None
  with np.load(path, allow_pickle=False) as z:
    if str(z["key"]) != _pool_key(_pool_cfg(cfg), scene_names):
      return None
    return FeaturePool(*(z[k] for k in FeaturePool._fields))


def _pool_cfg(cfg):
  """The part of the config (and of the code: the head's features) the feature
  pool depends on."""
  sh = score_head
  feats = {"version": PRETRAINED_VERSION, "n": sh.N_FEATURES, "rings": list(sh.RINGS),
           "white_rings": list(sh.WHITE_RINGS), "tophats": list(sh.TOPHATS),
           "areas": list(sh.AREAS), "levels": [min(sh.AREA_LEVELS), max(sh.AREA_LEVELS),
                                               len(sh.AREA_LEVELS)],
           "guided": [sh.GUIDED_R, sh.GUIDED_EPS], "pc": sh.PC_COMPONENTS,
           "pc_cfar": list(sh.PC_CFAR or ()),
           "pc_levels": [min(sh.PC_LEVELS), max(sh.PC_LEVELS), len(sh.PC_LEVELS)]}
  c = ml_collections.ConfigDict({"seed": cfg.seed, "net": cfg.net.to_dict(),
                                 "neg_pixels": cfg.train.neg_pixels,
                                 "distractors": list(cfg.train.get("distractors", (0, 0))),
                                 "features": feats})
  return c


def save_feature_pool(path, pool: FeaturePool, cfg, scene_names) -> None:
  tmp = path.with_name(path.name + ".tmp.npz")
  np.savez(tmp, key=np.asarray(_pool_key(_pool_cfg(cfg), scene_names)), **pool._asdict())
  tmp.replace(path)
