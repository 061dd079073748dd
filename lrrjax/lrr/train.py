"""Unsupervised training of LRR-Net+ on a scene, with orbax checkpoints.

The scene is the only data and the ground truth is never read. The loss is

    loss = ||X - D L - S||_F^2 / ||X||_F^2
           + alpha * (||L||_* + lam ||S||_{2,1}) / (lam ||X||_{2,1})

(``train.loss = "objective"``); ``"mse"`` drops the second term, whose job is to
rule out the trivial minimiser (thresholds -> 0, S = X, zero MSE). Each step
uses a random subset of ``train.batch_pixels`` pixels (the network's parameters
are per-pixel consistent, see :mod:`lrrjax.lrr.network`), which makes a step
~N/batch times cheaper; scoring always uses the whole scene. Optimiser:
Adam on the log-parameters behind a finite-gradient guard; one jitted step.
Stopping rule (unsupervised, the same for every scene): at most
``train.steps`` steps, and stop early once the loss has improved by less than
``plateau_tol`` (relative) over the last ``plateau_window`` steps.
"""

from __future__ import annotations

import json
import pathlib
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.experimental import multihost_utils

import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx

from lrrjax import dictionary
from lrrjax.errors import ConfigError
from lrrjax.lrr import admm, local_checkpoint, network, prox, sharding, solver
from lrrjax.lrr.precision import highest

Array = jax.Array


class TrainResult(NamedTuple):
  """What :func:`train` returns."""
  model: network.LRRNetPlus
  history: dict[str, list]
  seconds: float
  stopped_at: int


def init_dictionary(x_bn, model_cfg, seed: int) -> Array:
  """The initial dictionary (B, K) named by ``model_cfg.dict_init``."""
  k = model_cfg.n_clusters * model_cfg.per_cluster
  if model_cfg.dict_init == "lrasr":
    return dictionary.lrasr_dictionary(x_bn, model_cfg.n_clusters,
                                       model_cfg.per_cluster, seed=seed)
  if model_cfg.dict_init == "kmeans":
    return dictionary.kmeans_dictionary(x_bn, k, seed=seed)
  raise ConfigError(f"model.dict_init={model_cfg.dict_init!r}: expected 'lrasr' or 'kmeans'")


def build_model(x_bn, config: ml_collections.ConfigDict) -> network.LRRNetPlus:
  """Dictionary initialisation + network, deterministic for ``config.seed``."""
  x_bn = jnp.asarray(x_bn, jnp.float32)
  d_bk = init_dictionary(x_bn, config.model, config.seed)
  return network.from_config(x_bn, d_bk, config.model)


@highest
def loss_terms(out: network.NetOutput, x_bn: Array, lam_eff: Array | float
               ) -> dict[str, Array]:
  """The dimensionless loss terms on a batch ``x_bn`` (B, n).

  ``rel_mse = ||X - D L - S||_F^2 / ||X||_F^2``, and the LRR objective
  ``||L||_* + lam_eff ||S||_{2,1}`` divided by its value at the trivial point
  ``(L, S) = (0, X)``, ``lam_eff ||X||_{2,1}``, split into ``lowrank`` and
  ``sparse``. ``lam_eff = lam sqrt(n_ref / n)`` is the weight the network's
  per-pixel thresholds imply on a batch of n pixels (see lrrjax.lrr.network),
  so the loss has the model's own balance between the two norms.
  """
  resid = x_bn - out.dl_bn - out.s_bn
  l21 = jnp.sum(prox.safe_norm(x_bn, axis=0))
  return {
      "rel_mse": jnp.sum(resid ** 2) / jnp.sum(x_bn ** 2),
      "lowrank": prox.nuclear_norm(out.l_kn) / (lam_eff * l21),
      "sparse": jnp.sum(admm.anomaly_scores(out.s_bn)) / l21,
  }


