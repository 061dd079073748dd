"""Auto-AD's pure pieces (tested against numpy oracles): the per-pixel
residual, the residual-based pixel weights, the plateau stop, the global
min-max normalisation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lrrjax.autoad.defaults import DEFAULT_PLATEAU_WINDOW


def pixel_residual(out_hwb: jax.Array, x_hwb: jax.Array) -> jax.Array:
  """Squared l2 reconstruction error per pixel.

  Args:
    out_hwb: network output, (..., H, W, B).
    x_hwb: target cube, same shape.

  Returns:
    ``r_hw = sum_b (out - x)^2``, shape (..., H, W).
  """
  return jnp.sum(jnp.square(out_hwb - x_hwb), axis=-1)


def residual_weights(r_hw: jax.Array) -> jax.Array:
  """Auto-AD pixel weights from the per-pixel squared residual.

  ``w = (max r - r) / (max r - min r)``: the worst-reconstructed pixel gets 0,
  the best gets 1, linear in between (official code: ``r_max - residual``
  followed by min-max normalisation; ``min(r_max - r) = 0`` and
  ``max(r_max - r) = r_max - r_min``). When all residuals are equal the
  official code divides 0 by 0; here every weight is 1 instead.

  Args:
    r_hw: per-pixel squared residual, any shape; reduced over all axes.

  Returns:
    Weights in [0, 1], same shape and dtype as ``r_hw``.
  """
  r_max = jnp.max(r_hw)
  span = r_max - jnp.min(r_hw)
  safe = jnp.where(span > 0, span, 1.0)
  return jnp.where(span > 0, (r_max - r_hw) / safe, jnp.ones_like(r_hw))


def plateau_stop(losses, j: int, threshold: float,
                 window: int = DEFAULT_PLATEAU_WINDOW) -> bool:
  """Auto-AD's early-stop rule, as a pure function of the loss history.

  The official loop stores ``|L_k - L_{k-1}|`` in a ring buffer of ``window``
  slots and, when ``j % window == 0``, stops if the buffer mean is below
  ``threshold``. At such a ``j >= window`` the buffer holds exactly the
  differences for ``k = j - window + 1 .. j``, so the rule is

    stop(j)  <=>  j % window == 0  and  j >= window  and
                  mean_{k=j-window+1..j} |L_k - L_{k-1}| < threshold.

  (The official buffer is zero-filled and first checked at ``j = window``, when
  it is already full, so no partial window is ever averaged.)

  Args:
    losses: sequence of the losses ``L_0 .. L_m`` (``m >= j``), one per step.
    j: zero-based index of the iteration just run.
    threshold: plateau threshold; ``None`` or ``<= 0`` disables the rule.
    window: number of consecutive differences averaged (and check period).

  Returns:
    True if training stops after iteration ``j``.
  """
  if threshold is None or threshold <= 0 or window < 1:
    return False
  if j < window or j % window != 0:
    return False
  seg = np.asarray(losses[j - window:j + 1], dtype=np.float64)
  return bool(np.mean(np.abs(np.diff(seg))) < threshold)


def minmax_global(cube_hwb: np.ndarray) -> np.ndarray:
  """``(x - min x) / (max x - min x)`` over all values, float32."""
  x = np.asarray(cube_hwb, dtype=np.float64)
  lo, hi = float(x.min()), float(x.max())
  return ((x - lo) / (hi - lo)).astype(np.float32)
