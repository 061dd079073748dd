"""Tests for lrrjax.autoad (Auto-AD baseline).

Every training run uses the same shape (20, 28, 6), channels=8, scales=3 so
the jitted train step compiles once for the whole file.
"""

import types

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lrrjax import autoad
from lrrjax.errors import ConfigError, SceneError

H, W, B = 20, 28, 6          # neither a multiple of 32 nor of 2**scales
SMALL = dict(channels=8, scales=3)
ANOMALIES = ((5, 5), (5, 20), (14, 9), (15, 22))


def _synthetic_cube(seed=0):
  """Smooth two-endmember background, 4 single-pixel anomalies of a 3rd."""
  rng = np.random.default_rng(seed)
  t = np.linspace(0.0, 1.0, B)
  e1, e2, e3 = 0.3 + 0.4 * t, 0.7 - 0.3 * t, 0.5 + 0.4 * np.cos(6 * t)
  yy, xx = np.mgrid[0:H, 0:W]
  a = (0.5 + 0.4 * np.sin(xx / 6.0) * np.cos(yy / 5.0))[..., None]
  cube = a * e1 + (1 - a) * e2 + 0.005 * rng.standard_normal((H, W, B))
  for i, j in ANOMALIES:
    cube[i, j] = e3
  mask = np.zeros((H, W), bool)
  mask[tuple(np.array(ANOMALIES).T)] = True
  return (1000 * cube).astype(np.float32), mask   # raw-like scale


@pytest.fixture(scope="module")
def trained():
  cube, mask = _synthetic_cube()
  scores, info = autoad.auto_ad(cube, iters=101, seed=0, plateau=None,
                                return_info=True, **SMALL)
  return cube, mask, scores, info


# ------------------------------------------------------------ pure pieces


def test_residual_weights_match_numpy_oracle():
  rng = np.random.default_rng(1)
  r = rng.gamma(2.0, 0.3, size=(7, 9)).astype(np.float32)
  r[3, 4] = 50.0                                   # a strong anomaly
  r64 = r.astype(np.float64)
  # Official code: w = r_max - r, then min-max normalised.
  v = r64.max() - r64
  expect = (v - v.min()) / (v.max() - v.min())
  got = np.asarray(autoad.residual_weights(jnp.asarray(r)))
  np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-6)
  assert got[3, 4] == 0.0 and got.max() == pytest.approx(1.0)
  # Constant residual: official code would give 0/0; we give all ones.
  const = np.asarray(autoad.residual_weights(jnp.full((3, 5), 0.7)))
  np.testing.assert_array_equal(const, np.ones((3, 5)))


def test_pixel_residual_matches_numpy():
  rng = np.random.default_rng(2)
  a, b = rng.random((2, 4, 5, 3))
  got = np.asarray(autoad.pixel_residual(jnp.asarray(a), jnp.asarray(b)))
  np.testing.assert_allclose(got, ((a - b) ** 2).sum(-1), rtol=1e-5)


def _official_stop(losses, thres, window=50):
  """Literal port of the official AD_main_loop.py ring buffer; returns the j
  after which it stops, or None."""
  loss_np = np.zeros(window, np.float32)
  loss_last = 0.0
  for j, loss in enumerate(losses):
    if j >= 1:
      index = j - int(j / window) * window
      loss_np[index - 1] = abs(loss - loss_last)
      if j % window == 0 and np.mean(loss_np) < thres:
        return j
    loss_last = loss
  return None


def _first_stop(losses, thres, window=50):
  for j in range(len(losses)):
    if autoad.plateau_stop(losses, j, thres, window):
      return j
  return None


