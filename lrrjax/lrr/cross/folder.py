"""Training across a folder of scenes (phase 1, then phase 2 when configured)
and scoring a cube with a trained network."""

from __future__ import annotations

import pathlib
import time
from typing import Any, Callable, NamedTuple, Sequence

import jax
import ml_collections
import numpy as np

from lrrjax import provenance
from lrrjax.errors import ConfigError
from lrrjax.lrr import general
from lrrjax.lrr.cross.base import context_kwargs, model_from_config
from lrrjax.lrr.cross.head import (FeaturePool, build_feature_pool, head_loss_options,
                                   load_feature_pool, save_feature_pool, train_head)
from lrrjax.lrr.cross.joint import train_joint
from lrrjax.lrr.cross.params import WORKDIR_FILE, save_pretrained

class CrossResult(NamedTuple):
  model: general.GeneralLRRNet
  history: dict[str, list]
  seconds: float


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
    feature_pool = load_feature_pool(cache, cfg, scene_names)
    if feature_pool is None:
      feature_pool = build_feature_pool(cubes, cfg, model, progress)
      if cache is not None:
        save_feature_pool(cache, feature_pool, cfg, scene_names)
  use = np.ones(feature_pool.scene_v.shape, bool) if use is None else use
  head_losses = train_head(model, feature_pool, use, int(t.head_steps), float(t.head_lr),
                           data_parallel=bool(t.data_parallel), **head_loss_options(t))
  history: dict[str, list] = {"head_loss": [float(v) for v in head_losses],
                              "step": [], "loss": [], "rank": [], "rec": [], "finite": []}
  if progress is not None:
    progress(f"head: {int(t.head_steps)} steps, ranking loss {head_losses[0]:.4f} -> "
             f"{head_losses[-1]:.4f}")
  if int(t.joint_steps) > 0:
    model, history = train_joint(model, cubes, cfg, workdir, progress, scene_names, history)
  return CrossResult(model, history, time.perf_counter() - t0)


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
