"""Tests for lrrjax.plots: every figure is a readable PNG; false_colour maths."""

import matplotlib
import matplotlib.image
import numpy as np
import pytest
import scipy.io

from lrrjax import metrics, plots
from lrrjax.errors import SceneError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _read_png(path):
  """Checks the magic bytes and returns the decoded image (h, w, c)."""
  assert path.exists()
  assert path.read_bytes()[:8] == PNG_MAGIC
  img = matplotlib.image.imread(path)
  assert img.ndim == 3 and img.shape[2] in (3, 4)
  assert img.shape[0] > 100 and img.shape[1] > 100
  assert img[..., :3].std() > 0.01  # not a blank canvas
  return img


def _scene(h=20, w=24, b=30, seed=0):
  rng = np.random.default_rng(seed)
  cube = rng.normal(size=(h, w, b)).astype(np.float32) + np.linspace(0, 3, b)
  gt = np.zeros((h, w), bool)
  gt[5:8, 6:9] = True
  gt[14, 20] = True
  scores = rng.random((h, w)) + 2.0 * gt
  return cube, scores, gt


def test_false_colour_default_bands_and_stretch():
  h, w, b = 50, 40, 21
  ramp = np.arange(h * w, dtype=np.float64).reshape(h, w)
  cube = np.stack([ramp * (k + 1) for k in range(b)], axis=-1)
  cube[0, 0, 15] = 1e9  # an outlier the 2-98 % stretch ignores
  rgb = plots.false_colour(cube)
  assert rgb.shape == (h, w, 3) and rgb.dtype == np.float64
  assert rgb.min() == 0.0 and rgb.max() == 1.0
  # Channel c = band at 75/50/25 %: the ramp stretched between its percentiles.
  lo, hi = np.percentile(ramp, [2, 98])
  want = np.clip((ramp - lo) / (hi - lo), 0, 1)
  np.testing.assert_allclose(rgb[..., 1], want, atol=1e-12)
  np.testing.assert_allclose(rgb[..., 2], want, atol=1e-12)
  # The outlier shifts each percentile by one rank only (a min-max stretch
  # would squash the rest to ~1e-6).
  np.testing.assert_allclose(rgb[1:, :, 0], want[1:], atol=1e-3)
  np.testing.assert_allclose(np.mean(rgb[..., 1] == 0), 0.02, atol=0.001)
  np.testing.assert_allclose(np.mean(rgb[..., 1] == 1), 0.02, atol=0.001)


def test_false_colour_picks_bands():
  cube = np.zeros((4, 5, 8))
  cube[..., 3] = np.arange(20).reshape(4, 5)  # only band 3 varies
  assert plots.false_colour(cube).max() == 0.0  # default bands 5, 4, 2 (constant)
  rgb = plots.false_colour(cube, bands=(3, 0, 3))
  assert rgb[..., 0].max() == 1.0 and rgb[..., 1].max() == 0.0
  np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])
  with pytest.raises(SceneError, match=r"\[0, 8\).*\(4, 5, 8\)"):
    plots.false_colour(cube, bands=(0, 1, 8))
  with pytest.raises(SceneError, match=r"3-D.*\(4, 5\)"):
    plots.false_colour(cube[..., 0])
  assert plots.false_colour(cube[..., :1]).shape == (4, 5, 3)  # one band: grey


def test_save_detection(tmp_path):
  cube, scores, gt = _scene()
  p2 = plots.save_detection(tmp_path / "a" / "b" / "det.png", cube, scores, title="t")
  p3 = plots.save_detection(tmp_path / "det3.png", cube, scores, gt, title="with gt")
  assert p2 == tmp_path / "a" / "b" / "det.png"
  assert _read_png(p3).shape[1] > _read_png(p2).shape[1]  # extra gt panel
  with pytest.raises(SceneError, match=r"\(3, 3\).*\(20, 24\)"):
    plots.save_detection(tmp_path / "bad.png", cube, np.zeros((3, 3)))
  with pytest.raises(SceneError, match=r"gt_hw shape \(24, 20\)"):
    plots.save_detection(tmp_path / "bad.png", cube, scores, gt.T)


def test_save_detection_accepts_scene_like(tmp_path):
  cube, scores, gt = _scene()

  class SceneLike:  # duck-typed lrrjax.io.Scene (cube, gt)
    pass

  s = SceneLike()
  s.cube, s.gt = cube, gt
  p = plots.save_detection(tmp_path / "scene.png", s, scores, "title as 4th arg")
  q = plots.save_detection(tmp_path / "cube.png", cube, scores, gt)
  assert _read_png(p).shape == _read_png(q).shape  # gt panel taken from scene


