"""Registry entries of the LRR family: lrr-admm, lrrnet and lrrnet-plus.

Each is ``fn(scene, **overrides) -> scores (H, W)``; overrides are LRR config
keys, dotted (``model.stages``) or given with ``__`` in place of the dot
(``model__stages``) so they can travel as Python keyword arguments.
"""

from __future__ import annotations

import pathlib

import numpy as np

from lrrjax.detectors import MethodSpec, register
from lrrjax.lrr import admm, sharding, solver, train


def _config(overrides):
  return train.config_with({k.replace("__", "."): v for k, v in overrides.items()})


def _x_bn(scene, config):
  return scene.x_bn(config.normalize)


def lrr_admm(scene, iters: int = 30, update_dictionary: bool = False, **overrides):
  """Model-based LRR ADMM (fixed LRASR dictionary by default), score ||s_i||."""
  cfg = _config(overrides)
  x_bn = _x_bn(scene, cfg)
  d_bk = train.init_dictionary(x_bn, cfg.model, cfg.seed)
  res = solver.solve_with_config(x_bn, d_bk, cfg.model, iters=iters,
                                 update_dictionary=update_dictionary)
  return np.asarray(admm.anomaly_scores(res.state.s_bn)).reshape(scene.height, scene.width)


_PRETRAINED_CACHE: dict = {}


def load_general(path=None):
  """The generalised LRR-Net+ and its config from a parameter file (cached per
  path and modification time). Default: the file shipped in the package."""
  from lrrjax.lrr import cross  # pylint: disable=import-outside-toplevel
  path = pathlib.Path(path) if path is not None else cross.DEFAULT_PRETRAINED
  key = (str(path.resolve()), path.stat().st_mtime_ns if path.exists() else None)
  if key not in _PRETRAINED_CACHE:
    model, cfg, _ = cross.load_pretrained(path)
    _PRETRAINED_CACHE.clear()
    _PRETRAINED_CACHE[key] = (model, cfg)
  return _PRETRAINED_CACHE[key]


def lrrnet_plus(scene, finetune: bool = False, pretrained=None, workdir=None,
                progress=None, seed: int | None = None, **overrides):
  """LRR-Net+ (default method).

  By default the generalised network with the parameters shipped in the package
  (or the file ``pretrained``) scores the scene: no per-scene training.
  ``finetune=True`` trains the per-scene network on the scene instead
  (unsupervised; LRR config keys as overrides). ``seed``: the k-means seed of
  the dictionary initialisation (default: the config's, 0), or the per-scene
  training seed with ``finetune``.
  """
  if not finetune:
    if overrides or workdir is not None:
      from lrrjax.errors import ConfigError  # pylint: disable=import-outside-toplevel
      raise ConfigError(
          f"lrrnet-plus with the pretrained network takes no parameters "
          f"({', '.join(sorted(overrides)) or 'workdir'}); pass finetune=True (--finetune) "
          "to train on the scene with LRR config overrides")
    from lrrjax.lrr import cross  # pylint: disable=import-outside-toplevel
    model, cfg = load_general(pretrained)
    if seed is not None:  # the k-means seed of the dictionary initialisation
      cfg = cfg.copy_and_resolve_references()
      cfg.seed = int(seed)
    return cross.score_cube(model, cfg, scene.cube)
  if seed is not None:
    overrides["seed"] = seed
  return lrrnet_plus_finetune(scene, workdir=workdir, progress=progress, **overrides)


def lrrnet_plus_finetune(scene, workdir=None, progress=None, **overrides):
  """LRR-Net+ trained on the scene itself (unsupervised), then scores ||s_i||."""
  cfg = _config(overrides)
  x_bn = _x_bn(scene, cfg)
  result = train.train(x_bn, cfg, workdir=workdir, progress=progress)
  if cfg.train.data_parallel:  # score pixel-parallel too (lrrjax.lrr.sharding)
    x_bn = sharding.shard_pixels(x_bn)
  return train.detect(result.model, x_bn).reshape(scene.height, scene.width)


def lrrnet(scene, workdir=None, progress=None, **overrides):
  """LRR-Net: per-scene LRR-Net+ with the dictionary frozen (no atom update, D0 fixed)."""
  overrides = {**overrides, "model.learn_dictionary": False}
  return lrrnet_plus_finetune(scene, workdir=workdir, progress=progress, **overrides)


def lrrnet_plus_from_checkpoint(scene, workdir):
  """Scores a scene with the network trained and saved in ``workdir``: a
  cross-scene run (``lrrnet_plus.json`` there; any band count) or a per-scene
  run (the band count must match)."""
  from lrrjax.lrr import cross  # pylint: disable=import-outside-toplevel
  general_file = pathlib.Path(workdir) / cross.WORKDIR_FILE
  if general_file.exists():
    model, cfg = load_general(general_file)
    return cross.score_cube(model, cfg, scene.cube)
  model, cfg = train.restore(workdir, x_bn=None)
  x_bn = _x_bn(scene, cfg)
  if x_bn.shape[0] != model.d0[...].shape[0]:
    from lrrjax.errors import ConfigError
    raise ConfigError(f"scene {scene.name} has {x_bn.shape[0]} bands; the network in "
                      f"{workdir} was trained on {model.d0[...].shape[0]}")
  return train.detect(model, x_bn).reshape(scene.height, scene.width)


register(MethodSpec("lrr-admm", lrr_admm,
                    "model-based LRR solved by ADMM, LRASR dictionary (fixed)"))
register(MethodSpec("lrrnet", lrrnet,
                    "LRR-Net: unrolled LRR ADMM, trained thresholds, frozen dictionary"))
def _tiled_form():
  from lrrjax.detectors import TiledForm  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import tiled  # pylint: disable=import-outside-toplevel
  return TiledForm(tiled.fit, tiled.score, tiled.halo, needs_covariance=True,
                   noise_rows=tiled.noise_rows, finish=tiled.finish,
                   whole_factor=tiled.WHOLE_FACTOR, strip_overhead=tiled.STRIP_OVERHEAD)


register(MethodSpec("lrrnet-plus", lrrnet_plus,
                    "LRR-Net+: unrolled LRR ADMM trained across scenes, shipped parameters "
                    "(default; finetune=True: per-scene training)", _tiled_form()))
