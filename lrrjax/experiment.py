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

Several ``jax.distributed`` processes (experiments/main.py --distributed) split
a folder of scenes: process p of P loads and runs scenes p, p + P, ... of the
folder and writes their <scene>/ folders itself (its checkpoints are its own,
lrrjax.lrr.local_checkpoint); the records are then joined once by a
collective and process 0 writes summary.json (every scene, folder order),
config.json and provenance.json. Not split: one scene, `config.split_scenes`
False, or a trained method with `lrr.train.data_parallel` (then every process
works on every scene together, each scene spread over all devices).
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
  c.split_scenes = True  # several jax.distributed processes share a folder's scenes
  return c


def _is_main() -> bool:
  import jax  # pylint: disable=import-outside-toplevel
  return jax.process_index() == 0


def _process_rank() -> tuple[int, int]:
  import jax  # pylint: disable=import-outside-toplevel
  return jax.process_index(), jax.process_count()


def _info(msg: str, *args, owner: bool | None = None) -> None:
  """Logs on the process that owns the message (default: process 0)."""
  if _is_main() if owner is None else owner:
    log.info(msg, *args)


def scenes_from_config(config) -> list:
  """The scenes named by `config.scene`: "synthetic", a file, or a folder."""
  paths = scene_paths(config)
  if paths is not None:
    return [load_scene_file(config, p) for p in paths]
  if config.scene == "synthetic":
    from lrrjax import synthetic  # pylint: disable=import-outside-toplevel
    kwargs = dict(config.get("synthetic", {}) or {})
    return [synthetic.make_scene(**kwargs)]
  path = pathlib.Path(config.scene)
  if not path.exists():
    raise FileNotFoundError(f"config.scene: scene file not found: {path}")
  return [load_scene_file(config, path)]


def scene_paths(config) -> list[pathlib.Path] | None:
  """The scene files of `config.scene` in folder order when it is a folder, else None.

  Nothing is loaded: a process of a split run lists the folder, then loads its
  own share only.

  Raises:
    ConfigError: the folder holds no loadable scene.
  """
  from lrrjax import io  # pylint: disable=import-outside-toplevel
  if config.scene == "synthetic":
    return None
  path = pathlib.Path(config.scene)
  if not path.is_dir():
    return None
  paths = io.list_scenes(path)
  if not paths:
    raise ConfigError(f"config.scene: no loadable scenes in {path}")
  return paths


def load_scene_file(config, path: pathlib.Path):
  """One scene file, with `config.key` / `config.gt_key`."""
  from lrrjax import io  # pylint: disable=import-outside-toplevel
  return io.load_scene(path, key=config.get("key", None),
                       gt_key=config.get("gt_key", None))


def scene_name(path: pathlib.Path) -> str:
  """The name lrrjax.io.load_scene gives the scene in `path` (its folder in workdir)."""
  from lrrjax.io.load import _stem  # pylint: disable=import-outside-toplevel
  return _stem(pathlib.Path(path))


def trains_data_parallel(config) -> bool:
  """True when `config` trains each scene over all devices of all processes.

  That is a trained method (lrrnet, lrrnet-plus) with
  `lrr.train.data_parallel` (lrrjax.lrr.train.train builds a mesh over every
  process's devices): every process must then work on every scene together.
  """
  lrr = config.get("lrr", None)
  train_cfg = lrr.get("train", None) if lrr is not None else None
  return (config.method in TRAINED and train_cfg is not None
          and bool(train_cfg.get("data_parallel", False)))


def split_plan(config, n_scenes: int, world: int) -> tuple[bool, str]:
  """Whether `world` processes split `n_scenes` scenes, and why (for the log).

  Args:
    config: the experiment config (`split_scenes`, `method`, `lrr`).
    n_scenes: scenes in `config.scene` (1 for a file or "synthetic").
    world: number of jax.distributed processes.

  Returns:
    (split, reason): `reason` is "" for one process.
  """
  if world <= 1:
    return False, ""
  if n_scenes <= 1:
    return False, "one scene: every process runs it"
  if not config.get("split_scenes", True):
    return False, "config.split_scenes is False: every process runs every scene"
  if trains_data_parallel(config):
    return False, ("lrr.train.data_parallel: every scene is trained over all "
                   f"{world} processes' devices together, scenes not split")
  return True, f"{n_scenes} scenes split over {world} processes"


def share(items: list, rank: int, world: int) -> list:
  """The items process `rank` of `world` runs: rank, rank + world, ..."""
  return list(items[rank::world])


def lrr_config_for(config):
  """The LRR config used for training `config.method` (a copy; lrrnet freezes the dictionary)."""
  lrr = copy.deepcopy(config.lrr)
  if config.method == "lrrnet":
    lrr.model.learn_dictionary = False
  return lrr


