"""The parameter file of the generalised LRR-Net+ (one JSON file: parameters,
config, training scenes, provenance) and the shipped one's path."""

import json
import pathlib
from typing import Sequence

import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from lrrjax import provenance
from lrrjax.errors import ConfigError
from lrrjax.lrr import general
from lrrjax.lrr.cross.base import PRETRAINED_FORMAT, PRETRAINED_VERSION, model_from_config

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
    # The structure only: the initial values (the classical schedule, computed
    # op by op, each op compiled on first use: ~0.4 s of a cold `lrrjax
    # detect`) would all be replaced by the saved ones.
    model = nnx.eval_shape(lambda: model_from_config(cfg))
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


DEFAULT_PRETRAINED = pathlib.Path(__file__).parent.parent / "pretrained" / "lrrnet_plus.json"
WORKDIR_FILE = "lrrnet_plus.json"   # what a cross-scene run leaves in its workdir
