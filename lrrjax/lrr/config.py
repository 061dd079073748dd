"""Default configuration of the LRR solver and LRR-Net+ (one for all scenes).

The reasons for each default are in BUILD_NOTES.md ("LRR core").
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  """Returns the default LRR-Net+ configuration."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.normalize = "global"           # scene normalisation before the model
  c.model = ml_collections.ConfigDict()
  c.model.stages = 10              # T unrolled ADMM stages
  c.model.dict_init = "lrasr"      # "lrasr" | "kmeans"
  c.model.n_clusters = 15
  c.model.per_cluster = 4          # K = n_clusters * per_cluster atoms
  c.model.learn_dictionary = True  # False -> LRR-Net (frozen dictionary)
  c.model.tie_stages = False
  c.model.lam = 0.1                # lambda of ||S||_{2,1}
  c.model.beta = 0.0               # beta ||L||_1 (LRASR-style); > 0: lrr-admm only
  c.model.mu0_scale = 10.0         # mu0 = mu0_scale / ||X||_2
  c.model.rho = 1.5
  c.model.mu_max = 1e6
  c.model.dict_step = 0.5          # atom step, fraction of 1/Lipschitz
  c.model.outlier_k = 3.0          # robust cut (median + k * MAD) of the atom update
  c.train = ml_collections.ConfigDict()
  c.train.loss = "distill"         # "distill" | "objective" | "mse" (BUILD_NOTES: LRR core)
  c.train.teacher_iters = 100      # loss "distill": solver iterations of the teacher
  c.train.alpha = 0.01             # weight of the (normalised) LRR objective in the loss
  c.train.steps = 30               # maximum optimiser steps
  c.train.lr = 0.05
  c.train.dict_lr_scale = 0.01     # D0 learning rate = lr * dict_lr_scale
  c.train.batch_pixels = 2048      # random pixels per step (0 = the whole scene)
  c.train.data_parallel = False    # split pixels over all devices (jax.sharding)
  c.train.plateau_window = 5       # unsupervised stop: loss plateau over this many steps
  c.train.plateau_tol = 1e-3       # ... relative improvement below this
  c.train.train_dictionary = True  # D0 trainable (only with learn_dictionary)
  c.train.log_every = 5
  c.train.checkpoint_every = 10
  return c


def get_general_config() -> ml_collections.ConfigDict:
  """Default configuration of the generalised LRR-Net+ and its cross-scene training.

  Reasons in BUILD_NOTES.md ("Generalised LRR-Net+").
  """
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.net = ml_collections.ConfigDict()
  c.net.stages = 10
  c.net.lam = 0.1
  c.net.mu0_scale = 10.0
  c.net.rho = 1.5
  c.net.mu_max = 1e6
  c.net.dict_step = 0.5
  c.net.outlier_k = 3.0
  c.net.gamma0 = 0.0             # initial band-noise weighting exponent (learned in phase 2)
  c.net.n_clusters = 15
  c.net.per_cluster = 4
  c.net.n_sample = 4096          # pixels the dictionary is chosen from
  c.train = ml_collections.ConfigDict()
  c.train.crop = 64              # training crops are crop x crop pixels
  c.train.crops_per_scene = 12   # implanted crops per training scene (the pool)
  c.train.batch_scenes = 4       # crops per step (from different scenes when possible)
  c.train.head_steps = 300       # phase 1: full-batch Adam steps of the score head
  c.train.head_lr = 0.05
  c.train.joint_steps = 0        # phase 2: end-to-end steps on implanted crops
  c.train.lr = 0.02
  c.train.versions_per_scene = 8 # phase 1: implanted versions of every training scene
  c.train.neg_pixels = 1024      # background pixels per crop / version in the ranking loss
  c.train.head_neg_top = 1.0      # phase 1: share of each version's background sample
  c.train.head_neg_top_weight = 0.0  # ... (its top scores) in a partial-AUC term of this weight
  c.train.distractors = (1, 3)   # large background patches per implanted scene (lo, hi)
  c.train.rec_weight = 0.1       # weight of ||X - D L - S||^2 / ||X||^2
  c.train.data_parallel = False  # split each step's crops over all devices
  c.train.checkpoint_every = 50
  c.train.log_every = 10
  return c
