"""Phase 2 of cross-scene training: every parameter end to end on implanted
crops, ``train.batch_scenes`` crops of different scenes a step, the crops'
axis sharded over devices, orbax-checkpointed (a killed run resumes to the
same result)."""

import functools
import time
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from lrrjax.errors import ConfigError
from lrrjax.lrr import general, implants
from lrrjax.lrr.cross.base import (SCENES_AXIS, context_kwargs, donor_pixels, pad_bands,
                                   put_batch, scenes_mesh)
from lrrjax.lrr.train import checkpoint_manager, restore_latest

class Pool(NamedTuple):
  """Implanted training crops, stacked (P crops, Bp padded bands, N = crop^2)."""
  x_pbn: np.ndarray      # normalised pixels
  noise_pb: np.ndarray
  atoms_pk: np.ndarray   # int32
  pos_pm: np.ndarray     # int32 implant pixel indices (padded)
  posw_pm: np.ndarray    # 1 for a real entry of pos_pm, 0 for padding
  neg_pq: np.ndarray     # int32 background pixel indices
  scene_p: np.ndarray    # int32 scene index of each crop


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
  spec = implants.ImplantSpec(n_distractors=tuple(t.get("distractors", (0, 0))))
  for si, cube in enumerate(cubes):
    h, w, _ = cube.shape
    if h < c or w < c:
      raise ConfigError(f"training scene {si} is {h} x {w}, smaller than "
                        f"train.crop={c}")
    donors = [d for j, d in enumerate(donors_all) if j != si]
    for _ in range(int(t.crops_per_scene)):
      r0 = int(rng.integers(0, h - c + 1))
      c0 = int(rng.integers(0, w - c + 1))
      crop, mask, _ = implants.implant(cube[r0:r0 + c, c0:c0 + c], rng, donors, spec)
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


def train_joint(model, cubes, cfg, workdir, progress, scene_names, history):
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
    batch = put_batch((pool.x_pbn[idx], pool.noise_pb[idx], pool.atoms_pk[idx],
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
