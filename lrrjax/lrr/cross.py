"""Cross-scene training of the generalised LRR-Net+ (:mod:`lrrjax.lrr.general`).

Training signal (no ground truth is read): synthetic targets are implanted into
crops of the training scenes (:mod:`lrrjax.lrr.implants`), and the network is
trained to rank the implanted pixels above the crop's other pixels with the
pairwise logistic AUC surrogate

    L_rank = mean_{p in implants, q in background} softplus(z_q - z_p)

plus ``rec_weight * ||X - D L - S||_F^2 / ||X||_F^2`` (the ADMM constraint).
Each step mixes ``batch_scenes`` crops of different scenes. Crops of different
band counts are zero-padded to a common count: a zero band adds nothing to any
norm, inner product, k-means distance or covariance, and gets band weight 0, so
padding changes no result (tested). The crops' axis is split over devices with
``jax.sharding`` when ``train.data_parallel`` (parameters replicated, GSPMD
all-reduces the gradient; with ``jax.distributed`` the mesh spans every host).
Orbax checkpoints; a killed run resumes to the same result (the batches of each
step are fixed by (seed, step)).
"""

from __future__ import annotations

import functools
import json
import pathlib
import time
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lrrjax import provenance
from lrrjax.errors import ConfigError
from lrrjax.lrr import general, implants
from lrrjax.lrr.train import checkpoint_manager, restore_latest

PRETRAINED_FORMAT = "lrrjax-general-lrrnet-plus"
PRETRAINED_VERSION = 1
SCENES_AXIS = "scenes"


class Pool(NamedTuple):
  """Implanted training crops, stacked (P crops, Bp padded bands, N = crop^2)."""
  x_pbn: np.ndarray      # normalised pixels
  noise_pb: np.ndarray
  atoms_pk: np.ndarray   # int32
  pos_pm: np.ndarray     # int32 implant pixel indices (padded)
  posw_pm: np.ndarray    # 1 for a real entry of pos_pm, 0 for padding
  neg_pq: np.ndarray     # int32 background pixel indices
  scene_p: np.ndarray    # int32 scene index of each crop


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


def build_pool(cubes: Sequence[np.ndarray], cfg, progress=None) -> Pool:
  """Implanted crops of every (normalised, H x W x B) training cube.

  Donor spectra for a scene's implants come from the *other* cubes given.
  Deterministic for ``cfg.seed``.
  """
  t = cfg.train
  c = int(t.crop)
  bands = max(cube.shape[2] for cube in cubes)
  rng = np.random.default_rng([cfg.seed, 7919])
  donors_all = donor_pixels(cubes, rng)
  kw = context_kwargs(cfg)
  # every implanted pixel is a positive (blobs reach MAX_PIXELS; the head pool
  # uses the same bound)
  max_pos = t.get("max_pos", implants.ImplantSpec().n_max * implants.MAX_PIXELS)
  rows = {k: [] for k in Pool._fields}
  for si, cube in enumerate(cubes):
    h, w, _ = cube.shape
    if h < c or w < c:
      raise ConfigError(f"training scene {si} is {h} x {w}, smaller than "
                        f"train.crop={c}")
    donors = [d for j, d in enumerate(donors_all) if j != si]
    for _ in range(int(t.crops_per_scene)):
      r0 = int(rng.integers(0, h - c + 1))
      c0 = int(rng.integers(0, w - c + 1))
      crop, mask, _ = implants.implant(cube[r0:r0 + c, c0:c0 + c], rng, donors)
      x_bn = pad_bands(crop.reshape(c * c, -1).T, bands)
      ctx = general.context_of(x_bn, c, c, **kw)
      pos = np.flatnonzero(mask.ravel())[:max_pos]
      negs = np.flatnonzero(~mask.ravel())
      rows["x_pbn"].append(x_bn)
      rows["noise_pb"].append(np.asarray(ctx.noise_b))
      rows["atoms_pk"].append(np.asarray(ctx.atoms_k))
      rows["pos_pm"].append(np.pad(pos, (0, max_pos - pos.size)))
      rows["posw_pm"].append(np.pad(np.ones(pos.size, np.float32), (0, max_pos - pos.size)))
      rows["neg_pq"].append(rng.choice(negs, int(t.neg_pixels), replace=False))
      rows["scene_p"].append(si)
    if progress is not None:
      progress(f"pool: scene {si + 1}/{len(cubes)} ({int(t.crops_per_scene)} crops)")
  return Pool(*(np.asarray(rows[k], dtype=(np.float32 if k in ("x_pbn", "noise_pb", "posw_pm")
                                           else np.int32)) for k in Pool._fields))


