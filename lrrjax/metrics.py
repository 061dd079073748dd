"""Detection metrics: exact ROC, AUC(D,F) and Chang's 3D-ROC areas.

All functions are plain numpy (float64) and cost one sort, O(N log N); there is
no Python loop over thresholds.

Conventions (see notes/metrics.md):

* Larger score = more anomalous. A pixel is declared a target at threshold t
  when ``score >= t``.
* ``labels`` are binary: 1/True = target (anomaly), 0/False = background.
* PD = TP / P (detection probability), PF = FP / N (false-alarm probability).
* Tied scores form one ROC step (a diagonal segment), so the trapezoid area
  equals the Mann-Whitney statistic with ties counted 1/2, i.e.
  ``sklearn.metrics.roc_auc_score``.

3D-ROC reference: C.-I Chang, "An Effective Evaluation Tool for Hyperspectral
Target Detection: 3D Receiver Operating Characteristic Curve Analysis",
IEEE TGRS 59(6):5131-5153, 2021.
"""

from __future__ import annotations

import numpy as np

from lrrjax.errors import SceneError

ROC3D_KEYS = (
    "auc_df", "auc_ft", "auc_dt", "auc_td", "auc_bs", "auc_tdbs", "auc_odp",
    "auc_snpr",
)


def _validate(scores, labels) -> tuple[np.ndarray, np.ndarray]:
  """Flattens and checks ``scores``/``labels``; returns (float64, bool) arrays."""
  s = np.asarray(scores)
  y = np.asarray(labels)
  if s.size != y.size:
    raise SceneError(
        f"scores and labels differ in size: scores shape {s.shape} "
        f"({s.size} values) vs labels shape {y.shape} ({y.size} values)")
  if s.size == 0:
    raise SceneError("scores and labels are empty")
  if not (np.issubdtype(s.dtype, np.number) or s.dtype == bool):
    raise SceneError(f"scores must be numeric, got dtype {s.dtype}")
  s = s.astype(np.float64).ravel()
  bad = ~np.isfinite(s)
  if bad.any():
    raise SceneError(
        f"scores must be finite: {int(bad.sum())} of {s.size} values are "
        f"NaN or inf (first at flat index {int(np.argmax(bad))})")
  y = y.ravel()
  if y.dtype != bool:
    if not np.issubdtype(y.dtype, np.number):
      raise SceneError(f"labels must be binary (0/1 or bool), got dtype {y.dtype}")
    uniq = np.unique(y)
    if not np.all((uniq == 0) | (uniq == 1)):
      shown = ", ".join(repr(v.item()) for v in uniq[:6])
      raise SceneError(
          f"labels must be binary (0/1 or bool); found values {{{shown}"
          f"{', ...' if uniq.size > 6 else ''}}}")
    y = y == 1
  n_pos = int(y.sum())
  if n_pos == 0 or n_pos == y.size:
    which = "target (1)" if n_pos == 0 else "background (0)"
    raise SceneError(
        f"labels must contain both classes; no {which} pixels among {y.size}")
  return s, y


