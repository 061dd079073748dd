"""Auto-AD: autonomous hyperspectral anomaly detection with a skip autoencoder.

S. Wang, X. Wang, L. Zhang, Y. Zhong, "Auto-AD: Autonomous Hyperspectral
Anomaly Detection Network Based on Fully Convolutional Autoencoder", IEEE TGRS
60:5503314, 2021 (official PyTorch code: github.com/RSIDEA-WHU2020/Auto-AD,
``AD_main_loop.py`` and ``models/skip.py``, itself the deep-image-prior skip
network of Ulyanov et al.).

Method (one scene, no training data). With the cube ``x`` (H, W, B) min-max
normalised to [0, 1] over all values, a fixed input ``z0 ~ U[0, 1) * 0.1`` of
shape (H, W, B) and a skip encoder-decoder ``f_theta``, iteration ``j`` does

  z_j     = z0 + sigma * n_j,  n_j ~ N(0, I)              (fresh every step)
  y_j     = f_theta(z_j)                                  (H, W, B) in (0, 1)
  r_j(p)  = sum_b (y_j(p, b) - x(p, b))^2                 (per pixel)
  w       = (max r_j - r_j) / (max r_j - min r_j)         if j % 100 == 0, j > 0
  L_j     = mean_{p, b} (w(p) y_j(p, b) - w(p) x(p, b))^2
  theta  <- Adam(lr).step(grad L_j)

with ``w = 1`` until the first refresh. Pixels the background model cannot
reconstruct (anomalies) get small weight, so the network stops fitting them.
Training stops after ``iters`` steps or earlier when the loss plateaus (see
:func:`plateau_stop`). The detection map is ``sqrt(r)`` of the last iteration,
the per-pixel l2 reconstruction error.

Design choices and their sources are listed in BUILD_NOTES.md, "Auto-AD baseline".

Modules: ``defaults`` (the official code's), ``ops`` (pure pieces), ``net`` (the
skip network), ``fit`` (:func:`auto_ad`, :func:`method_fn`). Importing the package
registers ``auto-ad`` with :mod:`lrrjax.detectors`.
"""

from lrrjax.autoad.defaults import (BN_EPS, DEFAULT_CHANNELS, DEFAULT_INPUT_SCALE,
                                    DEFAULT_ITERS, DEFAULT_LR, DEFAULT_PLATEAU,
                                    DEFAULT_PLATEAU_WINDOW, DEFAULT_REFRESH_EVERY,
                                    DEFAULT_REG_NOISE_STD, DEFAULT_SCALES, DESCRIPTION,
                                    LEAKY_SLOPE)
from lrrjax.autoad.fit import StepOut, auto_ad, method_fn
from lrrjax.autoad.net import (ConvBnAct, ReflectConv, SkipLevel, SkipNet, TorchBiasInit,
                               count_params, upsample_nearest2)
from lrrjax.autoad.ops import minmax_global, pixel_residual, plateau_stop, residual_weights

__all__ = ["BN_EPS", "ConvBnAct", "DEFAULT_CHANNELS", "DEFAULT_INPUT_SCALE", "DEFAULT_ITERS",
           "DEFAULT_LR", "DEFAULT_PLATEAU", "DEFAULT_PLATEAU_WINDOW", "DEFAULT_REFRESH_EVERY",
           "DEFAULT_REG_NOISE_STD", "DEFAULT_SCALES", "DESCRIPTION", "LEAKY_SLOPE",
           "ReflectConv", "SkipLevel", "SkipNet", "StepOut", "TorchBiasInit", "auto_ad",
           "count_params", "method_fn", "minmax_global", "pixel_residual", "plateau_stop",
           "residual_weights", "upsample_nearest2"]


def _register() -> None:
  """Registers ``auto-ad`` with the detector registry (which imports this
  package lazily; the registry does not import us at its own import time, so
  there is no cycle)."""
  from lrrjax import detectors  # pylint: disable=import-outside-toplevel
  detectors.register(detectors.MethodSpec("auto-ad", method_fn, DESCRIPTION))


_register()
