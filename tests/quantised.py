"""Comparing scores of the quantised head (helpers for the tests).

The head's area top-hats quantise their maps to fixed ladders
(``score_head.AREA_LEVELS``, ``score_head.PC_LEVELS``), so float rounding (other
matmul blocking in strips, the export's principal axes) can move a map value
across a level: the pixels it touches then differ by whole level steps, times
the feature's head weight. Elsewhere the scores agree to rounding.
"""

import numpy as np

from lrrjax.lrr import score_head


def level_step_bound(a_f) -> float:
  """Largest score change one level step of every quantised map can make,
  from the head's pre-softplus weights ``a_f`` (F,)."""
  a = np.log1p(np.exp(np.asarray(a_f, np.float64)))
  n_a, n_pc = len(score_head.AREAS), score_head.N_PC
  i_area = score_head.N_FEATURES - n_pc - score_head.N_GUIDED - n_a
  pc_step = score_head.PC_LEVELS[1] - score_head.PC_LEVELS[0] if n_pc else 0.0
  area_step = score_head.AREA_LEVELS[1] - score_head.AREA_LEVELS[0]
  return float(a[i_area:i_area + n_a].sum() * area_step
               + a[score_head.N_FEATURES - n_pc:].sum() * 2 * score_head.PC_COMPONENTS * pc_step)


def assert_scores_match(got, want, a_f, min_close: float, rtol: float = 1e-4) -> None:
  """``got`` equals ``want`` to ``rtol`` (relative to the largest score) on at
  least the fraction ``min_close`` of pixels, and nowhere differs by more than
  :func:`level_step_bound` (plus that tolerance)."""
  got, want = np.asarray(got), np.asarray(want)
  tol = rtol * float(np.abs(want).max())
  close = np.isclose(got, want, rtol=rtol, atol=tol)
  assert close.mean() >= min_close, (close.mean(), np.argwhere(~close)[:5])
  assert np.abs(got - want).max() <= level_step_bound(a_f) + tol