def total_loss(terms: dict[str, Array], train_cfg) -> Array:
  if train_cfg.loss == "mse":
    return terms["rel_mse"]
  if train_cfg.loss == "objective":
    return terms["rel_mse"] + train_cfg.alpha * (terms["lowrank"] + terms["sparse"])
  if train_cfg.loss == "distill":
    return terms["rel_mse"] + terms["distill"]
  raise ConfigError(f"train.loss={train_cfg.loss!r}: expected 'objective', 'mse' or 'distill'")


def teacher_s(x_bn, model: network.LRRNetPlus, config) -> Array:
  """S (B, N) of the model-based solver after ``train.teacher_iters`` iterations."""
  return solver.solve_with_config(
      x_bn, model.d0[...], config.model, iters=config.train.teacher_iters,
      update_dictionary=config.model.learn_dictionary).state.s_bn


def _trainable_filter(config):
  if config.model.learn_dictionary and not config.train.train_dictionary:
    return nnx.All(nnx.Param, nnx.Not(nnx.PathContains("d0")))
  return nnx.Param


def plateaued(losses: list[float], window: int, tol: float) -> bool:
  """True when the best loss of the last ``window`` steps improved on the best
  before them by less than ``tol`` (relative). Pure; used as the stop rule."""
  if len(losses) <= window:
    return False
  before = min(losses[:-window])
  recent = min(losses[-window:])
  return (before - recent) <= tol * abs(before)


def checkpoint_manager(workdir: pathlib.Path,
                       process_local: bool = False) -> ocp.CheckpointManager:
  """Orbax manager of ``workdir/checkpoints``: params, opt_state (standard), meta (JSON).

  Args:
    workdir: the training folder.
    process_local: this process saves and restores alone although
      ``jax.distributed`` runs several (they train different scenes; see
      :mod:`lrrjax.lrr.local_checkpoint`). Save and restore with
      :func:`save_checkpoint` / :func:`restore_latest` and the same flag.
  """
  root = workdir.resolve() / "checkpoints"
  if not process_local:
    return ocp.CheckpointManager(
        root,
        options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True),
        item_handlers={"params": ocp.StandardCheckpointHandler(),
                       "opt_state": ocp.StandardCheckpointHandler(),
                       "meta": ocp.JsonCheckpointHandler()})
  mp = local_checkpoint.multiprocessing_options()
  root.mkdir(parents=True, exist_ok=True)  # orbax: no create=True with active_processes
  return ocp.CheckpointManager(
      root,
      options=ocp.CheckpointManagerOptions(
          max_to_keep=2, create=False, multiprocessing_options=mp,
          # Async saves signal "directory created" through the jax.distributed
          # key-value store under keys shared by all processes: two processes
          # saving on their own would release each other's waits.
          enable_async_checkpointing=False),
      item_handlers={"params": local_checkpoint.pytree_handler(mp),
                     "opt_state": local_checkpoint.pytree_handler(mp),
                     "meta": ocp.JsonCheckpointHandler(multiprocessing_options=mp)})


def save_checkpoint(mngr: ocp.CheckpointManager, step: int, params, opt_state,
                    meta: dict, process_local: bool = False) -> None:
  """Saves ``params``, ``opt_state`` and ``meta`` as step ``step`` of ``mngr``."""
  if process_local:
    p_args = local_checkpoint.save_args(params)
    o_args = local_checkpoint.save_args(opt_state)
  else:
    p_args, o_args = ocp.args.StandardSave(params), ocp.args.StandardSave(opt_state)
  mngr.save(step, args=ocp.args.Composite(params=p_args, opt_state=o_args,
                                          meta=ocp.args.JsonSave(meta)), force=True)