def test_save_roc(tmp_path):
  cube, scores, gt = _scene()
  pf, pd, _ = metrics.roc_curve(scores, gt)
  rng = np.random.default_rng(1)
  pf2, pd2, _ = metrics.roc_curve(rng.random(gt.shape), gt)
  p = plots.save_roc(tmp_path / "roc.png", {"good": (pf, pd), "random": (pf2, pd2)},
                     title="ROC")
  _read_png(p)
  with pytest.raises(SceneError, match="pf shape"):
    plots.save_roc(tmp_path / "bad.png", {"x": (pf, pd[:-1])})


def test_save_grid(tmp_path):
  rows = ["s1", "s2"]
  cols = ["m1", "m2", "m3"]
  maps, gts = {}, {}
  for i, r in enumerate(rows):
    _, scores, gt = _scene(seed=i)
    gts[r] = gt
    for c in cols:
      maps[(r, c)] = scores
  maps[("s1", "m2")] = np.full(gts["s1"].shape, 3.0)  # constant: no warning
  bad = maps[("s2", "m3")].copy()
  bad[0, 0] = np.nan  # a diverged method is still drawn
  maps[("s2", "m3")] = bad
  del maps[("s2", "m1")]  # missing cell -> "n/a"
  with_gt = _read_png(plots.save_grid(tmp_path / "grid.png", rows, cols, maps, gts))
  no_gt = _read_png(plots.save_grid(tmp_path / "grid2.png", rows, cols, maps, None))
  assert with_gt.shape[1] > no_gt.shape[1]
  one_row = _read_png(plots.save_grid(tmp_path / "grid3.png", rows[:1], cols, maps, gts))
  assert with_gt.shape[0] > one_row.shape[0]
  with pytest.raises(SceneError, match="at least one"):
    plots.save_grid(tmp_path / "e.png", [], cols, maps, gts)


def test_save_boxplot(tmp_path):
  rows = ["s1", "s2"]
  cols = ["m1", "m2"]
  maps, gts = {}, {}
  for i, r in enumerate(rows):
    _, scores, gt = _scene(seed=i)
    gts[r] = gt
    maps[(r, "m1")] = scores
    maps[(r, "m2")] = -scores
  _read_png(plots.save_boxplot(tmp_path / "box.png", rows, cols, maps, gts))
  with pytest.raises(SceneError, match="no ground truth for scene 's2'"):
    plots.save_boxplot(tmp_path / "e.png", rows, cols, maps, {"s1": gts["s1"]})
  with pytest.raises(SceneError, match=r"shape \(20, 24\).*\(24, 20\)"):
    plots.save_boxplot(tmp_path / "e.png", ["s1"], cols, maps, {"s1": gts["s1"].T})


def test_save_curves(tmp_path):
  x = np.arange(1, 51)
  ys = {"loss": 1.0 / x, "aux": np.exp(-x / 10.0)}
  _read_png(plots.save_curves(tmp_path / "c.png", x, ys, "iteration", "loss", "t",
                              logy=True))
  # Non-positive values under logy are masked; all non-positive stays linear.
  _read_png(plots.save_curves(tmp_path / "c2.png", None,
                              {"a": np.linspace(-1, 1, 30), "b": [3, 2, 1]},
                              "i", "v", "", logy=True))
  _read_png(plots.save_curves(tmp_path / "c3.png", None, {"neg": -np.arange(1.0, 9.0)},
                              "i", "v", "", logy=True))
  with pytest.raises(SceneError, match="has 3 values but x has 50"):
    plots.save_curves(tmp_path / "e.png", x, {"b": [1, 2, 3]})


def test_no_global_matplotlib_state_change(tmp_path):
  backend = matplotlib.get_backend()
  rc = dict(matplotlib.rcParams)
  cube, scores, gt = _scene()
  plots.save_detection(tmp_path / "d.png", cube, scores, gt)
  assert matplotlib.get_backend() == backend
  assert dict(matplotlib.rcParams) == rc


@pytest.mark.realdata
def test_save_detection_real_scene_crop(data_dir, tmp_path):
  mat = scipy.io.loadmat(data_dir / "abu-airport-1.mat")
  cube = mat["data"][:60, :60].astype(np.float32)
  gt = mat["map"][:60, :60].astype(bool)
  scores = np.linalg.norm(cube - cube.mean((0, 1)), axis=-1)
  rgb = plots.false_colour(cube)
  assert 0.0 <= rgb.min() and rgb.max() <= 1.0 and rgb.std() > 0.05
  _read_png(plots.save_detection(tmp_path / "real.png", cube, scores, gt, "airport-1"))
