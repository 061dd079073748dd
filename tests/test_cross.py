"""Cross-scene training of the generalised LRR-Net+: implants, training, resume,
data parallelism, the parameter file, the CLI."""

import json
import textwrap

import numpy as np
import pytest

from lrrjax import cli, io, synthetic
from lrrjax.errors import ConfigError, LrrjaxError
from lrrjax.lrr import config as lrr_config
from lrrjax.lrr import cross, implants
from test_sharding import _run_on_two_virtual_devices  # tests/ is on sys.path (pytest rootdir mode)


def tiny_config(**kw):
  cfg = lrr_config.get_general_config()
  base = {"net.stages": 2, "net.n_clusters": 3, "net.per_cluster": 2,
          "train.versions_per_scene": 2, "train.neg_pixels": 64, "train.head_steps": 30,
          "train.crop": 16, "train.crops_per_scene": 2, "train.batch_scenes": 2,
          "train.checkpoint_every": 1}
  base.update(kw)
  return cli.apply_overrides(cfg, base)


@pytest.fixture(scope="module")
def cubes():
  return [io.normalize(synthetic.make_scene(24, 24, b, n_targets=3, seed=b).cube)
          for b in (20, 26)]


def test_implants_deterministic_and_as_documented():
  cube = io.normalize(synthetic.make_scene(40, 40, 16, n_targets=2, seed=1).cube)
  donor = np.random.default_rng(0).uniform(size=(50, 23)).astype(np.float32)
  a = implants.implant(cube, np.random.default_rng(5), [donor])
  b = implants.implant(cube, np.random.default_rng(5), [donor])
  np.testing.assert_array_equal(a[0], b[0])
  out, mask, recs = a
  assert implants.ImplantSpec().n_min <= len(recs) <= implants.ImplantSpec().n_max
  assert mask.sum() == sum(r["pixels"] for r in recs)
  np.testing.assert_array_equal(out[~mask], cube[~mask])  # only target pixels change
  for r in recs:
    lo, hi = (0.1, 0.5) if r["kind"] == "subpixel" else (0.5, 1.0)
    assert lo <= r["fill"] <= hi and r["source"] in ("donor", "mixture")
  assert implants.resample_bands(np.arange(5.0), 9)[[0, -1]].tolist() == [0.0, 4.0]


def test_distractors_are_large_background_patches():
  cube = io.normalize(synthetic.make_scene(64, 64, 16, n_targets=2, seed=1).cube)
  donor = np.random.default_rng(0).uniform(size=(50, 23)).astype(np.float32)
  spec = implants.ImplantSpec(n_distractors=(2, 3))
  out, mask, recs = implants.implant(cube, np.random.default_rng(7), [donor], spec)
  dis = [r for r in recs if r["kind"] == "distractor"]
  tgt = [r for r in recs if r["kind"] != "distractor"]
  assert 2 <= len(dis) <= 3 and tgt
  assert mask.sum() == sum(r["pixels"] for r in tgt)  # distractors are not targets
  lo, hi = implants.DISTRACTOR_SIDES
  changed = np.any(out != cube, axis=2) & ~mask
  for r in dis:
    assert lo * lo <= r["pixels"] <= hi * hi and r["pixels"] > implants.MAX_PIXELS
  assert changed.sum() == sum(r["pixels"] for r in dis)  # each patch changed whole
  # off by default, and then the random stream (the version-2 implants) is unchanged
  a = implants.implant(cube, np.random.default_rng(7), [donor])
  b = implants.implant(cube, np.random.default_rng(7), [donor], implants.ImplantSpec())
  np.testing.assert_array_equal(a[0], b[0])
  assert all(r["kind"] != "distractor" for r in a[2])


def test_head_training_lowers_the_ranking_loss_and_round_trips(cubes, tmp_path):
  cfg = tiny_config()
  res = cross.train_general(cubes, cfg)
  assert res.history["head_loss"][-1] < res.history["head_loss"][0]
  path = cross.save_pretrained(tmp_path / "p.json", res.model, cfg, ["a", "b"])
  model, cfg2, meta = cross.load_pretrained(path)
  assert meta["scenes"] == ["a", "b"] and meta["provenance"]["git"] is not None
  other = synthetic.make_scene(20, 22, 33, n_targets=2, seed=9).cube  # another band count
  np.testing.assert_allclose(cross.score_cube(model, cfg2, other),
                             cross.score_cube(res.model, cfg, other), rtol=1e-5, atol=1e-6)