def restore_latest(mngr: ocp.CheckpointManager, params, opt_state,
                   process_local: bool = False):
  """``(step, params, opt_state, meta)`` of the latest checkpoint of ``mngr``
  (``params``/``opt_state`` give the structure to restore into; with
  ``process_local`` they come back on this process's default device)."""
  step = mngr.latest_step()
  if process_local:
    p_args = local_checkpoint.restore_args(params)
    o_args = local_checkpoint.restore_args(opt_state)
  else:
    p_args, o_args = ocp.args.StandardRestore(params), ocp.args.StandardRestore(opt_state)
  restored = mngr.restore(step, args=ocp.args.Composite(
      params=p_args, opt_state=o_args, meta=ocp.args.JsonRestore()))
  params, opt_state = restored["params"], restored["opt_state"]
  if process_local:
    params, opt_state = jax.device_put((params, opt_state))
  return step, params, opt_state, restored["meta"]


def _to_pure(state) -> dict:
  """Untrained variables (frozen dictionary, ...) as JSON-ready nested lists."""
  return jax.tree.map(lambda v: np.asarray(v).tolist(), nnx.to_pure_dict(state))


def _from_pure(state, pure: dict):
  nnx.replace_by_pure_dict(state, jax.tree.map(
      lambda v: jnp.asarray(v, jnp.float32), pure,
      is_leaf=lambda v: isinstance(v, list)))
  return state