def batch_indices(pool: Pool, step: int, n: int, seed: int) -> np.ndarray:
  """Crops of step ``step``: ``n`` distinct scenes (when possible), one crop each."""
  rng = np.random.default_rng([seed, 104729, step])
  scenes = np.unique(pool.scene_p)
  pick = rng.choice(scenes, n, replace=n > scenes.size)
  out = []
  for s in pick:
    members = np.flatnonzero(pool.scene_p == s)
    out.append(int(members[rng.integers(members.size)]))
  return np.asarray(out)


def rank_loss(z_n, pos_m, posw_m, neg_q):
  """Pairwise logistic AUC surrogate: mean softplus(z_q - z_p) over implant p, background q."""
  zp = z_n[pos_m]
  zq = z_n[neg_q]
  pair = jax.nn.softplus(zq[None, :] - zp[:, None])
  return jnp.sum(jnp.mean(pair, axis=1) * posw_m) / jnp.maximum(jnp.sum(posw_m), 1.0)


def sample_loss(model, x_bn, noise_b, atoms_k, pos_m, posw_m, neg_q, h, w, rec_weight):
  out = model(general.SceneContext(x_bn, noise_b, atoms_k), h, w)
  resid = out.e_bn - out.s_bn
  rec = jnp.sum(resid ** 2) / jnp.maximum(jnp.sum(out.x_bn ** 2), 1e-30)
  rank = rank_loss(out.scores_n, pos_m, posw_m, neg_q)
  return rank + rec_weight * rec, (rank, rec)


def _optimizer(lr: float):
  return optax.apply_if_finite(optax.adam(lr), max_consecutive_errors=10)


