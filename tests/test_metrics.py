"""Tests for lrrjax.metrics: sklearn oracle, 3D-ROC identities, real-scene RX."""

import json

import numpy as np
import pytest
import scipy.io
from sklearn import metrics as skm

from lrrjax import metrics
from lrrjax.errors import SceneError


def _random_case(rng, n, p_pos=0.1, n_levels=None):
  """Random labels (both classes) and scores; ``n_levels`` forces ties."""
  y = rng.random(n) < p_pos
  y[0], y[1] = True, False
  if n_levels is None:
    s = rng.normal(size=n) + 1.5 * y
  else:
    s = rng.integers(0, n_levels, size=n).astype(np.float64) + 2 * y * rng.random(n)
    s = np.floor(s)
  return s, y


def _brute_roc(s, y):
  """Reference: loop over distinct thresholds, rule s >= t."""
  ts = np.unique(s)[::-1]
  pf = [0.0] + [np.mean(s[~y] >= t) for t in ts]
  pd = [0.0] + [np.mean(s[y] >= t) for t in ts]
  return np.array(pf), np.array(pd), np.concatenate([[np.inf], ts])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n_levels", [None, 2, 5, 40])
def test_auc_matches_sklearn(seed, n_levels):
  rng = np.random.default_rng(seed)
  s, y = _random_case(rng, 500 + 37 * seed, n_levels=n_levels)
  if n_levels is not None:
    assert np.unique(s).size < s.size  # the case really has ties
  assert abs(metrics.auc_df(s, y) - skm.roc_auc_score(y, s)) < 1e-9
  assert abs(metrics.roc3d(s, y)["auc_df"] - skm.roc_auc_score(y, s)) < 1e-9


@pytest.mark.parametrize("n_levels", [None, 3])
def test_roc_curve_matches_brute_force_and_sklearn(n_levels):
  rng = np.random.default_rng(11)
  s, y = _random_case(rng, 300, p_pos=0.3, n_levels=n_levels)
  pf, pd, th = metrics.roc_curve(s, y)
  bpf, bpd, bth = _brute_roc(s, y)
  np.testing.assert_allclose(pf, bpf, atol=1e-15)
  np.testing.assert_allclose(pd, bpd, atol=1e-15)
  np.testing.assert_array_equal(th, bth)
  # sklearn without dropping collinear points gives the same points.
  fpr, tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
  np.testing.assert_allclose(pf, fpr, atol=1e-15)
  np.testing.assert_allclose(pd, tpr, atol=1e-15)


def test_roc_curve_shape_and_ends():
  rng = np.random.default_rng(3)
  s, y = _random_case(rng, 1000, n_levels=7)
  pf, pd, th = metrics.roc_curve(s, y)
  assert pf.shape == pd.shape == th.shape == (np.unique(s).size + 1,)
  assert (pf[0], pd[0], th[0]) == (0.0, 0.0, np.inf)
  assert (pf[-1], pd[-1]) == (1.0, 1.0)
  assert np.all(np.diff(th) < 0)
  assert np.all(np.diff(pf) >= 0) and np.all(np.diff(pd) >= 0)


def test_ties_form_one_diagonal_step():
  s = np.array([3.0, 2.0, 2.0, 2.0, 1.0])
  y = np.array([1, 1, 0, 0, 0])
  pf, pd, th = metrics.roc_curve(s, y)
  np.testing.assert_allclose(pf, [0, 0, 2 / 3, 1])
  np.testing.assert_allclose(pd, [0, 0.5, 1, 1])
  np.testing.assert_array_equal(th, [np.inf, 3, 2, 1])
  # 1*(1/2 tie) + ... : U = (2 wins for 3.0) + (0.5 + 0.5 + 1 for the 2.0 target)
  assert metrics.auc_df(s, y) == pytest.approx(5 / 6, abs=1e-15)


def test_perfect_inverted_constant_detectors():
  y = np.zeros(200, bool)
  y[50:60] = True
  s = y.astype(float) + 0.01 * np.arange(200)  # targets highest (>= 1.5)
  s[y] += 5
  assert metrics.auc_df(s, y) == 1.0
  assert metrics.auc_df(-s, y) == 0.0
  assert metrics.auc_df(np.full(200, 4.2), y) == 0.5
  r = metrics.roc3d(np.full(200, 4.2), y)
  assert r["auc_df"] == 0.5 and r["auc_dt"] == 0.0 and r["auc_ft"] == 0.0
  assert np.isnan(r["auc_snpr"])
  pf, pd, th = metrics.roc_curve(np.full(200, 4.2), y)
  np.testing.assert_array_equal(pf, [0, 1])
  np.testing.assert_array_equal(pd, [0, 1])


