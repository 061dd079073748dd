"""Config-driven training and evaluation (used by experiments/main.py).

`train_and_evaluate(config, workdir)` runs `config.method` on one scene or on
every scene of a folder. LRR-Net+ ("lrrnet-plus") and LRR-Net ("lrrnet", the
same network with the dictionary frozen) are trained per scene with
lrrjax.lrr.train.train (self-supervised: the ground truth is never seen), with
orbax checkpoints in workdir/<scene> (a rerun resumes from them); any other
registry method is run with lrrjax.detectors.run_method.

Layout of `workdir`:

  config.json                the experiment config
  provenance.json            versions, platform, devices, git revision, seed, config
  summary.json               list of per-scene records + mean AUC(D,F)
  <scene>/metrics.json       record: method, scene, shape, seconds, roc3d keys, ...
  <scene>/scores.npy         (H, W) float32
  <scene>/detection.png      false-colour composite beside the score map
  <scene>/training_curve.png loss vs step (trained methods)
  <scene>/...                orbax checkpoints (trained methods)
"""

import copy
import logging
import os
import pathlib
import time
from typing import Any

import numpy as np

from lrrjax import provenance
from lrrjax.errors import ConfigError

TRAINED = ("lrrnet-plus", "lrrnet")

log = logging.getLogger("lrrjax.experiment")


def default_config():
  """The default experiment configuration (see experiments/configs/default.py).

  Lives in the library so the ablation config files can derive from it without
  loading each other by path.
  """
  import ml_collections  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import config as lrr_config  # pylint: disable=import-outside-toplevel
  c = ml_collections.ConfigDict()
  c.scene = "synthetic"
  c.synthetic = ml_collections.ConfigDict(
      dict(height=64, width=64, bands=100, n_endmembers=4, n_targets=12,
           seed=0))
  c.key = ml_collections.FieldReference(None, field_type=str)
  c.gt_key = ml_collections.FieldReference(None, field_type=str)
  c.method = "lrrnet-plus"
  c.method_params = ml_collections.ConfigDict()
  c.seed = 0
  c.lrr = lrr_config.get_config()
  c.lrr.seed = c.get_ref("seed")  # --config.seed sets both; --config.lrr.seed only lrr
  c.save_figures = True
  return c


def _is_main() -> bool:
  import jax  # pylint: disable=import-outside-toplevel
  return jax.process_index() == 0


def _info(msg: str, *args) -> None:
  if _is_main():
    log.info(msg, *args)


def scenes_from_config(config) -> list:
  """The scenes named by `config.scene`: "synthetic", a file, or a folder."""
  from lrrjax import io  # pylint: disable=import-outside-toplevel
  key = config.get("key", None)
  gt_key = config.get("gt_key", None)
  if config.scene == "synthetic":
    from lrrjax import synthetic  # pylint: disable=import-outside-toplevel
    kwargs = dict(config.get("synthetic", {}) or {})
    return [synthetic.make_scene(**kwargs)]
  path = pathlib.Path(config.scene)
  if path.is_dir():
    paths = io.list_scenes(path)
    if not paths:
      raise ConfigError(f"config.scene: no loadable scenes in {path}")
    return [io.load_scene(p, key=key, gt_key=gt_key) for p in paths]
  if not path.exists():
    raise FileNotFoundError(f"config.scene: scene file not found: {path}")
  return [io.load_scene(path, key=key, gt_key=gt_key)]


def lrr_config_for(config):
  """The LRR config used for training `config.method` (a copy; lrrnet freezes the dictionary)."""
  lrr = copy.deepcopy(config.lrr)
  if config.method == "lrrnet":
    lrr.model.learn_dictionary = False
  return lrr


def x_bn_of(scene, normalize: str) -> np.ndarray:
  """(B, N) float32 matrix of the scene normalised with lrrjax.io.normalize."""
  return scene.x_bn(normalize)