@functools.lru_cache(maxsize=8)
def _step_fn(graphdef, crop: int, lr: float, rec_weight: float, sharded: Any):
  """The jitted training step (cached per static structure)."""
  tx = _optimizer(lr)

  def loss_fn(params, batch):
    def one(*arrays):
      m = nnx.merge(graphdef, params)
      return sample_loss(m, *arrays, crop, crop, rec_weight)
    losses, (rank, rec) = jax.vmap(one)(*batch)
    return jnp.mean(losses), (jnp.mean(rank), jnp.mean(rec))

  @jax.jit
  def step(params, opt_state, batch):
    if sharded is not None:
      batch = tuple(jax.lax.with_sharding_constraint(b, sharded) for b in batch)
    (loss, (rank, rec)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch)
    finite = jnp.all(jnp.array([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, rank, rec, finite

  return step


class CrossResult(NamedTuple):
  model: general.GeneralLRRNet
  history: dict[str, list]
  seconds: float


def _put_batch(arrays, sharding_):
  if sharding_ is None:
    return tuple(jnp.asarray(a) for a in arrays)
  return tuple(jax.make_array_from_callback(a.shape, sharding_, lambda idx, a=a: a[idx])
               for a in arrays)


def train_general(cubes: Sequence[np.ndarray], cfg: ml_collections.ConfigDict,
                  workdir=None, progress: Callable[..., None] | None = None,
                  scene_names: Sequence[str] = (),
                  feature_pool: FeaturePool | None = None,
                  use: np.ndarray | None = None) -> CrossResult:
  """Trains the shared parameters on normalised cubes (H x W x B, any B).

  Phase 1 (always): the stages keep their classical schedule and the score head
  is fitted on the features of implanted scenes (:func:`build_feature_pool`,
  :func:`train_head`). Phase 2 (``train.joint_steps > 0``): every parameter
  (stages, band weighting, head) is trained end to end on implanted crops
  (:func:`build_pool`), ``train.batch_scenes`` crops of different scenes a step.

  With ``workdir``: the feature pool is cached there (``feature_pool.npz``), and
  phase 2 writes orbax checkpoints every ``train.checkpoint_every`` steps; a run
  that finds them resumes from the latest one and ends with the same result.
  """
  t0 = time.perf_counter()
  t = cfg.train
  if not cubes:
    raise ConfigError("no training scenes")
  for name in ("head_steps", "joint_steps"):
    if int(t[name]) < 0:
      raise ConfigError(f"train.{name}={t[name]} must be >= 0")
  model = model_from_config(cfg)
  workdir = pathlib.Path(workdir) if workdir is not None else None
  if workdir is not None:
    workdir.mkdir(parents=True, exist_ok=True)
  if feature_pool is None:
    cache = workdir / "feature_pool.npz" if workdir is not None else None
    feature_pool = _load_pool(cache, cfg, scene_names)
    if feature_pool is None:
      feature_pool = build_feature_pool(cubes, cfg, model, progress)
      if cache is not None:
        _save_pool(cache, feature_pool, cfg, scene_names)
  use = np.ones(feature_pool.scene_v.shape, bool) if use is None else use
  head_losses = train_head(model, feature_pool, use, int(t.head_steps), float(t.head_lr),
                           data_parallel=bool(t.data_parallel))
  history: dict[str, list] = {"head_loss": [float(v) for v in head_losses],
                              "step": [], "loss": [], "rank": [], "rec": [], "finite": []}
  if progress is not None:
    progress(f"head: {int(t.head_steps)} steps, ranking loss {head_losses[0]:.4f} -> "
             f"{head_losses[-1]:.4f}")
  if int(t.joint_steps) > 0:
    model, history = _train_joint(model, cubes, cfg, workdir, progress, scene_names, history)
  return CrossResult(model, history, time.perf_counter() - t0)


def _pool_key(cfg, scene_names) -> str:
  return json.dumps({"config": cfg.to_dict(), "scenes": list(scene_names),
                     "version": PRETRAINED_VERSION}, sort_keys=True)


def _load_pool(path, cfg, scene_names) -> FeaturePool | None:
  if path is None or not path.exists():
    return None
  with np.load(path, allow_pickle=False) as z:
    if str(z["key"]) != _pool_key(_pool_cfg(cfg), scene_names):
      return None
    return FeaturePool(*(z[k] for k in FeaturePool._fields))


def _pool_cfg(cfg):
  """The part of the config the feature pool depends on."""
  c = ml_collections.ConfigDict({"seed": cfg.seed, "net": cfg.net.to_dict(),
                                 "neg_pixels": cfg.train.neg_pixels})
  return c


def _save_pool(path, pool: FeaturePool, cfg, scene_names) -> None:
  tmp = path.with_name(path.name + ".tmp.npz")
  np.savez(tmp, key=np.asarray(_pool_key(_pool_cfg(cfg), scene_names)), **pool._asdict())
  tmp.replace(path)


def _train_joint(model, cubes, cfg, workdir, progress, scene_names, history):
  """Phase 2: end-to-end training on implanted crops, orbax-checkpointed."""
  t = cfg.train
  pool = build_pool(cubes, cfg, progress)
  graphdef, params = nnx.split(model)
  tx = _optimizer(float(t.lr))
  opt_state = tx.init(params)
  mesh = sharded = rep = None
  if t.data_parallel:
    mesh = scenes_mesh()
    if int(t.batch_scenes) % mesh.devices.size:
      raise ConfigError(f"train.batch_scenes={t.batch_scenes} cannot be split evenly "
                        f"over {mesh.devices.size} devices")
    sharded = NamedSharding(mesh, PartitionSpec(SCENES_AXIS))
    rep = NamedSharding(mesh, PartitionSpec())
    params, opt_state = jax.device_put((params, opt_state), rep)
  step_fn = _step_fn(graphdef, int(t.crop), float(t.lr), float(t.rec_weight), sharded)
  start = 0
  mngr = checkpoint_manager(workdir) if workdir is not None else None
  if mngr is not None and mngr.latest_step() is not None:
    start, params, opt_state, meta = restore_latest(mngr, params, opt_state)
    history = meta["history"]
    if mesh is not None:
      params, opt_state = jax.device_put((params, opt_state), rep)

  def save(step):
    if mngr is None:
      return
    meta = {"history": history, "config": cfg.to_dict(), "step": step,
            "scenes": list(scene_names)}
    mngr.save(step, args=ocp.args.Composite(
        params=ocp.args.StandardSave(params), opt_state=ocp.args.StandardSave(opt_state),
        meta=ocp.args.JsonSave(meta)), force=True)

  steps = int(t.joint_steps)
  tick = time.perf_counter()
  for step in range(start, steps):
    idx = batch_indices(pool, step, int(t.batch_scenes), int(cfg.seed))
    batch = _put_batch((pool.x_pbn[idx], pool.noise_pb[idx], pool.atoms_pk[idx],
                        pool.pos_pm[idx], pool.posw_pm[idx], pool.neg_pq[idx]), sharded)
    params, opt_state, loss, rank, rec, finite = step_fn(params, opt_state, batch)
    for k, v in (("step", step + 1), ("loss", float(loss)), ("rank", float(rank)),
                 ("rec", float(rec)), ("finite", bool(finite))):
      history[k].append(v)
    done = step + 1
    if progress is not None and (done % int(t.log_every) == 0 or done == 1):
      rate = (done - start) / max(time.perf_counter() - tick, 1e-9)
      progress(f"joint step {done}/{steps} loss={float(loss):.4f} rank={float(rank):.4f} "
               f"rec={float(rec):.4f} ({rate:.2f} steps/s, ETA "
               f"{(steps - done) / max(rate, 1e-9):.0f}s)")
    if done % int(t.checkpoint_every) == 0 or done == steps:
      save(done)
  if mngr is not None:
    mngr.wait_until_finished()
    mngr.close()
  if mesh is not None:
    params = jax.tree.map(jnp.asarray, jax.device_get(params))
  return nnx.merge(graphdef, params), history


# --------------------------------------------------------- pretrained file --


def params_to_pure(model: general.GeneralLRRNet) -> dict[str, list]:
  _, state = nnx.split(model)
  pure = nnx.to_pure_dict(state)
  return {k: np.asarray(v).tolist() for k, v in pure.items()}


def save_pretrained(path, model, cfg, scenes: Sequence[str], history=None,
                    extra: dict | None = None) -> pathlib.Path:
  """Writes the shared parameters, config, scenes and provenance as one JSON file."""
  obj = {"format": PRETRAINED_FORMAT, "version": PRETRAINED_VERSION,
         "config": cfg.to_dict(), "scenes": list(scenes),
         "params": params_to_pure(model),
         "final_loss": None if not history or not history.get("loss") else history["loss"][-1],
         **(extra or {}),
         "provenance": provenance.record(config=cfg, seed=int(cfg.seed))}
  return provenance.write_json(path, obj)


def load_pretrained(path) -> tuple[general.GeneralLRRNet, ml_collections.ConfigDict, dict]:
  """Reads a file written by :func:`save_pretrained`.

  Raises:
    ConfigError: the file is unreadable, of another format or version, or its
      parameters do not fit the network its config describes (the message names
      the file).
  """
  path = pathlib.Path(path)
  try:
    obj = json.loads(path.read_text())
  except FileNotFoundError:
    raise ConfigError(f"{path}: pretrained parameter file not found") from None
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise ConfigError(f"{path}: not a readable LRR-Net+ parameter file ({e})") from None
  if not isinstance(obj, dict) or obj.get("format") != PRETRAINED_FORMAT:
    raise ConfigError(f"{path}: not an LRR-Net+ parameter file (format "
                      f"{obj.get('format') if isinstance(obj, dict) else None!r})")
  if obj.get("version") != PRETRAINED_VERSION:
    raise ConfigError(f"{path}: parameter file version {obj.get('version')!r}; this lrrjax "
                      f"reads version {PRETRAINED_VERSION}")
  from lrrjax.lrr.config import get_general_config  # pylint: disable=import-outside-toplevel
  cfg = get_general_config()
  try:
    cfg.update(ml_collections.ConfigDict(obj["config"]))
    model = model_from_config(cfg)
    _, state = nnx.split(model)
    pure = nnx.to_pure_dict(state)
    saved = obj["params"]
    if set(saved) != set(pure):
      raise ValueError(f"parameters {sorted(saved)} != expected {sorted(pure)}")
    new = {}
    for k, v in pure.items():
      arr = np.asarray(saved[k], np.float32)
      if arr.shape != np.shape(v) or not np.all(np.isfinite(arr)):
        raise ValueError(f"parameter {k!r}: shape {arr.shape} (expected {np.shape(v)}) "
                         "or non-finite values")
      new[k] = jnp.asarray(arr)
    nnx.replace_by_pure_dict(state, new)
    nnx.update(model, state)
  except (KeyError, TypeError, ValueError) as e:
    raise ConfigError(f"{path}: corrupt LRR-Net+ parameter file: {e}") from None
  return model, cfg, obj


# ------------------------------------------------- head training (phase 1) --


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
                       scene_index: int):
  """Yields ``(version, implanted cube, mask)``, one version per donor entry."""
  for v, donor in enumerate(donors):
    rng = np.random.default_rng([seed, 31337, scene_index, v])
    spec = implants.ImplantSpec() if donor is not None else \
        implants.ImplantSpec(p_donor=0.0)
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
    for v, implanted, mask in implanted_versions(cube, donors, int(cfg.seed), si):
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


def _head_loss(hp, pool_arrays):
  pos, posw, neg = pool_arrays
  zp = jax.vmap(general.head, in_axes=(None, 0))(hp, pos)   # (V, M)
  zq = jax.vmap(general.head, in_axes=(None, 0))(hp, neg)   # (V, Q)
  pair = jax.nn.softplus(zq[:, None, :] - zp[:, :, None])    # (V, M, Q)
  per_pos = jnp.mean(pair, axis=2)
  return jnp.sum(per_pos * posw) / jnp.maximum(jnp.sum(posw), 1.0)


@functools.partial(jax.jit, static_argnames=("steps", "lr"))
def _fit_head(hp, pos, posw, neg, steps, lr):
  tx = optax.adam(lr)
  state = tx.init(hp)
  # (full batch: the whole pool of the fold is one array, so each step is exact)

  def body(carry, _):
    hp, state = carry
    loss, g = jax.value_and_grad(_head_loss)(hp, (pos, posw, neg))
    upd, state = tx.update(g, state, hp)
    return (optax.apply_updates(hp, upd), state), loss

  (hp, _), losses = jax.lax.scan(body, (hp, state), None, length=steps)
  return hp, losses


def train_head(model: general.GeneralLRRNet, pool: FeaturePool, use: np.ndarray,
               steps: int = 500, lr: float = 0.02, data_parallel: bool = False) -> np.ndarray:
  """Fits the score head of ``model`` (in place) on the pool versions ``use``;
  returns the loss curve. Full-batch Adam on the pairwise ranking loss.

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
    arrays = list(_put_batch(arrays, NamedSharding(mesh, PartitionSpec(SCENES_AXIS))))
    hp = jax.device_put(hp, NamedSharding(mesh, PartitionSpec()))
  else:
    arrays = [jnp.asarray(a) for a in arrays]
  hp, losses = _fit_head(hp, *arrays, int(steps), float(lr))
  hp = jax.tree.map(lambda a: jnp.asarray(jax.device_get(a)), hp)
  model.a_f[...] = hp.a_f
  return np.asarray(losses)


DEFAULT_PRETRAINED = pathlib.Path(__file__).with_name("pretrained") / "lrrnet_plus.json"
WORKDIR_FILE = "lrrnet_plus.json"   # what a cross-scene run leaves in its workdir


def score_cube(model, cfg, cube_hwb) -> np.ndarray:
  """Scores (H, W) of a raw cube with a generalised network and its config."""
  h, w, _ = np.shape(cube_hwb)
  ctx = general.prepare(cube_hwb, **context_kwargs(cfg))
  return general.detect(model, ctx, h, w).reshape(h, w)


def train_from_folder(folder, workdir, cfg, names=None, progress=None,
                      allow_suite: bool = False, not_comparable: str | None = None
                      ) -> dict[str, Any]:
  """``lrrjax train DATA_DIR``: trains on every scene of ``folder`` (or those
  ``names``), writes ``workdir/lrrnet_plus.json`` (the parameter file) and
  ``workdir/train.json``. Ground-truth maps in the files are never read.

  Raises:
    SceneError/ConfigError: no scene in the folder, an unreadable scene (named),
      a benchmark-suite folder (its targets come from real ground truth) unless
      ``allow_suite``.
  """
  from lrrjax import io  # pylint: disable=import-outside-toplevel
  from lrrjax.errors import SceneError  # pylint: disable=import-outside-toplevel
  folder = pathlib.Path(folder)
  _refuse_suite(folder, allow_suite)
  paths = io.list_scenes(folder, names)
  if not paths:
    raise SceneError(f"{folder}: no scene files (.mat, .npz, .hdr) to train on")
  cubes, used = [], []
  for p in paths:
    try:
      scene = io.load_scene(p)
    except SceneError as e:
      raise SceneError(f"cannot train on {p}: {e}") from None
    cubes.append(io.normalize(scene.cube, "global"))
    used.append(scene.name)
    del scene
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  res = train_general(cubes, cfg, workdir=workdir, progress=progress, scene_names=used)
  out = save_pretrained(workdir / WORKDIR_FILE, res.model, cfg, used, res.history,
                        extra={"data_dir": str(folder), "seconds": res.seconds})
  rec = {"scenes": used, "workdir": str(workdir), "seconds": res.seconds,
         "head_loss": [res.history["head_loss"][0], res.history["head_loss"][-1]],
         "joint_steps": len(res.history["step"]), "parameters": str(out),
         "gamma": float(res.model.gamma()),
         "head_weights": np.asarray(jax.nn.softplus(res.model.a_f[...])).tolist()}
  if not_comparable:
    rec["not_comparable"] = not_comparable
  provenance.write_json(workdir / "train.json",
                        {**rec, "history": res.history,
                         "provenance": provenance.record(config=cfg, seed=int(cfg.seed))})
  return rec


def _refuse_suite(folder: pathlib.Path, allow: bool) -> None:
  """A benchmark suite (lrrjax suite make) holds targets built from real ground
  truth: never training data unless the user marks the run as not comparable."""
  try:
    from lrrjax import suite  # pylint: disable=import-outside-toplevel
  except ImportError:
    return
  check = getattr(suite, "check_not_suite", None)
  if check is not None:
    check(folder, allow=allow)