def test_partial_auc_term_of_the_head_loss():
  """The top-k term ranks the implants against each version's hardest background
  pixels: with k = Q it is the full loss, with smaller k it is larger (harder
  negatives), and weight 0 leaves the full loss."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import general  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr.cross import head as head_mod  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  f = general.N_FEATURES
  pos = jnp.asarray(rng.random((3, f, 5), np.float32) + 0.5)
  neg = jnp.asarray(rng.random((3, f, 40), np.float32))
  posw = jnp.ones((3, 5), jnp.float32)
  hp = general.HeadParams(jnp.asarray(rng.standard_normal(f).astype(np.float32)))
  full = float(head_mod._head_loss(hp, (pos, posw, neg)))  # pylint: disable=protected-access
  k_all = float(head_mod._head_loss(hp, (pos, posw, neg), 40, 0.5))  # pylint: disable=protected-access
  k_few = float(head_mod._head_loss(hp, (pos, posw, neg), 4, 1.0))  # pylint: disable=protected-access
  none = float(head_mod._head_loss(hp, (pos, posw, neg), 4, 0.0))  # pylint: disable=protected-access
  assert k_all == pytest.approx(full, rel=1e-6) and none == full
  z = np.einsum("f,vfq->vq", np.log1p(np.exp(np.asarray(hp.a_f))), np.asarray(neg))
  zp = np.einsum("f,vfm->vm", np.log1p(np.exp(np.asarray(hp.a_f))), np.asarray(pos))
  top = np.sort(z, axis=1)[:, -4:]
  want = np.mean(np.log1p(np.exp(top[:, None, :] - zp[:, :, None])))
  assert k_few == pytest.approx(want, rel=1e-5) and k_few > full
  cfg = tiny_config(**{"train.head_neg_top": 0.1, "train.head_neg_top_weight": 0.5})
  res = cross.train_general([io.normalize(synthetic.make_scene(24, 24, 20, n_targets=3,
                                                               seed=20).cube)], cfg)
  assert res.history["head_loss"][-1] < res.history["head_loss"][0]


def test_parameter_file_errors_name_the_file(cubes, tmp_path):
  cfg = tiny_config(**{"train.head_steps": 1})
  good = cross.save_pretrained(tmp_path / "p.json", cross.model_from_config(cfg), cfg, [])
  obj = json.loads(good.read_text())
  cases = {"garbage.json": "{not json", "other.json": json.dumps({"format": "x"}),
           "version.json": json.dumps({**obj, "version": 99}),
           "shape.json": json.dumps({**obj, "params": {**obj["params"], "a_f": [1.0]}})}
  for name, text in cases.items():
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=name):
      cross.load_pretrained(tmp_path / name)
  with pytest.raises(ConfigError, match="missing.json"):
    cross.load_pretrained(tmp_path / "missing.json")


def test_joint_pool_keeps_every_implanted_pixel(cubes, monkeypatch):
  """Each crop's positives are all its implanted pixels (blobs up to MAX_PIXELS
  included), none cut off by the pool's fixed width."""
  masks = []
  real = implants.implant

  def recording(*args, **kw):
    out = real(*args, **kw)
    masks.append(out[1])
    return out

  monkeypatch.setattr(implants, "implant", recording)
  pool = cross.build_pool(cubes, tiny_config(**{"train.crop": 24, "train.crops_per_scene": 4}))
  assert len(masks) == pool.pos_pm.shape[0] == 8
  assert pool.pos_pm.shape[1] == implants.ImplantSpec().n_max * implants.MAX_PIXELS
  # some crop holds more implanted pixels than the old cap (n_max * 9) kept
  assert pool.posw_pm.sum(axis=1).max() > implants.ImplantSpec().n_max * 9
  for p, mask in enumerate(masks):
    k = int(pool.posw_pm[p].sum())
    np.testing.assert_array_equal(np.sort(pool.pos_pm[p, :k]), np.flatnonzero(mask.ravel()))


def test_joint_training_resumes_to_the_same_result(cubes, tmp_path):
  cfg = tiny_config(**{"train.joint_steps": 2, "train.head_steps": 5})
  full = cross.train_general(cubes, cfg, workdir=tmp_path / "a")
  half = tiny_config(**{"train.joint_steps": 1, "train.head_steps": 5})
  cross.train_general(cubes, half, workdir=tmp_path / "b")
  resumed = cross.train_general(cubes, cfg, workdir=tmp_path / "b")
  assert resumed.history["step"] == [1, 2]
  for k, v in cross.params_to_pure(full.model).items():
    np.testing.assert_allclose(cross.params_to_pure(resumed.model)[k], v, rtol=1e-6)
  assert all(resumed.history["finite"])


