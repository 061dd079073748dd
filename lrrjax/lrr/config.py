"""Default configuration of the LRR solver and LRR-Net+ (one for all scenes)."""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  """Returns the default LRR-Net+ configuration (see BUILD_NOTES.md for reasons)."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.normalize = "global"          # scene normalisation before the model
  c.model = ml_collections.ConfigDict()
  c.model.stages = 10             # T unrolled ADMM stages
  c.model.dict_init = "lrasr"     # "lrasr" | "kmeans"
  c.model.n_clusters = 15
  c.model.per_cluster = 20
  c.model.learn_dictionary = True  # False -> LRR-Net (frozen dictionary)
  c.model.tie_stages = False
  c.model.lam = 0.1               # lambda of ||S||_{2,1}
  c.model.mu0 = 1e-2
  c.model.rho = 1.1
  c.model.mu_max = 1e6
  c.model.dict_step = 0.1
  c.train = ml_collections.ConfigDict()
  c.train.steps = 100
  c.train.lr = 1e-2
  c.train.log_every = 10
  c.train.checkpoint_every = 50
  return c
