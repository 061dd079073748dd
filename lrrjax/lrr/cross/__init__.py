"""Cross-scene training of the generalised LRR-Net+ (:mod:`lrrjax.lrr.general`).

Training signal (no ground truth is read): synthetic targets are implanted into
crops of the training scenes (:mod:`lrrjax.lrr.implants`), and the network is
trained to rank the implanted pixels above the crop's other pixels with the
pairwise logistic AUC surrogate

    L_rank = mean_{p in implants, q in background} softplus(z_q - z_p)

plus ``rec_weight * ||X - D L - S||_F^2 / ||X||_F^2`` (the ADMM constraint).
Each step mixes ``batch_scenes`` crops of different scenes. Crops of different
band counts are zero-padded to a common count: a zero band adds nothing to any
norm, inner product, k-means distance or covariance, and gets band weight 0, so
padding changes no result (tested). The crops' axis is split over devices with
``jax.sharding`` when ``train.data_parallel`` (parameters replicated, GSPMD
all-reduces the gradient; with ``jax.distributed`` the mesh spans every host).
Orbax checkpoints; a killed run resumes to the same result (the batches of each
step are fixed by (seed, step)).

Modules: ``base`` (config to network and context, padding, mesh), ``head``
(phase 1: implanted feature pool, head fit), ``joint`` (phase 2: end to end,
checkpointed), ``params`` (the parameter file), ``folder`` (training on a
folder, scoring a cube).
"""

from lrrjax.lrr.cross.base import (PRETRAINED_FORMAT, PRETRAINED_VERSION, SCENES_AXIS,
                                   context_kwargs, donor_pixels, model_from_config,
                                   pad_bands, scenes_mesh)
from lrrjax.lrr.cross.folder import CrossResult, score_cube, train_from_folder, train_general
from lrrjax.lrr.cross.head import (FeaturePool, build_feature_pool, fold_mask,
                                   head_loss_options, implanted_versions, load_feature_pool,
                                   save_feature_pool, scene_features, train_head)
from lrrjax.lrr.cross.joint import Pool, batch_indices, build_pool, rank_loss, sample_loss
from lrrjax.lrr.cross.params import (DEFAULT_PRETRAINED, WORKDIR_FILE, load_pretrained,
                                     params_to_pure, save_pretrained)

__all__ = ["CrossResult", "DEFAULT_PRETRAINED", "FeaturePool", "PRETRAINED_FORMAT",
           "PRETRAINED_VERSION", "Pool", "SCENES_AXIS", "WORKDIR_FILE", "batch_indices",
           "build_feature_pool", "build_pool", "context_kwargs", "donor_pixels", "fold_mask",
           "head_loss_options", "implanted_versions", "load_feature_pool", "load_pretrained",
           "model_from_config", "pad_bands", "params_to_pure", "rank_loss", "sample_loss",
           "save_feature_pool", "save_pretrained", "scene_features", "scenes_mesh", "score_cube",
           "train_from_folder", "train_general", "train_head"]