DP_SCRIPT = textwrap.dedent("""
    import numpy as np, jax
    from lrrjax import io, synthetic, cli
    from lrrjax.lrr import config, cross
    assert len(jax.devices()) == 2
    cubes = [io.normalize(synthetic.make_scene(24, 24, b, n_targets=3, seed=b).cube)
             for b in (20, 26)]
    def cfg(dp):
      c = config.get_general_config()
      return cli.apply_overrides(c, {"net.stages": 2, "net.n_clusters": 3, "net.per_cluster": 2,
          "train.versions_per_scene": 2, "train.neg_pixels": 64, "train.head_steps": 20,
          "train.joint_steps": 2, "train.crop": 16, "train.crops_per_scene": 2,
          "train.batch_scenes": 2, "train.data_parallel": dp})
    a = cross.train_general(cubes, cfg(False))
    b = cross.train_general(cubes, cfg(True))
    np.testing.assert_allclose(b.history["loss"], a.history["loss"], rtol=2e-3)
    for k, v in cross.params_to_pure(a.model).items():
      np.testing.assert_allclose(cross.params_to_pure(b.model)[k], v, rtol=2e-3, atol=1e-5)
    print("dp-ok")
""")


def test_data_parallel_training_matches_single_device():
  _run_on_two_virtual_devices(DP_SCRIPT, "dp-ok")


def _write_npz(path, scene):
  np.savez(path, data=scene.cube, map=scene.gt.astype(np.uint8))


def test_cli_train_folder_then_detect_any_band_count(tmp_path, capsys):
  data = tmp_path / "data"
  data.mkdir()
  for b in (18, 22):
    _write_npz(data / f"s{b}.npz", synthetic.make_scene(24, 24, b, n_targets=3, seed=b))
  work = tmp_path / "work"
  sets = ["--set", "net.stages=2", "--set", "net.n_clusters=3", "--set", "net.per_cluster=2",
          "--set", "train.versions_per_scene=2", "--set", "train.neg_pixels=64",
          "--set", "train.head_steps=10"]
  export = tmp_path / "exported.json"
  assert cli.main(["train", str(data), "--workdir", str(work), "--export", str(export),
                   *sets]) == 0
  assert "across 2 scenes" in capsys.readouterr().out
  assert (work / cross.WORKDIR_FILE).exists() and export.exists()
  rec = json.loads((work / "train.json").read_text())
  assert rec["scenes"] == ["s18", "s22"]
  other = tmp_path / "other.npz"
  _write_npz(other, synthetic.make_scene(20, 26, 31, n_targets=3, seed=4))
  out = tmp_path / "det"
  assert cli.main(["detect", str(other), "--checkpoint", str(work), "--out", str(out)]) == 0
  assert np.load(out / "scores.npy").shape == (20, 26)


def test_cli_train_folder_bad_input(tmp_path, capsys):
  empty = tmp_path / "empty"
  empty.mkdir()
  assert cli.main(["train", str(empty), "--workdir", str(tmp_path / "w")]) == 2
  assert "no scene" in capsys.readouterr().err
  bad = tmp_path / "bad"
  bad.mkdir()
  _write_npz(bad / "ok.npz", synthetic.make_scene(24, 24, 10, n_targets=2, seed=1))
  (bad / "broken.mat").write_bytes(b"not a mat file")
  work = tmp_path / "w2"
  assert cli.main(["train", str(bad), "--workdir", str(work)]) == 2
  err = capsys.readouterr().err
  assert "broken.mat" in err and "Traceback" not in err
  assert not (work / cross.WORKDIR_FILE).exists()


def test_errors_are_lrrjax_errors():
  with pytest.raises(LrrjaxError):
    cross.train_general([], tiny_config())


@pytest.mark.realdata
def test_shipped_parameters_load_and_score_real_scenes(data_dir):
  """The packaged file: readable, trained on the 14 shared scenes, sane scores.

  (These scenes are in its training set -- implants only, no labels: the
  held-out numbers are experiments/generalization.py's.)
  """
  from lrrjax import metrics  # pylint: disable=import-outside-toplevel
  model, cfg, meta = cross.load_pretrained(cross.DEFAULT_PRETRAINED)
  assert len(meta["scenes"]) == 14 and meta["provenance"]["git"]
  for name in ("abu-urban-1", "hydice-urban"):
    sc = io.load_scene(data_dir / f"{name}.mat")
    z = cross.score_cube(model, cfg, sc.cube)
    assert z.shape == sc.gt.shape and np.all(np.isfinite(z))
    assert metrics.evaluate(z, sc.gt)["auc_df"] > 0.95


def test_feature_pool_cache_follows_the_head_features(monkeypatch, tmp_path):
  """A pool cached by another head (other features) is not reused."""
  from lrrjax.lrr import score_head  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr.cross import head  # pylint: disable=import-outside-toplevel
  cfg = lrr_config.get_general_config()
  key = head._pool_key(head._pool_cfg(cfg), ["a", "b"])
  monkeypatch.setattr(score_head, "GUIDED_EPS", 2 * score_head.GUIDED_EPS)
  assert head._pool_key(head._pool_cfg(cfg), ["a", "b"]) != key