def x_bn_of(scene, normalize: str) -> np.ndarray:
  """(B, N) float32 matrix of the scene normalised with lrrjax.io.normalize."""
  return scene.x_bn(normalize)


def run_scene(config, scene, workdir: pathlib.Path,
              owner: bool | None = None) -> dict[str, Any]:
  """Trains (if needed), detects and evaluates one scene; writes its files.

  Args:
    config: the experiment config.
    scene: a lrrjax.io.Scene.
    workdir: the experiment folder (the scene's files go to workdir/<scene>).
    owner: this process writes the scene's files and logs it (default: on
      process 0 only). Checkpoints are written by the owner alone too, except
      with data-parallel training, where every process takes part.

  Returns:
    The scene's record (also its metrics.json).
  """
  from lrrjax import detectors, metrics, plots  # pylint: disable=import-outside-toplevel
  owner = _is_main() if owner is None else owner
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
          lrr.model.stages, lrr.train.steps, sdir, owner=owner)
    ckpt = sdir if owner or trains_data_parallel(config) else None
    result = lrr_train.train(x_bn, lrr, workdir=None if ckpt is None else str(ckpt))
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
          rec["seconds"], owner=owner)
  if owner:
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

  With several jax.distributed processes and a folder of scenes, the scenes
  are split over the processes (module docstring; `split_plan`); every
  process takes part in the final join and returns every record.

  Args:
    config: ml_collections.ConfigDict with scene, synthetic, key, gt_key,
      method, method_params, lrr, seed, save_figures, split_scenes.
    workdir: output folder (layout in the module docstring).

  Returns:
    {"records": [per-scene record], "mean_auc_df": float|None,
    "workdir": str, "processes": int}.

  Raises:
    ConfigError: bad config, or (split run) two scene files with one name.
    LrrjaxError: (split run) a scene of another process failed.
  """
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  seed = int(config.get("seed", 0))
  rank, world = _process_rank()
  paths = scene_paths(config)
  split, reason = split_plan(config, 1 if paths is None else len(paths), world)
  if _is_main():
    provenance.write_json(workdir / "config.json", config)
    prov = provenance.record(config=config, seed=seed)
    prov["processes"] = world
    prov["split_scenes"] = split
    provenance.write_json(workdir / "provenance.json", prov)
  if reason:
    _info("%s", reason)
  if split:
    records = _run_split(config, paths, workdir, rank, world)
  else:
    scenes = scenes_from_config(config)
    _info("%d scene(s), method %s, workdir %s", len(scenes), config.method, workdir)
    records = [run_scene(config, scene, workdir) for scene in scenes]
  aucs = [r["auc_df"] for r in records if "auc_df" in r]
  out = {"records": records,
         "mean_auc_df": float(np.mean(aucs)) if aucs else None,
         "workdir": str(workdir), "processes": world}
  if _is_main():
    provenance.write_json(workdir / "summary.json", out)
    if aucs:
      _info("mean AUC(D,F) over %d scene(s): %.4f", len(aucs), out["mean_auc_df"])
  return out


def _run_split(config, paths: list[pathlib.Path], workdir: pathlib.Path,
               rank: int, world: int) -> list[dict[str, Any]]:
  """Runs this process's share of `paths`, then joins every process's records.

  A failure in the share is recorded (scene, error) and joined like a record,
  so that no process waits for ever at the join; then every process raises.
  """
  from lrrjax.benchmark import join_records  # pylint: disable=import-outside-toplevel
  names = [scene_name(p) for p in paths]
  dupes = sorted({n for n in names if names.count(n) > 1})
  if dupes:
    files = [p.name for p, n in zip(paths, names) if n in dupes]
    raise ConfigError(f"config.scene: scene name(s) {', '.join(dupes)} used by several "
                      f"files in {config.scene} ({', '.join(files)}); their outputs "
                      "would share one folder")
  mine = share(paths, rank, world)
  log.info("process %d/%d: %d of %d scenes (%s), method %s, workdir %s", rank, world,
           len(mine), len(paths), ", ".join(scene_name(p) for p in mine) or "none",
           config.method, workdir)
  records, failure = [], None
  for path in mine:
    try:
      records.append(run_scene(config, load_scene_file(config, path), workdir,
                               owner=True))
    except Exception as e:  # pylint: disable=broad-except
      failure = e
      records.append({"method": config.method, "scene": scene_name(path),
                      "error": f"{type(e).__name__}: {e}", "process": rank})
      break
  records = join_records(records, names, [config.method])
  if failure is not None:
    raise failure
  errors = [r for r in records if "error" in r]
  if errors:
    from lrrjax.errors import LrrjaxError  # pylint: disable=import-outside-toplevel
    raise LrrjaxError("; ".join(f"process {r['process']}, scene {r['scene']}: "
                                f"{r['error']}" for r in errors))
  return records
