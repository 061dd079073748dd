"""Ablation: train on the reconstruction MSE instead of the LRR objective (lrr.train.loss)."""

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


def get_config():
  c = _default().get_config()
  c.lrr.train.loss = "mse"
  return c
