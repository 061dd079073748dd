"""Ablation: one set of stage parameters shared by all unrolled stages."""

from lrrjax import experiment


def get_config():
  c = experiment.default_config()
  c.lrr.model.tie_stages = True
  return c
