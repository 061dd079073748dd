"""Ablation: number of unrolled stages, given as the config string.

  --config=experiments/configs/stages.py:20
"""

import importlib.util
import pathlib


def _default():
  """Loads default.py beside this file (config files are loaded by path)."""
  spec = importlib.util.spec_from_file_location(
      "lrrjax_experiment_default_config",
      pathlib.Path(__file__).with_name("default.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config(arg: str | None = None):
  c = _default().get_config()
  if arg:
    c.lrr.model.stages = int(arg)
  return c
