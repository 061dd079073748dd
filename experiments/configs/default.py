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
  save_figures: write detection.png (and training_curve.png) per scene.
  split_scenes: with several jax.distributed processes (--distributed) and a folder
    of scenes, process p of P runs scenes p, p + P, ... and process 0 writes the
    joined summary.json (default True). Ignored for one scene, and for a trained
    method with lrr.train.data_parallel (every process then trains every scene
    together over all devices). False: every process runs every scene.
"""

import ml_collections

from lrrjax import experiment


def get_config() -> ml_collections.ConfigDict:
  return experiment.default_config()