def test_perfect_binary_detector_3d():
  y = np.array([0, 0, 0, 1, 1], bool)
  r = metrics.roc3d(y.astype(float), y)
  assert r["auc_df"] == 1.0 and r["auc_dt"] == 1.0 and r["auc_ft"] == 0.0
  assert r["auc_snpr"] == float("inf")
  assert r["auc_odp"] == 2.0 and r["auc_td"] == 2.0 and r["auc_bs"] == 1.0
  assert r["auc_tdbs"] == 1.0
  json.dumps(r)  # Python's json accepts inf (as Infinity)


@pytest.mark.parametrize("n_levels", [None, 4])
def test_roc3d_tau_integrals_match_dense_numeric_integration(n_levels):
  rng = np.random.default_rng(7)
  s, y = _random_case(rng, 2000, p_pos=0.2, n_levels=n_levels)
  s = np.exp(s)  # skewed scores, so mean(z) is not trivially 1/2
  taus = np.linspace(0.0, 1.0, 100_001)
  t, pd, pf = metrics.roc3d_curves(s, y, taus)
  r = metrics.roc3d(s, y)
  # Trapezoid error on a monotone step function <= h/2 * total variation = 5e-6.
  assert abs(np.trapezoid(pd, t) - r["auc_dt"]) < 1e-5
  assert abs(np.trapezoid(pf, t) - r["auc_ft"]) < 1e-5
  # and the closed form is the mean normalised score
  z = (s - s.min()) / (s.max() - s.min())
  assert r["auc_dt"] == pytest.approx(z[y].mean(), abs=1e-12)
  assert r["auc_ft"] == pytest.approx(z[~y].mean(), abs=1e-12)


def test_roc3d_curves_match_brute_force():
  rng = np.random.default_rng(5)
  s, y = _random_case(rng, 400, n_levels=6)
  z = (s - s.min()) / (s.max() - s.min())
  taus = np.concatenate([np.linspace(0, 1, 53), np.unique(z)])  # incl. exact ties
  _, pd, pf = metrics.roc3d_curves(s, y, taus)
  np.testing.assert_allclose(pd, [(z[y] >= t).mean() for t in taus], atol=1e-15)
  np.testing.assert_allclose(pf, [(z[~y] >= t).mean() for t in taus], atol=1e-15)
  assert pd[0] == 1.0 and pf[0] == 1.0  # tau = 0: everything detected


def test_roc3d_composites_and_keys():
  rng = np.random.default_rng(1)
  s, y = _random_case(rng, 800)
  r = metrics.roc3d(s, y)
  assert tuple(r) == metrics.ROC3D_KEYS
  assert set(r) == {"auc_df", "auc_ft", "auc_dt", "auc_td", "auc_bs", "auc_tdbs",
                    "auc_odp", "auc_snpr"}
  assert all(type(v) is float for v in r.values())
  assert r["auc_td"] == pytest.approx(r["auc_df"] + r["auc_dt"])
  assert r["auc_bs"] == pytest.approx(r["auc_df"] - r["auc_ft"])
  assert r["auc_tdbs"] == pytest.approx(r["auc_dt"] - r["auc_ft"])
  assert r["auc_odp"] == pytest.approx(r["auc_df"] + r["auc_dt"] - r["auc_ft"])
  assert r["auc_snpr"] == pytest.approx(r["auc_dt"] / r["auc_ft"])
  assert 0 < r["auc_ft"] < r["auc_dt"] < 1
  json.loads(json.dumps(r))


def test_auc_df_invariant_to_monotone_transforms_tau_areas_affine_invariant():
  rng = np.random.default_rng(9)
  s, y = _random_case(rng, 1000, n_levels=30)
  s = s - s.min() + 1.0
  base = metrics.roc3d(s, y)
  for f in (np.log, np.sqrt, lambda v: v ** 3, lambda v: 7 * v - 2, np.exp):
    assert metrics.auc_df(f(s), y) == pytest.approx(base["auc_df"], abs=1e-12)
  # The tau areas are invariant to positive affine maps only (min-max inside).
  aff = metrics.roc3d(3.5 * s + 100, y)
  for k in metrics.ROC3D_KEYS:
    assert aff[k] == pytest.approx(base[k], rel=1e-9)
  assert metrics.roc3d(s ** 3, y)["auc_dt"] != pytest.approx(base["auc_dt"], rel=1e-3)


