"""The generalised LRR-Net+ strip by strip (lrrjax.lrr.tiled)."""

import os

import jax.numpy as jnp
import numpy as np
import pytest

from lrrjax import cli, detectors, io, streaming, synthetic
from lrrjax.errors import ConfigError
from lrrjax.io import lazy, stream
from lrrjax.lrr import admm, general, methods, score_head, tiled
from quantised import assert_scores_match  # tests/ is on sys.path
from test_sharding import _run_on_two_virtual_devices  # tests/ is on sys.path


def _crop(data_dir, name="abu-urban-1", h=36, w=40):
  return io.load_scene(data_dir / f"{name}.mat").cube[:h, :w]


def _weighted(cube_hwb):
  model, cfg = methods.load_general()
  h, w, _ = cube_hwb.shape
  ctx = general.prepare(cube_hwb, gamma0=cfg.net.gamma0)
  x_bn = general.band_weights(ctx.noise_b, model.gamma())[:, None] * ctx.x_bn
  return model, ctx, x_bn, h, w


def test_frozen_unroll_is_the_network_unroll(data_dir):
  """The sample run computes exactly the stages of admm.unroll."""
  model, ctx, x_bn, _, _ = _weighted(_crop(data_dir))
  d0 = x_bn[:, ctx.atoms_k]
  params = model.stage_params(general.spectral_norm(x_bn), x_bn.shape[1])
  ref, _ = admm.unroll(x_bn, admm.project_atoms(d0), params, model.lam,
                       learn_dictionary=True, outlier_k=model.outlier_k, fast_median=True)
  got, ops = tiled.frozen_unroll(x_bn, d0, params, outlier_k=model.outlier_k)
  scale = float(jnp.abs(ref.s_bn).max())
  np.testing.assert_allclose(got.s_bn, ref.s_bn, atol=1e-4 * scale)
  np.testing.assert_allclose(got.d_bk, ref.d_bk, atol=1e-5)
  assert ops.svt_kk.shape == (model.stages, d0.shape[1], d0.shape[1])
  np.testing.assert_allclose(ops.d_next_bk[-1], got.d_bk, atol=1e-6)


def test_frozen_stages_are_per_pixel(data_dir):
  """Applied with the sample's operators, each pixel gets the sample run's values,
  whichever other pixels are in the call."""
  model, ctx, x_bn, _, _ = _weighted(_crop(data_dir))
  params = model.stage_params(general.spectral_norm(x_bn), x_bn.shape[1])
  st, ops = tiled.frozen_unroll(x_bn, x_bn[:, ctx.atoms_k], params, outlier_k=model.outlier_k)
  x_nb = x_bn.T
  s_all, e_all = tiled.apply_frozen(x_nb, ops)  # pixel-major, the scaled (W, Q) form
  scale = float(jnp.abs(st.s_bn).max())
  np.testing.assert_allclose(s_all, st.s_bn.T, atol=1e-4 * scale)
  np.testing.assert_allclose(e_all, (x_bn - st.d_bk @ st.l_kn).T, atol=1e-4 * scale)
  s_norm, e_norms_path = tiled.apply_frozen_norms(x_nb, ops)  # what the strips use
  np.testing.assert_allclose(s_norm, np.linalg.norm(np.asarray(s_all), axis=1),
                             rtol=1e-5, atol=1e-6 * scale)
  np.testing.assert_allclose(e_norms_path, e_all, rtol=1e-6, atol=1e-7 * scale)
  pick = np.random.default_rng(0).permutation(x_nb.shape[0])[:97]
  s_sub, e_sub = tiled.apply_frozen(x_nb[pick], ops)
  np.testing.assert_allclose(s_sub, s_all[pick], atol=1e-5 * scale)
  np.testing.assert_allclose(e_sub, e_all[pick], atol=1e-5 * scale)


