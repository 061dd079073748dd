"""Default experiment configuration: LRR-Net+ on the synthetic scene.

Run:
  python experiments/main.py --config=experiments/configs/default.py --workdir=runs/exp
  python experiments/main.py --config=experiments/configs/default.py \
      --config.scene=../shared/data --workdir=runs/abu

Fields:
  scene: a scene file, a folder of scenes (every loadable file in it), or the word
    "synthetic" (lrrjax.synthetic.make_scene(**synthetic)).
  synthetic: make_scene keyword arguments.
  key, gt_key: optional variable names inside the scene file (None = auto).
  method: any name of the lrrjax.detectors registry; LRR-Net+ ("lrrnet-plus") and
    LRR-Net ("lrrnet") are trained with lrrjax.lrr.train.train and checkpointed.
  method_params: keyword overrides passed to run_method for non-trained methods.
  lrr: lrrjax.lrr.config.get_config() (one configuration for all scenes).
  seed: experiment seed; lrr.seed is a reference to it (override --config.lrr.seed
    to set the LRR seed alone).
"""

import ml_collections

from lrrjax import experiment


def get_config() -> ml_collections.ConfigDict:
  return experiment.default_config()
