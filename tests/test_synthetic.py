"""Tests for lrrjax.synthetic.make_scene."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lrrjax import io
from lrrjax.errors import ConfigError
from lrrjax.synthetic import make_scene


@pytest.fixture(scope="module")
def scene():
  return make_scene()


def _global_rx(cube_hwb):
  """Squared Mahalanobis distance to the mean, covariance / N, pseudo-inverse (float64)."""
  x = cube_hwb.reshape(-1, cube_hwb.shape[2]).astype(np.float64)
  x = x - x.mean(axis=0)
  cov = x.T @ x / x.shape[0]
  return np.einsum("nb,bc,nc->n", x, np.linalg.pinv(cov), x)


def test_shapes_types_and_range(scene):
  assert isinstance(scene, io.Scene)
  assert scene.shape == (64, 64, 100) and scene.cube.dtype == np.float32
  assert scene.gt.shape == (64, 64) and scene.gt.dtype == bool
  assert scene.name == "synthetic" and scene.source == "synthetic"
  assert 0 <= scene.cube.min() and scene.cube.max() <= 1
  assert np.isfinite(scene.cube).all()
  assert io.constant_bands(scene.cube).size == 0
  io.validate_cube(scene.cube)  # passes the loader's checks
  s = make_scene(height=20, width=30, bands=17, n_endmembers=3, n_targets=4,
                 name="small")
  assert s.shape == (20, 30, 17) and s.name == "small"


def test_deterministic_and_seeds_differ(scene):
  again = make_scene()
  np.testing.assert_array_equal(again.cube, scene.cube)
  np.testing.assert_array_equal(again.gt, scene.gt)
  other = make_scene(seed=1)
  assert not np.array_equal(other.cube, scene.cube)
  assert not np.array_equal(other.gt, scene.gt)


def test_targets_and_gt(scene):
  targets = scene.metadata["targets"]
  assert len(targets) == 12
  # sizes cycle sub-pixel, 1x1, 2x2, 3x3: 3 * (1 + 1 + 4 + 9) pixels
  assert int(scene.gt.sum()) == scene.metadata["n_anomaly"] == 45
  assert sorted({(t["size"], t["subpixel"]) for t in targets}) == [
      (1, False), (1, True), (2, False), (3, False)]
  mark = np.zeros(scene.gt.shape, int)
  for t in targets:
    r, c, s = t["row"], t["col"], t["size"]
    assert r >= 3 and c >= 3 and r + s <= 61 and c + s <= 61  # off the border
    assert (0.1 <= t["fraction"] <= 0.5) if t["subpixel"] else (
        0.6 <= t["fraction"] <= 1.0)
    mark[max(r - 1, 0):r + s + 1, max(c - 1, 0):c + s + 1] += 1  # with a 1 px halo
    assert scene.gt[r:r + s, c:c + s].all()
  assert mark.max() == 1  # halos never overlap: targets do not touch
  assert int((mark > 0).sum()) >= 45


def test_background_is_low_rank(scene):
  k = scene.metadata["endmembers"].shape[0]
  bg_nb = scene.cube[~scene.gt].astype(np.float64)
  sv = np.linalg.svd(bg_nb, compute_uv=False)
  energy = np.cumsum(sv ** 2) / np.sum(sv ** 2)
  assert energy[k] > 0.99  # top K + 1 singular values
  assert energy[k - 2] < 0.9999  # but not rank K - 1: every endmember matters
  # the noise-free background has rank <= K exactly
  clean = scene.metadata["clean"][~scene.gt].astype(np.float64)
  svc = np.linalg.svd(clean, compute_uv=False)
  assert svc[k] < 1e-4 * svc[0]
  a = scene.metadata["abundances"]
  np.testing.assert_allclose(a.sum(axis=-1), 1, atol=1e-5)
  assert a.min() >= 0


def test_noise_level(scene):
  resid = (scene.cube - scene.metadata["clean"])[~scene.gt]
  assert 0.008 < resid.std() < 0.013  # noise_std = 0.01 on average
  quiet = make_scene(noise_std=0.0)
  np.testing.assert_allclose(quiet.cube, np.clip(quiet.metadata["clean"], 0, 1),
                             atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_global_rx_auc_realistic(seed):
  s = make_scene(seed=seed)
  auc = roc_auc_score(s.gt.ravel(), _global_rx(s.cube))
  assert 0.7 < auc < 0.9999, auc


def test_bad_config():
  with pytest.raises(ConfigError, match="height, width"):
    make_scene(height=5)
  with pytest.raises(ConfigError, match="n_endmembers"):
    make_scene(bands=4, n_endmembers=4)
  with pytest.raises(ConfigError, match="noise_std"):
    make_scene(noise_std=-1)
  with pytest.raises(ConfigError, match="cannot place 200 non-touching targets"):
    make_scene(height=16, width=16, n_targets=200)