def test_label_dtypes_equivalent():
  rng = np.random.default_rng(2)
  s, y = _random_case(rng, 300)
  want = metrics.roc3d(s, y)
  for lab in (y.astype(np.uint8), y.astype(np.int64), y.astype(np.float32)):
    assert metrics.roc3d(s, lab) == want
  assert metrics.roc3d(s.astype(np.float32), y)["auc_df"] == pytest.approx(
      want["auc_df"], abs=1e-6)


def test_evaluate_flattens_row_major():
  rng = np.random.default_rng(4)
  s, y = _random_case(rng, 12 * 9)
  r = metrics.evaluate(s.reshape(12, 9), y.reshape(12, 9))
  assert r == metrics.roc3d(s, y)


@pytest.mark.parametrize(
    "scores, labels, match",
    [
        (np.zeros(5), np.array([0, 1, 0, 1]), r"differ in size.*\(5,\).*\(4,\)"),
        (np.arange(4.0), np.array([0, 1, 2, 1]), r"binary.*2"),
        (np.arange(4.0), np.array([0, 0.5, 1, 1]), r"binary.*0\.5"),
        (np.arange(4.0), np.zeros(4), r"both classes.*no target"),
        (np.arange(4.0), np.ones(4), r"both classes.*no background"),
        (np.array([0.0, np.nan, 1, 2]), np.array([0, 1, 0, 1]), r"finite.*index 1"),
        (np.array([0.0, 1, np.inf, 2]), np.array([0, 1, 0, 1]), r"finite"),
        (np.zeros(0), np.zeros(0), r"empty"),
        (np.array(["a", "b"]), np.array([0, 1]), r"numeric"),
    ],
)
def test_errors(scores, labels, match):
  for fn in (metrics.roc_curve, metrics.auc_df, metrics.roc3d):
    with pytest.raises(SceneError, match=match):
      fn(scores, labels)
  with pytest.raises(ValueError):  # SceneError is a ValueError
    metrics.auc_df(scores, labels)


def test_evaluate_shape_error_names_both_shapes():
  with pytest.raises(SceneError, match=r"\(4, 5\).*\(5, 4\)"):
    metrics.evaluate(np.zeros((4, 5)), np.zeros((5, 4)))


@pytest.mark.realdata
@pytest.mark.parametrize("name, want", [("abu-airport-1", 0.8221),
                                        ("hydice-urban", 0.9932)])
def test_global_rx_reference_auc_on_real_scenes(data_dir, name, want):
  """Global RX in float64 reproduces the AUC(D,F) published in data/README.md."""
  mat = scipy.io.loadmat(data_dir / f"{name}.mat")
  cube = mat["data"].astype(np.float64)
  gt = mat["map"].astype(bool)
  x_nb = cube.reshape(-1, cube.shape[-1])
  xc = x_nb - x_nb.mean(0)
  cov = xc.T @ xc / x_nb.shape[0]
  rx = np.einsum("nb,bc,nc->n", xc, np.linalg.pinv(cov), xc).reshape(gt.shape)
  r = metrics.evaluate(rx, gt)
  assert round(r["auc_df"], 4) == want
  assert r["auc_df"] == pytest.approx(skm.roc_auc_score(gt.ravel(), rx.ravel()), abs=1e-9)
  assert 0 <= r["auc_ft"] < r["auc_dt"] <= 1


def test_partial_auc_against_the_truncated_sklearn_curve():
  """The normalised area of the ROC up to FAR 1e-2, on the exact curve (sklearn's
  roc_curve, truncated and interpolated by hand); perfect = 1, bad range refused."""
  rng = np.random.default_rng(3)
  labels = np.zeros(5000, bool)
  labels[:60] = True
  scores = rng.standard_normal(5000) + 2.5 * labels
  fpr, tpr, _ = skm.roc_curve(labels, scores, drop_intermediate=False)
  keep = fpr <= 1e-2
  x = np.append(fpr[keep], 1e-2)
  y = np.append(tpr[keep], np.interp(1e-2, fpr, tpr))
  want = float(np.sum(np.diff(x) * (y[1:] + y[:-1])) / 2 / 1e-2)
  assert metrics.partial_auc_df(scores, labels) == pytest.approx(want, rel=1e-9)
  assert metrics.partial_auc_df(labels * 3.0 + rng.random(5000), labels) == pytest.approx(1.0)
  with pytest.raises(ValueError, match="far_max"):
    metrics.partial_auc_df(scores, labels, 0.0)