def test_plateau_rule_on_made_up_sequences():
  thr = 1.5e-5
  const = np.ones(120)
  assert not autoad.plateau_stop(const, 0, thr)
  assert not autoad.plateau_stop(const, 49, thr)
  assert autoad.plateau_stop(const, 50, thr)
  assert not autoad.plateau_stop(const, 51, thr)        # only when j % 50 == 0
  assert not autoad.plateau_stop(const, 50, None)
  assert not autoad.plateau_stop(const, 50, 0.0)
  # Linear decrease: mean |dL| = slope exactly.
  slow = 1.0 - 1e-5 * np.arange(200)
  fast = 1.0 - 2e-5 * np.arange(200)
  assert autoad.plateau_stop(slow, 50, thr)
  assert not autoad.plateau_stop(fast, 50, thr)
  assert not any(autoad.plateau_stop(fast, j, thr) for j in range(200))
  # One jump of 1e-3 between L_49 and L_50: in the window of j=50
  # (diffs k=1..50, mean 2e-5 -> no stop) but not of j=100 (k=51..100).
  jump = np.ones(150)
  jump[50:] -= 1e-3
  assert not autoad.plateau_stop(jump, 50, thr)
  assert autoad.plateau_stop(jump, 100, thr)
  # Jump between L_50 and L_51 belongs to the j=100 window instead.
  jump2 = np.ones(150)
  jump2[51:] -= 1e-3
  assert autoad.plateau_stop(jump2, 50, thr)
  assert not autoad.plateau_stop(jump2, 100, thr)


def test_plateau_rule_matches_official_ring_buffer():
  rng = np.random.default_rng(3)
  stops = set()
  for trial in range(200):
    n = 400
    scale = 10.0 ** rng.uniform(-6, -4)
    decay = np.exp(-np.arange(n) / rng.uniform(20, 200))
    losses = 0.01 + np.cumsum(rng.standard_normal(n) * scale * decay)
    losses = losses.astype(np.float32).astype(np.float64)
    expect = _official_stop(losses, 1.5e-5)
    assert _first_stop(losses, 1.5e-5) == expect, trial
    stops.add(expect)
  assert len(stops) >= 3          # the sequences exercise several outcomes


# ---------------------------------------------------------- architecture


def _dip_skip_param_count(c_in, c_out, ch, scales, skip):
  """Trainable scalars of DIP skip(c_in, c_out, [ch]*S, [ch]*S, [skip]*S),
  counted from models/skip.py (conv = k*k*in*out + out, BN = 2*c)."""
  total, inp = 0, c_in
  for i in range(scales):
    k = ch                                     # deeper branch channels
    if skip:
      total += inp * skip + skip + 2 * skip    # 1x1 conv + BN
    total += 9 * inp * ch + ch + 2 * ch        # 3x3 stride-2 + BN
    total += 9 * ch * ch + ch + 2 * ch         # 3x3 + BN
    total += 2 * (skip + k)                    # BN after concat
    total += 9 * (skip + k) * ch + ch + 2 * ch  # 3x3 up + BN
    total += ch * ch + ch + 2 * ch             # 1x1 up + BN
    inp = ch
  return total + ch * c_out + c_out            # final 1x1 conv


@pytest.mark.parametrize("c_in,ch,scales,skip", [
    (6, 8, 3, None), (6, 8, 3, 4), (5, 16, 2, 0), (205, 128, 5, None)])
def test_param_count_matches_dip_skip(c_in, ch, scales, skip):
  net = nnx.eval_shape(                  # abstract: shapes only, no compute
      lambda: autoad.SkipNet(c_in, c_in, ch, scales, skip, rngs=nnx.Rngs(0)))
  s = ch if skip is None else skip
  assert autoad.count_params(net) == _dip_skip_param_count(
      c_in, c_in, ch, scales, s)


@pytest.mark.parametrize("h,w", [(13, 17), (32, 32), (2, 3), (100, 100)])
def test_skipnet_preserves_any_size(h, w):
  # Abstract evaluation (shapes only): stride-2 gives ceil(n/2), the upsampled
  # branch is cropped back, so any H, W >= 2 maps to itself.
  net = nnx.eval_shape(lambda: autoad.SkipNet(3, 4, 4, 5, rngs=nnx.Rngs(0)))
  y = nnx.eval_shape(lambda m, x: m(x), net, jnp.zeros((1, h, w, 3)))
  assert y.shape == (1, h, w, 4)


# --------------------------------------------------------------- training


def test_output_shape_dtype_non_multiple_of_32():
  cube, _ = _synthetic_cube()
  scores = autoad.auto_ad(cube, iters=3, **SMALL)
  assert scores.shape == (H, W) and scores.dtype == np.float32
  assert np.all(np.isfinite(scores)) and np.all(scores >= 0)


