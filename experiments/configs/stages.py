"""Ablation: number of unrolled stages, given as the config string.

  --config=experiments/configs/stages.py:20
"""

from lrrjax import experiment


def get_config(arg: str | None = None):
  c = experiment.default_config()
  if arg:
    c.lrr.model.stages = int(arg)
  return c
