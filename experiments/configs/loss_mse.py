"""Ablation: train on the reconstruction MSE instead of the LRR objective (lrr.train.loss)."""

from lrrjax import experiment


def get_config():
  c = experiment.default_config()
  c.lrr.train.loss = "mse"
  return c