def test_strips_equal_the_whole_scene_when_the_sample_holds_every_pixel(tmp_path, data_dir):
  """N <= P (every benchmark scene): the tiled path is the whole-scene network."""
  scene = io.load_scene(data_dir / "abu-airport-1.mat")
  np.save(tmp_path / "c.npy", scene.cube)
  ref = methods.lrrnet_plus(scene)
  spec = detectors.get_method("lrrnet-plus")
  with lazy.open_cube(tmp_path / "c.npy") as lz:
    got, _, info = streaming.detect_tiled(lz, spec, detectors.resolve_params(spec, {}),
                                          tmp_path, 30)
    got = np.array(got)
  assert info["tiles"] == 4 and info["halo"] == 7
  # a few pixels may differ by level steps of the quantised top-hats (tests/quantised.py)
  assert_scores_match(got, ref, methods.load_general()[0].a_f[...], min_close=0.999)
  assert sorted(os.listdir(tmp_path)) == ["c.npy", "scores.npy"]  # raw maps removed


def test_scores_do_not_depend_on_the_strip_height(tmp_path):
  """N > P: operators from a 500-pixel sample; any strip height, same scores."""
  sc = synthetic.make_scene(48, 40, 30, n_targets=6, seed=4)
  stats = stream.stream_stats(sc.cube, 7, covariance=True, sample=500,
                              noise_rows=tiled.noise_rows(48, 40))
  assert stats.hdiff_db.shape == (48 * 39, 30)
  state = tiled.fit(stats)
  assert state.sample_pixels == 500
  got = []
  for rows in (10, 17, 48):
    raw = np.zeros((general.N_RAW, 48, 40), np.float32)
    for t in stream.plan_tiles(48, rows, tiled.halo(state), same_shape=True):
      r = tiled.score(state, sc.cube[t.p0:t.p1])
      raw[:, t.r0:t.r1] = r[:, t.r0 - t.p0:t.r1 - t.p0]
    got.append(tiled.finish(state, raw, rows))
  for g in got[:2]:
    np.testing.assert_allclose(g, got[2], rtol=1e-5, atol=1e-5 * float(np.abs(got[2]).max()))


def test_principal_axes_come_from_every_pixel_not_the_sample(data_dir):
  """N > P: the strips' principal-component scores (the head's AED features)
  are the whole scene's (axes from the streamed covariance; the 500-pixel
  sample's axes differ), up to the sign of each axis; no covariance: refused."""
  cube = _crop(data_dir, "abu-beach-2", 48, 40)
  model, ctx, x_bn, h, w = _weighted(cube)
  ref = general.pc_basis(x_bn)
  stats = stream.stream_stats(cube, 7, covariance=True, sample=500,
                              noise_rows=tiled.noise_rows(h, w))
  state = tiled.fit(stats)
  np.testing.assert_allclose(state.omega_b, general.band_weights(ctx.noise_b, model.gamma()),
                             rtol=1e-5)
  got = tiled.score(state, cube)[general.N_NORMS:].reshape(score_head.PC_COMPONENTS, -1)
  want = np.asarray((x_bn.T - ref.mean_b) @ ref.v_bk).T
  scale = float(np.abs(want).max())
  for g, v in zip(got, want):
    sign = np.sign(np.dot(g, v))
    np.testing.assert_allclose(sign * g, v, atol=2e-4 * scale)
  # the sample's own axes are measurably off (what the strips used before)
  samp = general.pc_basis(x_bn[:, stats.sample_index])
  cos = np.abs(np.sum(np.asarray(samp.v_bk) * np.asarray(ref.v_bk), axis=0))
  assert cos.min() < 1 - 1e-4, cos
  with pytest.raises(ConfigError, match="covariance"):
    tiled.fit(stats._replace(cov=None))


def test_noise_rows_follow_the_whole_scene_path():
  assert tiled.noise_rows(100, 100) == 100
  assert tiled.noise_rows(4000, 513) == 256          # the whole path's 256 rows
  assert tiled.noise_rows(4000, 2048) == (1 << 17) // 2047
  np.testing.assert_array_equal(stream.even_rows(1000, 256),
                                np.asarray(general.even_sample(1000, 256)))