def roc_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Exact ROC curve over all distinct thresholds.

  With scores sorted descending, s_(1) >= ... >= s_(N), and u_1 > ... > u_K the
  distinct values, the k-th point is (PF, PD) for the rule ``score >= u_k``:
  PD_k = #{target: s >= u_k} / P, PF_k = #{background: s >= u_k} / N_bg.
  A point (0, 0) with threshold +inf is prepended; the last point is (1, 1).
  Tied scores move PD and PF together (one diagonal step).

  Args:
    scores: any-shape real array, larger = more anomalous; finite.
    labels: same number of elements, binary (bool or 0/1), both classes present.

  Returns:
    (pf, pd, thresholds): float64 arrays of length K + 1; ``pf``/``pd``
    non-decreasing, ``thresholds`` strictly descending with ``thresholds[0] =
    +inf``.

  Raises:
    SceneError: (a ValueError) on size mismatch, non-binary labels, a
      missing class or non-finite scores.
  """
  s, y = _validate(scores, labels)
  order = np.argsort(-s, kind="stable")
  s_sorted = s[order]
  y_sorted = y[order]
  # Last index of each run of equal scores.
  last = np.flatnonzero(np.diff(s_sorted) != 0)
  last = np.append(last, s_sorted.size - 1)
  tp = np.cumsum(y_sorted)[last]
  fp = (last + 1) - tp
  n_pos = tp[-1]
  n_neg = fp[-1]
  pd = np.concatenate([[0.0], tp / n_pos])
  pf = np.concatenate([[0.0], fp / n_neg])
  thresholds = np.concatenate([[np.inf], s_sorted[last]])
  return pf, pd, thresholds


def _trapezoid(x: np.ndarray, y: np.ndarray) -> float:
  """Trapezoid rule sum_k (x_k - x_{k-1}) (y_k + y_{k-1}) / 2."""
  return float(np.sum(np.diff(x) * (y[1:] + y[:-1])) * 0.5)


def auc_df(scores, labels) -> float:
  """Area under the ROC curve PD(PF), by the trapezoid rule on the exact curve.

  Equals P(s_target > s_background) + P(s_target = s_background) / 2, the
  Mann-Whitney U / (P * N_bg), and so ``sklearn.metrics.roc_auc_score``.
  Invariant to any strictly increasing transform of the scores.

  Args:
    scores: see :func:`roc_curve`.
    labels: see :func:`roc_curve`.

  Returns:
    AUC(D,F) in [0, 1] as a Python float.
  """
  pf, pd, _ = roc_curve(scores, labels)
  return _trapezoid(pf, pd)


def partial_auc_df(scores, labels, far_max: float = 1e-2) -> float:
  """Area under the ROC curve PD(PF) for PF in [0, ``far_max``], divided by
  ``far_max`` (1 = every target above every background pixel of the top
  ``far_max`` share; random scores: ``far_max / 2``), on the exact curve,
  linearly interpolated at ``far_max``: the low false-alarm end of the ROC,
  where a detector's threshold is set.

  Args:
    scores, labels: see :func:`roc_curve`.
    far_max: the false-alarm rate the area stops at, in (0, 1].

  Returns:
    The normalised partial AUC in [0, 1] as a Python float.
  """
  if not 0.0 < far_max <= 1.0:
    raise ValueError(f"far_max must lie in (0, 1], got {far_max}")
  pf, pd, _ = roc_curve(scores, labels)
  keep = pf <= far_max
  x = np.concatenate([pf[keep], [far_max]])
  y = np.concatenate([pd[keep], [np.interp(far_max, pf, pd)]])
  return _trapezoid(x, y) / far_max


def minmax(scores) -> np.ndarray:
  """Min-max normalises scores to [0, 1]: (s - min) / (max - min), float64.

  A constant score array (max == min) carries no information and maps to all
  zeros (the common ``(s - min) / max(max - min, eps)`` convention).
  """
  s = np.asarray(scores, dtype=np.float64)
  lo = s.min()
  rng = s.max() - lo
  if rng == 0:
    return np.zeros_like(s)
  return np.clip((s - lo) / rng, 0.0, 1.0)


def roc3d_curves(scores, labels, taus=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """PD(tau) and PF(tau) on min-max normalised scores (the 3D-ROC's 2D cuts).

  With z = minmax(scores), PD(tau) = #{target: z >= tau} / P and
  PF(tau) = #{background: z >= tau} / N_bg. Evaluated by binary search in the
  sorted z, O((N + T) log N).

  Args:
    scores: see :func:`roc_curve`.
    labels: see :func:`roc_curve`.
    taus: thresholds in [0, 1]; default ``np.linspace(0, 1, 1001)``.

  Returns:
    (taus, pd, pf) float64 arrays of equal length.
  """
  s, y = _validate(scores, labels)
  z = minmax(s)
  taus = np.linspace(0.0, 1.0, 1001) if taus is None else np.asarray(
      taus, dtype=np.float64).ravel()
  zt = np.sort(z[y])
  zb = np.sort(z[~y])
  pd = (zt.size - np.searchsorted(zt, taus, side="left")) / zt.size
  pf = (zb.size - np.searchsorted(zb, taus, side="left")) / zb.size
  return taus, pd, pf


def roc3d(scores, labels) -> dict[str, float]:
  """Chang's 3D-ROC areas (TGRS 2021).

  With z = minmax(scores) in [0, 1] and threshold tau in [0, 1]:

  * auc_df = AUC(D,F): area under PD vs PF (exact, from the raw scores, so it
    is untouched by rounding in the normalisation; see :func:`auc_df`).
  * auc_dt = AUC(D,tau) = int_0^1 PD(tau) dtau = mean of z over targets.
  * auc_ft = AUC(F,tau) = int_0^1 PF(tau) dtau = mean of z over background.
  * auc_td = AUC_TD = AUC(D,F) + AUC(D,tau)   (target detectability).
  * auc_bs = AUC_BS = AUC(D,F) - AUC(F,tau)   (background suppressibility).
  * auc_tdbs = AUC_TDBS = AUC(D,tau) - AUC(F,tau).
  * auc_odp = AUC_ODP = AUC(D,F) + AUC(D,tau) - AUC(F,tau) (overall).
  * auc_snpr = AUC_SNPR = AUC(D,tau) / AUC(F,tau).

  The tau integrals are exact: for z_i in [0, 1],
  int_0^1 1[z_i >= tau] dtau = z_i, so averaging over targets gives
  int_0^1 PD(tau) dtau = mean(z_target); likewise for PF. The rule ``>=`` vs
  ``>`` changes PD(tau) only at finitely many tau, so not the integrals.

  Edge cases: AUC(F,tau) = 0 with AUC(D,tau) > 0 (every background pixel at
  the minimum score) gives auc_snpr = float('inf'); a constant score array
  normalises to zeros, so auc_dt = auc_ft = 0 and auc_snpr = float('nan')
  (0/0). ``json.dumps`` writes these as Infinity / NaN (not strict JSON).

  Args:
    scores: see :func:`roc_curve`.
    labels: see :func:`roc_curve`.

  Returns:
    dict with keys ``ROC3D_KEYS``, values Python floats.
  """
  s, y = _validate(scores, labels)
  adf = auc_df(s, y)
  z = minmax(s)
  adt = float(np.mean(z[y]))
  aft = float(np.mean(z[~y]))
  if aft > 0:
    snpr = adt / aft
  else:
    snpr = float("inf") if adt > 0 else float("nan")
  return {
      "auc_df": adf,
      "auc_ft": aft,
      "auc_dt": adt,
      "auc_td": adf + adt,
      "auc_bs": adf - aft,
      "auc_tdbs": adt - aft,
      "auc_odp": adf + adt - aft,
      "auc_snpr": float(snpr),
  }


def evaluate(scores_hw, gt_hw) -> dict[str, float]:
  """3D-ROC areas of a score map against a ground-truth map.

  Args:
    scores_hw: (H, W) detection scores, larger = more anomalous.
    gt_hw: (H, W) binary ground truth (1/True = anomaly).

  Returns:
    :func:`roc3d` of the flattened (row-major) arrays.

  Raises:
    SceneError: if the shapes differ (both named) or :func:`roc3d` rejects
      the values.
  """
  s = np.asarray(scores_hw)
  g = np.asarray(gt_hw)
  if s.shape != g.shape:
    raise SceneError(
        f"score map shape {s.shape} does not match ground-truth shape {g.shape}")
  return roc3d(s.ravel(), g.ravel())