def run_scene(config, scene, workdir: pathlib.Path) -> dict[str, Any]:
  """Trains (if needed), detects and evaluates one scene; writes its files on process 0."""
  from lrrjax import detectors, metrics, plots  # pylint: disable=import-outside-toplevel
  method = config.method
  sdir = workdir / scene.name
  sdir.mkdir(parents=True, exist_ok=True)
  h, w = scene.cube.shape[:2]
  rec: dict[str, Any] = {"method": method, "scene": scene.name,
                         "source": scene.source,
                         "shape": [int(v) for v in scene.cube.shape]}
  history = None
  t0 = time.perf_counter()
  if method in TRAINED:
    from lrrjax.lrr import train as lrr_train  # pylint: disable=import-outside-toplevel
    lrr = lrr_config_for(config)
    x_bn = x_bn_of(scene, lrr.normalize)
    _info("%s: training %s (%d stages, %d steps) in %s", scene.name, method,
          lrr.model.stages, lrr.train.steps, sdir)
    result = lrr_train.train(x_bn, lrr, workdir=str(sdir))
    history = {k: list(v) for k, v in dict(result.history).items()}
    s_n = lrr_train.detect(result.model, x_bn)
    scores = np.asarray(s_n, dtype=np.float32).reshape(h, w)
    rec["train_seconds"] = float(result.seconds)
    if history.get("loss"):
      rec["final_loss"] = history["loss"][-1]
  else:
    if method not in detectors.available_methods():
      raise ConfigError(f"config.method: unknown method {method!r}; available: "
                        f"{', '.join(detectors.available_methods())}")
    params = dict(config.get("method_params", {}) or {})
    scores = np.asarray(detectors.run_method(method, scene, **params),
                        dtype=np.float32)
  rec["seconds"] = time.perf_counter() - t0
  if scene.gt is not None:
    rec.update({k: float(v) for k, v in metrics.evaluate(scores, scene.gt).items()})
    _info("%s: %s AUC(D,F)=%.4f in %.1fs", scene.name, method, rec["auc_df"],
          rec["seconds"])
  if _is_main():
    np.save(sdir / "scores.npy", scores)
    provenance.write_json(sdir / "metrics.json", rec)
    if config.get("save_figures", True):
      plots.save_detection(sdir / "detection.png", scene, scores,
                           title=f"{scene.name}: {method}")
      if history and history.get("loss"):
        steps = history.get("step") or list(range(1, len(history["loss"]) + 1))
        plots.save_curves(sdir / "training_curve.png", steps,
                          {"loss": history["loss"]}, xlabel="step",
                          ylabel="loss", title=f"{scene.name}: {method} training")
      provenance.write_json(sdir / "history.json", history or {})
  return rec


def train_and_evaluate(config, workdir: str | os.PathLike) -> dict[str, Any]:
  """Runs the experiment described by `config` (experiments/configs/default.py).

  Args:
    config: ml_collections.ConfigDict with scene, synthetic, key, gt_key,
      method, method_params, lrr, seed, save_figures.
    workdir: output folder (layout in the module docstring).

  Returns:
    {"records": [per-scene record], "mean_auc_df": float|None, "workdir": str}.
  """
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  seed = int(config.get("seed", 0))
  if _is_main():
    provenance.write_json(workdir / "config.json", config)
    provenance.write_json(workdir / "provenance.json",
                          provenance.record(config=config, seed=seed))
  scenes = scenes_from_config(config)
  _info("%d scene(s), method %s, workdir %s", len(scenes), config.method, workdir)
  records = [run_scene(config, scene, workdir) for scene in scenes]
  aucs = [r["auc_df"] for r in records if "auc_df" in r]
  out = {"records": records,
         "mean_auc_df": float(np.mean(aucs)) if aucs else None,
         "workdir": str(workdir)}
  if _is_main():
    provenance.write_json(workdir / "summary.json", out)
    if aucs:
      _info("mean AUC(D,F) over %d scene(s): %.4f", len(aucs), out["mean_auc_df"])
  return out
