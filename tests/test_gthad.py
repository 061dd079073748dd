"""Tests for lrrjax.gthad (GT-HAD port).

Training runs use one tiny configuration (cube 14 x 13 x 5, embed_dim 8,
batch 16) so the unrolled epoch compiles once for the file.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lrrjax import detectors, gthad, io
from lrrjax.errors import ConfigError, SceneError
from lrrjax.gthad import blocks, net

TINY = dict(epochs=3, search_every=1, embed_dim=8, batch_size=16)


def _cube(h=14, w=13, b=5, seed=0):
  rng = np.random.default_rng(seed)
  t = np.linspace(0, 1, b)
  yy, xx = np.mgrid[0:h, 0:w]
  a = (0.5 + 0.4 * np.sin(xx / 3.0) * np.cos(yy / 4.0))[..., None]
  cube = a * (0.3 + 0.4 * t) + (1 - a) * (0.7 - 0.3 * t)
  cube = cube + 0.01 * rng.standard_normal((h, w, b))
  cube[min(4, h - 1), min(6, w - 1)] = 0.5 + 0.4 * np.cos(6 * t)
  return (1000 * cube).astype(np.float32)


# ------------------------------------------------------------ block geometry


def _np_blocks(x, k, s):
  """Oracle: TF 'same' padding by edge replication, then every window."""
  h, w, _ = x.shape
  pads = []
  for n in (h, w):
    out = math.ceil(n / s)
    p = max(0, (out - 1) * s + k - n)
    pads.append((p // 2, p - p // 2))
  xp = np.pad(x, (*pads, (0, 0)), mode="edge")
  nr, nc = math.ceil(h / s), math.ceil(w / s)
  out = [xp[i * s:i * s + k, j * s:j * s + k] for i in range(nr) for j in range(nc)]
  return np.stack(out), pads


@pytest.mark.parametrize("h,w,k,s", [(14, 13, 9, 3), (10, 11, 6, 2), (9, 9, 9, 3),
                                     (12, 17, 4, 4)])
def test_extract_matches_oracle_and_fold_inverts(h, w, k, s):
  x = np.random.default_rng(0).random((h, w, 3)).astype(np.float32)
  g = blocks.block_grid(h, w, k, s)
  expect, pads = _np_blocks(x, k, s)
  assert (g.pad_top, g.pad_bottom, g.pad_left, g.pad_right) == (*pads[0], *pads[1])
  got = np.asarray(blocks.extract_blocks(jnp.asarray(x), g))
  assert got.shape == (g.n_blocks, k, k, 3)
  np.testing.assert_array_equal(got, expect)
  np.testing.assert_allclose(np.asarray(blocks.fold_blocks(jnp.asarray(got), g)), x,
                             rtol=1e-6)


def test_fold_averages_overlaps():
  h, w, k, s = 10, 8, 6, 2
  g = blocks.block_grid(h, w, k, s)
  v = np.random.default_rng(1).random((g.n_blocks, k, k, 2)).astype(np.float32)
  hp, wp = h + g.pad_top + g.pad_bottom, w + g.pad_left + g.pad_right
  tot, cnt = np.zeros((hp, wp, 2)), np.zeros((hp, wp, 1))
  for n in range(g.n_blocks):
    i, j = divmod(n, g.n_cols)
    tot[i * s:i * s + k, j * s:j * s + k] += v[n]
    cnt[i * s:i * s + k, j * s:j * s + k] += 1
  expect = (tot / cnt)[g.pad_top:g.pad_top + h, g.pad_left:g.pad_left + w]
  np.testing.assert_allclose(np.asarray(blocks.fold_blocks(jnp.asarray(v), g)),
                             expect, rtol=1e-5)


def test_pool_residual_is_zero_padded_mean_over_45():
  r = np.random.default_rng(2).random((2, 4, 4, 7)).astype(np.float32)
  rp = np.pad(r, ((0, 0), (1, 1), (1, 1), (2, 2)))
  expect = np.zeros_like(r)
  for u in range(3):
    for v in range(3):
      for c in range(5):
        expect += rp[:, u:u + 4, v:v + 4, c:c + 7]
  np.testing.assert_allclose(np.asarray(blocks.pool_residual(jnp.asarray(r))),
                             expect / 45.0, rtol=1e-5)


def test_match_gates_matches_bruteforce_nearest_block():
  h, w, k, s = 12, 12, 6, 3
  g = blocks.block_grid(h, w, k, s)
  rng = np.random.default_rng(3)
  x = rng.random((h, w, 3)).astype(np.float32)
  query = np.asarray(blocks.extract_blocks(jnp.asarray(x), g))
  recon = query + 2.0 * rng.standard_normal(query.shape).astype(np.float32)
  gate = np.asarray(blocks.match_gates(jnp.asarray(recon), jnp.asarray(query), g))
  key = _np_blocks(np.asarray(blocks.fold_blocks(jnp.asarray(recon), g)), k, s)[0]
  kf, qf = key.reshape(len(key), -1), query.reshape(len(query), -1)
  d = np.linalg.norm(kf[:, None] - qf[None] + 1e-6, axis=-1)
  expect = (d.argmin(1) == np.arange(len(d))).astype(np.float32)
  np.testing.assert_array_equal(gate, expect)
  assert 0 < expect.sum() < len(expect)           # both gates occur
  # a perfect reconstruction matches every block to itself
  perfect = blocks.match_gates(jnp.asarray(query), jnp.asarray(query), g)
  assert np.asarray(perfect).sum() == g.n_blocks


# ------------------------------------------------------------ network


def _np_layernorm(x, scale, bias, eps=1e-5):
  mu = x.mean(-1, keepdims=True)
  var = ((x - mu) ** 2).mean(-1, keepdims=True)
  return (x - mu) / np.sqrt(var + eps) * scale + bias


def _np_gated_block(x, gate, p, psize, pstride):
  """Oracle of the official TransformerBlock, written per patch."""
  bt, k, _, c = x.shape
  u = _np_layernorm(x, p["norm1"]["scale"], p["norm1"]["bias"])
  n = pstride * pstride
  patches = np.zeros((bt, n, psize * psize, c))
  for pi in range(pstride):
    for pj in range(pstride):
      for r in range(psize):
        for cc in range(psize):
          patches[:, pi * pstride + pj, r * psize + cc] = u[:, pi * psize + r,
                                                            pj * psize + cc]
  q = patches @ p["fc"]["kernel"] + p["fc"]["bias"]          # (bt, n, P, c/2)
  q = q.reshape(bt, n, -1)
  logits = q @ q.transpose(0, 2, 1) * (c // 2 * psize * psize) ** -0.5
  out = np.zeros_like(x, dtype=np.float64)
  for b in range(bt):
    mask = np.zeros((n, n)) if gate[b] == 1 else -100.0 * np.eye(n)
    z = logits[b] + mask
    a = np.exp(z - z.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    mixed = np.einsum("nm,mpc->npc", a, patches[b])
    for pi in range(pstride):
      for pj in range(pstride):
        for r in range(psize):
          for cc in range(psize):
            out[b, pi * psize + r, pj * psize + cc] = mixed[pi * pstride + pj,
                                                            r * psize + cc]
  hdn = _np_layernorm(out, p["norm2"]["scale"], p["norm2"]["bias"])
  hdn = hdn @ p["fc1"]["kernel"] + p["fc1"]["bias"]
  erf = np.vectorize(math.erf)
  hdn = 0.5 * hdn * (1 + erf(hdn / math.sqrt(2)))
  return out + hdn @ p["fc2"]["kernel"] + p["fc2"]["bias"]


def _params_np(module):
  state = nnx.state(module, nnx.Param)
  return jax.tree.map(lambda v: np.asarray(v, np.float64), nnx.to_pure_dict(state))


@pytest.mark.parametrize("psize,pstride", [(3, 3), (2, 3)])
def test_gated_block_matches_numpy_forward(psize, pstride):
  c, k = 8, psize * pstride
  blk = net.GatedTransformerBlock(c, psize, pstride, 2.0,
                                  rngs=nnx.Rngs(params=jax.random.key(0)))
  # non-trivial LayerNorm affine parameters
  for ln in (blk.norm1, blk.norm2):
    ln.scale[...] = 1.0 + 0.1 * jax.random.normal(jax.random.key(5), (c,))
    ln.bias[...] = 0.1 * jax.random.normal(jax.random.key(6), (c,))
  x = np.random.default_rng(4).standard_normal((3, k, k, c)).astype(np.float32)
  gate = np.array([0.0, 1.0, 0.0], np.float32)
  got = np.asarray(blk(jnp.asarray(x), jnp.asarray(gate)))
  p = _params_np(blk)
  p["fc"] = p.pop("attn")["fc"]
  expect = _np_gated_block(x.astype(np.float64), gate, p, psize, pstride)
  np.testing.assert_allclose(got, expect, rtol=2e-4, atol=2e-5)
  # the gate matters: flipping it changes the output of that block only
  got2 = np.asarray(blk(jnp.asarray(x), jnp.asarray(1.0 - gate)))
  assert not np.allclose(got2, got)


def test_torch_default_init_bounds():
  m = gthad.GTNet(5, 8, 3, 3, 2.0, rngs=nnx.Rngs(params=jax.random.key(0)))
  head = np.asarray(m.head.kernel[...])
  assert head.shape == (3, 3, 5, 8)
  assert np.abs(head).max() <= 1 / math.sqrt(45) + 1e-7
  assert np.abs(np.asarray(m.block.fc1.kernel[...])).max() <= 1 / math.sqrt(8) + 1e-7


# ------------------------------------------------------------ training


@pytest.fixture(scope="module")
def tiny_run():
  cube = _cube()
  return cube, gthad.gt_had(cube, seed=0, return_info=True, **TINY)


def test_smoke_run_shapes_and_range(tiny_run):
  cube, (scores, info) = tiny_run
  assert scores.shape == cube.shape[:2] and scores.dtype == np.float32
  assert np.all(np.isfinite(scores))
  assert scores.min() == 0.0 and scores.max() == pytest.approx(1.0)
  assert info["n_blocks"] == 5 * 5
  assert len(info["loss_history"]) == 3
  assert len(info["n_matched"]) == 2            # searches after epochs 1, 2 (not 3)
  assert set(np.unique(info["gates"])) <= {0.0, 1.0}


def test_same_seed_is_deterministic_other_seed_differs(tiny_run):
  cube, (scores, _) = tiny_run
  again = gthad.gt_had(cube, seed=0, **TINY)
  np.testing.assert_array_equal(again, scores)
  other = gthad.gt_had(cube, seed=1, **TINY)
  assert not np.array_equal(other, scores)


def test_registry_runs_gt_had_with_params():
  scene = io.Scene(cube=_cube(), name="tiny")
  scores = detectors.run_method("gt-had", scene, seed=0, epochs=1, embed_dim=8,
                                batch_size=16)
  assert scores.shape == (14, 13)
  assert "gt-had" in detectors.available_methods()


# ------------------------------------------------------------ bad input


def test_block_larger_than_scene_names_parameter_and_scene():
  scene = io.Scene(cube=_cube(8, 20), name="narrow")
  with pytest.raises(ConfigError, match=r"patch_size \* patch_stride = 9.*'narrow'"):
    detectors.run_method("gt-had", scene, epochs=1)


@pytest.mark.parametrize("kw,match", [
    (dict(window_stride=10), "window_stride=10"),
    (dict(epochs=0), "epochs"),
    (dict(embed_dim=1), "embed_dim"),
    (dict(lr=0.0), "lr"),
    (dict(patch_size=2, patch_stride=2, window_stride=4), "single 4x4 block"),
])
def test_bad_config(kw, match):
  cube = _cube(4, 4) if "patch_size" in kw else _cube()
  with pytest.raises(ConfigError, match=match):
    gthad.gt_had(cube, **kw)


@pytest.mark.parametrize("cube,match", [
    (np.ones((5, 5)), "shape"),
    (np.full((12, 12, 3), 7.0), "constant"),
    (np.where(np.eye(12)[..., None] > 0, np.nan, 1.0) * np.ones((1, 1, 3)), "NaN"),
])
def test_bad_scene(cube, match):
  with pytest.raises(SceneError, match=match):
    gthad.gt_had(cube)