def test_cli_scores_over_budget_cubes_in_strips(tmp_path, capsys):
  """A cube whose whole-scene path would exceed the budget runs in strips, also
  from a format loaded whole (.npz); per-scene training is refused there."""
  sc = synthetic.make_scene(40, 32, 24, n_targets=5, seed=2)
  np.save(tmp_path / "c.npy", sc.cube)
  np.savez(tmp_path / "c.npz", data=sc.cube, map=sc.gt)
  budget = ["--memory-budget", "1.5M"]  # 16 copies of the 123 KB cube do not fit
  assert cli.main(["detect", str(tmp_path / "c.npz"), "--out", str(tmp_path / "z")]
                  + budget) == 0
  assert cli.main(["detect", str(tmp_path / "c.npz"), "--out", str(tmp_path / "w")]) == 0
  capsys.readouterr()
  whole = np.load(tmp_path / "w" / "scores.npy")
  np.testing.assert_allclose(np.load(tmp_path / "z" / "scores.npy"), whole, rtol=1e-4,
                             atol=1e-4 * float(np.abs(whole).max()))
  assert cli.main(["detect", str(tmp_path / "c.npy"), "--out", str(tmp_path / "n")]
                  + budget) == 0
  rec = __import__("json").loads((tmp_path / "n" / "detect.json").read_text())
  assert rec["tiled"]["tiles"] >= 2
  assert cli.main(["detect", str(tmp_path / "c.npy"), "--finetune", "--out",
                   str(tmp_path / "f")] + budget) == 2
  err = capsys.readouterr().err
  assert "pretrained network only" in err and "Traceback" not in err
  assert not (tmp_path / "f" / "scores.npy").exists()


def test_plan_uses_the_forms_memory_factors():
  spec = detectors.get_method("lrrnet-plus")
  mib = 1 << 20
  # 512 x 512 x 200 (200 MiB): grx whole within 2 GiB, lrrnet-plus in strips
  assert streaming.plan((512, 512, 200), "grx", detectors.get_method("grx").tiled,
                        2048 * mib).mode == "whole"
  p = streaming.plan((512, 512, 200), "lrrnet-plus", spec.tiled, 2048 * mib)
  assert p.mode == "tiled"
  strip = p.tile_rows * 512 * 200 * 4 * tiled.STRIP_OVERHEAD
  assert strip + streaming.reserve_bytes(2048 * mib) <= 2048 * mib
  with pytest.raises(ConfigError, match="pretrained network only"):
    tiled.fit(stream.stream_stats(np.ones((4, 4, 3), np.float32), 4), finetune=True)


DEVICES_SCRIPT = """
import numpy as np, jax
from lrrjax import synthetic
from lrrjax.io import stream
from lrrjax.lrr import general, tiled
assert len(jax.devices()) == 2, jax.devices()
sc = synthetic.make_scene(30, 28, 20, n_targets=4, seed=5)
stats = stream.stream_stats(sc.cube, 8, covariance=True, noise_rows=tiled.noise_rows(30, 28))
state = tiled.fit(stats)
ops = jax.tree.map(jax.numpy.asarray, state.ops)
x = jax.numpy.asarray(np.random.default_rng(0).random((840, 20), np.float32))
one = jax.jit(lambda x: tiled.apply_frozen_blocked(x, ops, 128))(x)
two = jax.jit(lambda x: tiled.apply_frozen_devices(x, ops, block=128))(x)
# the vmapped (per-device) products may take other float32 kernels than the
# plain ones: equal to rounding (~3e-6 of the largest value seen), not bitwise
for a, b in zip(one, two):
  a = np.asarray(a)
  np.testing.assert_allclose(np.asarray(b), a, rtol=1e-5, atol=1e-5 * np.abs(a).max())
lowered = jax.jit(lambda x: tiled.apply_frozen_devices(x, ops, block=128)).lower(x).as_text()
assert "devices" in lowered or "sharding" in lowered
print("devices-ok")
"""


def test_stages_split_over_local_devices_equal_one_device():
  """A strip's pixels split over two (virtual CPU) devices give the same S and E."""
  _run_on_two_virtual_devices(DEVICES_SCRIPT, "devices-ok")
