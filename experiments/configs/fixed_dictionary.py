"""Ablation: LRR-Net+ with the dictionary frozen at its LRASR initialisation."""

from lrrjax import experiment


def get_config():
  c = experiment.default_config()
  c.lrr.model.learn_dictionary = False
  return c