def test_deterministic_for_seed():
  cube, _ = _synthetic_cube()
  a, ia = autoad.auto_ad(cube, iters=3, seed=7, return_info=True, **SMALL)
  b, ib = autoad.auto_ad(cube, iters=3, seed=7, return_info=True, **SMALL)
  c = autoad.auto_ad(cube, iters=3, seed=8, **SMALL)
  np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(ia["loss_history"], ib["loss_history"])
  assert not np.array_equal(a, c)


def test_loss_decreases(trained):
  _, _, _, info = trained
  loss = info["loss_history"]
  assert info["iterations"] == 101 and loss.shape == (101,)
  assert not info["stopped_early"]
  assert np.all(np.isfinite(loss))
  # Before the first weight refresh (j = 100) the loss is the plain MSE.
  assert loss[45:50].mean() < 0.5 * loss[:5].mean()


def test_anomalies_score_high_and_get_low_weight(trained):
  _, mask, scores, info = trained
  bg = scores[~mask]
  assert np.all(scores[mask] > np.median(bg))
  assert scores[mask].min() > np.quantile(bg, 0.95)
  # The refresh at j = 100 down-weights the badly reconstructed anomalies.
  w = info["weights"]
  assert w.min() == 0.0 and w.max() == pytest.approx(1.0)
  assert np.all(w[mask] < np.median(w[~mask]))


def test_plateau_stops_training():
  cube, _ = _synthetic_cube()
  # A huge threshold stops at the first check, j = 50 (51 steps run).
  _, info = autoad.auto_ad(cube, iters=200, plateau=1.0, return_info=True,
                           **SMALL)
  assert info["stopped_early"] and info["iterations"] == 51
  assert info["loss_history"].shape == (51,)


def test_progress_callback_and_scene_input():
  cube, _ = _synthetic_cube()
  calls = []
  scene = types.SimpleNamespace(cube=cube, name="toy")
  s1, info = autoad.auto_ad(scene, iters=3, progress=lambda i, l: calls.append(
      (i, l)), progress_every=2, return_info=True, **SMALL)
  assert [i for i, _ in calls] == [2, 3]
  assert [l for _, l in calls] == pytest.approx(
      info["loss_history"][[1, 2]].tolist())
  np.testing.assert_array_equal(s1, autoad.method_fn(scene, iters=3, **SMALL))


@pytest.mark.parametrize("bad", [
    np.arange(20.0).reshape(4, 5),                 # not 3-D
    np.ones((4, 5, 3)),                            # constant
    np.full((4, 5, 3), np.nan),                    # not finite
    np.arange(15.0).reshape(1, 5, 3),              # H < 2
    np.array([[["a", "b"]]])])                     # not numeric
def test_bad_cube_raises_scene_error(bad):
  with pytest.raises(SceneError, match="auto_ad"):
    autoad.auto_ad(bad, iters=1, **SMALL)


@pytest.mark.parametrize("kw", [
    dict(iters=0), dict(lr=-1.0), dict(channels=0), dict(scales=0),
    dict(skip_channels=-1), dict(reg_noise_std=-0.1), dict(iters=2.5)])
def test_bad_config_raises_config_error(kw):
  cube, _ = _synthetic_cube()
  with pytest.raises(ConfigError, match="auto_ad"):
    autoad.auto_ad(cube, **{**SMALL, **kw})


def test_registered_in_detector_registry():
  from lrrjax import detectors
  spec = detectors.get_method("auto-ad")
  assert spec.fn is autoad.method_fn and spec.description == autoad.DESCRIPTION
  cube, _ = _synthetic_cube()
  scene = types.SimpleNamespace(cube=cube, name="toy")
  got = detectors.run_method("auto-ad", scene, iters=3, **SMALL)
  np.testing.assert_array_equal(got, autoad.auto_ad(cube, iters=3, **SMALL))
  with pytest.raises(ConfigError, match="no parameter"):
    detectors.run_method("auto-ad", scene, iterations=3)