def train(x_bn, config: ml_collections.ConfigDict, workdir=None,
          progress: Callable[[int, dict], None] | None = None,
          inspect: Callable[[int, network.LRRNetPlus], None] | None = None
          ) -> TrainResult:
  """Trains LRR-Net+ on one scene ``x_bn`` (B, N), unsupervised.

  With ``workdir``, params, optimiser state, loss history and config are saved
  with orbax every ``train.checkpoint_every`` steps and at the end; a run that
  finds checkpoints there resumes from the latest and ends with the same result
  as an uninterrupted run (the pixel batch of each step is fixed by (seed, step)).
  """
  t0 = time.perf_counter()
  tcfg = config.train
  mesh = sharding.pixel_mesh() if tcfg.get("data_parallel", False) else None
  # The dictionary initialisation reads the host copy; with a mesh, every jitted
  # step below runs on pixel-sharded data with replicated parameters.
  model = build_model(x_bn, config)
  x_bn = (sharding.shard_pixels(x_bn, mesh) if mesh is not None
          else jnp.asarray(x_bn, jnp.float32))
  if tcfg.steps < 0:
    raise ConfigError(f"train.steps={tcfg.steps} must be >= 0")
  wrt = _trainable_filter(config)
  graphdef, params, rest = nnx.split(model, wrt, ...)
  if mesh is not None:
    params, rest = jax.device_put((params, rest), sharding.replicated(mesh))
  d0_shape = model.d0[...].shape
  # Adam moves every coordinate by ~lr per step whatever its scale: fine for the
  # log-parameters, but an atom entry is ~1/sqrt(B), so D0 gets lr * dict_lr_scale.
  labels = jax.tree.map(lambda _: "log", params)
  if "d0" in params:
    labels["d0"] = jax.tree.map(lambda _: "dict", params["d0"])
  tx = optax.apply_if_finite(optax.multi_transform(
      {"log": optax.adam(tcfg.lr), "dict": optax.adam(tcfg.lr * tcfg.dict_lr_scale)},
      labels), max_consecutive_errors=10)
  opt_state = tx.init(params)
  if mesh is not None:
    opt_state = jax.device_put(opt_state, sharding.replicated(mesh))
  lam = config.model.lam
  history: dict[str, list] = {"step": [], "loss": [], "rel_mse": [], "lowrank": [],
                              "sparse": [], "finite": []}
  if tcfg.loss == "distill":
    history["distill"] = []
  start = 0

  # Without a mesh under jax.distributed the arrays are host-local (the
  # processes train different scenes): orbax's collective save refuses them,
  # so this process checkpoints alone.
  local = mesh is None and jax.process_count() > 1
  mngr = (checkpoint_manager(pathlib.Path(workdir), process_local=local)
          if workdir is not None else None)
  if mngr is not None and mngr.latest_step() is not None:
    step, params, opt_state, meta = restore_latest(mngr, params, opt_state,
                                                   process_local=local)
    if mesh is not None:
      params, opt_state = jax.device_put((params, opt_state), sharding.replicated(mesh))
    history = meta["history"]
    start = step

  n_pix = x_bn.shape[1]
  batch = n_pix if tcfg.batch_pixels <= 0 else min(int(tcfg.batch_pixels), n_pix)
  if mesh is not None:
    sharding.check_divisible(batch, mesh, "batch pixels (train.batch_pixels)")
  key = jax.random.PRNGKey(config.seed)

  lam_eff = lam * np.sqrt(model.n_ref / batch)
  # "distill": the teacher is the model-based solver run to convergence on the
  # whole scene (same dictionary init and schedule); the T stages learn to reach
  # its S. Unsupervised: the teacher never sees the ground truth either.
  s_teacher = teacher_s(x_bn, model, config) if tcfg.loss == "distill" else None

  def loss_fn(p, xb_bn, sb_teacher):
    m = nnx.merge(graphdef, p, rest)
    out = m(xb_bn)
    terms = loss_terms(out, xb_bn, lam_eff)
    if sb_teacher is not None:
      terms["distill"] = jnp.sum((out.s_bn - sb_teacher) ** 2) / jnp.maximum(
          jnp.sum(sb_teacher ** 2), 1e-30)
    return total_loss(terms, tcfg), terms

  # The scene and the teacher are arguments, not closed-over constants: no
  # copy of the scene is baked into the program, and a pixel-sharded array that
  # spans several processes (jax.distributed) can be passed at all.
  @jax.jit
  def train_step(p, s, step, x_bn, s_teacher):
    if batch < n_pix:
      # A fresh random pixel subset every step, fixed by (seed, step): a resumed
      # run sees the same batches as an uninterrupted one.
      idx = jax.random.choice(jax.random.fold_in(key, step), n_pix, (batch,),
                              replace=False)
      idx = jnp.sort(idx)
      xb_bn = x_bn[:, idx]
      sb = None if s_teacher is None else s_teacher[:, idx]
    else:
      xb_bn, sb = x_bn, s_teacher
    if mesh is not None:  # keep the batch split along pixels (data parallel)
      xb_bn = jax.lax.with_sharding_constraint(xb_bn, sharding.pixel_sharding(mesh))
      if sb is not None:
        sb = jax.lax.with_sharding_constraint(sb, sharding.pixel_sharding(mesh))
    (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, xb_bn, sb)
    finite = jnp.all(jnp.array([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
    updates, s = tx.update(grads, s, p)
    return optax.apply_updates(p, updates), s, loss, terms, finite

  def save(step):
    if mngr is None:
      return
    meta = {"history": history, "config": config.to_dict(), "step": step,
            "d0_shape": list(d0_shape), "n_ref": model.n_ref,
            "rest": _to_pure(rest)}
    save_checkpoint(mngr, step, params, opt_state, meta, process_local=local)

  step = start
  if inspect is not None:
    inspect(step, nnx.merge(graphdef, params, rest))
  done = plateaued(history["loss"], tcfg.plateau_window, tcfg.plateau_tol)
  while step < tcfg.steps and not done:
    params, opt_state, loss, terms, finite = train_step(params, opt_state, step, x_bn,
                                                        s_teacher)
    step += 1
    history["step"].append(step)
    history["loss"].append(float(loss))
    for k_, v in terms.items():
      history[k_].append(float(v))
    history["finite"].append(bool(finite))
    if inspect is not None:
      inspect(step, nnx.merge(graphdef, params, rest))
    if progress is not None and (step % tcfg.log_every == 0 or step == 1):
      progress(step, {"loss": float(loss), **{k_: float(v) for k_, v in terms.items()}})
    done = plateaued(history["loss"], tcfg.plateau_window, tcfg.plateau_tol)
    if step % tcfg.checkpoint_every == 0 or done or step == tcfg.steps:
      save(step)
  if mngr is not None:
    if mngr.latest_step() != step:
      save(step)
    mngr.wait_until_finished()
    (pathlib.Path(workdir) / "lrr_config.json").write_text(config.to_json(indent=2))
    mngr.close()
  if mesh is not None:  # hand back an ordinary single-device model
    params, rest = jax.tree.map(jnp.asarray, jax.device_get((params, rest)))
  model = nnx.merge(graphdef, params, rest)
  return TrainResult(model, history, time.perf_counter() - t0, step)


def restore(workdir, x_bn=None) -> tuple[network.LRRNetPlus, ml_collections.ConfigDict]:
  """Rebuilds the trained network from ``workdir`` (written by :func:`train`).

  The network's structure is rebuilt from the saved config with a placeholder
  dictionary of the saved shape; every variable then comes from the checkpoint.
  """
  workdir = pathlib.Path(workdir)
  cfg_path = workdir / "lrr_config.json"
  if not cfg_path.exists():
    raise ConfigError(f"no trained LRR-Net+ in {workdir}: {cfg_path.name} missing")
  config = ml_collections.ConfigDict(json.loads(cfg_path.read_text()))
  mngr = checkpoint_manager(workdir)
  step = mngr.latest_step()
  if step is None:
    raise ConfigError(f"no checkpoint under {workdir / 'checkpoints'}")
  meta = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
  d_shape = tuple(meta["d0_shape"])
  model = network.from_config(None, jnp.zeros(d_shape, jnp.float32), config.model,
                              n_ref=meta["n_ref"])
  graphdef, params, rest = nnx.split(model, _trainable_filter(config), ...)
  restored = mngr.restore(step, args=ocp.args.Composite(
      params=ocp.args.StandardRestore(params)))
  mngr.close()
  model = nnx.merge(graphdef, restored["params"], _from_pure(rest, meta["rest"]))
  if x_bn is not None and x_bn.shape[0] != d_shape[0]:
    raise ConfigError(f"scene has {x_bn.shape[0]} bands, the checkpoint in {workdir} "
                      f"was trained on {d_shape[0]}")
  return model, config


def detect(model: network.LRRNetPlus, x_bn) -> np.ndarray:
  """Anomaly scores (N,) of a trained (or untrained) network on ``x_bn``.

  ``x_bn`` may be pixel-sharded (:func:`lrrjax.lrr.sharding.shard_pixels`);
  when its shards live on several processes, every process gets all N scores.
  """
  graphdef, state = nnx.split(model)
  scores = _scores_impl(graphdef, state, jnp.asarray(x_bn, jnp.float32))
  if not scores.is_fully_addressable:
    scores = multihost_utils.process_allgather(scores, tiled=True)
  return np.asarray(scores)


def _scores_fn(graphdef, state, x_bn):
  model = nnx.merge(graphdef, state)
  return admm.anomaly_scores(model(x_bn).s_bn)


_scores_impl = jax.jit(_scores_fn, static_argnums=0)


def config_with(overrides: dict[str, Any] | None = None) -> ml_collections.ConfigDict:
  """Default config with dotted-key overrides (``{"model.stages": 5}``)."""
  from lrrjax.lrr.config import get_config
  cfg = get_config()
  for key, value in (overrides or {}).items():
    node = cfg
    parts = key.split(".")
    for part in parts[:-1]:
      if part not in node:
        raise ConfigError(f"unknown LRR config key {key!r}")
      node = node[part]
    if parts[-1] not in node:
      raise ConfigError(f"unknown LRR config key {key!r}")
    node[parts[-1]] = type(node[parts[-1]])(value) if not isinstance(node[parts[-1]], bool) \
        else (value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes"))
  return cfg
