"""Tests for the classical detectors and the method registry."""

import types

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.io

from lrrjax import detectors, metrics
from lrrjax.detectors import _pca, _window, aed, crd, lrasr, rx
from lrrjax.errors import ConfigError


def _cube(h=12, w=13, b=8, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(h, w, b)) @ rng.normal(size=(b, b)) + 3.0
  x[5, 6] += 4.0
  return x.astype(np.float32)


def _ring_np(x, i, j, inner, outer):
  """Ring of (i, j): 'reflect' mirror padding, mirrored guard pixels dropped."""
  h, w, _ = x.shape
  p = outer // 2
  rr, cc = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  pad = lambda a: np.pad(a, p, mode="reflect")
  xp = np.pad(x.astype(np.float64), ((p, p), (p, p), (0, 0)), mode="reflect")
  win, wr, wc = (a[i:i + outer, j:j + outer] for a in (xp, pad(rr), pad(cc)))
  m = np.ones((outer, outer), bool)
  q = (outer - inner) // 2
  m[q:q + inner, q:q + inner] = False
  m &= np.maximum(np.abs(wr - i), np.abs(wc - j)) > inner // 2
  return win[m]


def _lrx_oracle(x, inner, outer, ridge):
  h, w, b = x.shape
  out = np.zeros((h, w))
  for i in range(h):
    for j in range(w):
      r = _ring_np(x, i, j, inner, outer)
      mu = r.mean(0)
      c = (r - mu).T @ (r - mu) / len(r)
      c += ridge * np.trace(c) / b * np.eye(b)
      z = x[i, j] - mu
      out[i, j] = z @ np.linalg.solve(c, z)
  return out


def _crd_oracle(x, inner, outer, lam):
  x = x.astype(np.float64)
  x = (x - x.min()) / (x.max() - x.min())
  h, w, _ = x.shape
  out = np.zeros((h, w))
  for i in range(h):
    for j in range(w):
      xs = _ring_np(x, i, j, inner, outer).T
      y = x[i, j]
      g = np.sum((xs - y[:, None]) ** 2, axis=0)
      alpha = np.linalg.solve(xs.T @ xs + lam * np.diag(g), xs.T @ y)
      out[i, j] = np.linalg.norm(y - xs @ alpha)
  return out


# ------------------------------------------------------------ global RX --

def test_global_rx_matches_float64_pinv_oracle():
  x = _cube(10, 9, 6)
  x[..., 3] = x[..., 2] * 2.0  # singular covariance: pinv, not inv
  x64 = x.reshape(-1, 6).astype(np.float64)
  xc = x64 - x64.mean(0)
  want = np.einsum("nb,bc,nc->n", xc, np.linalg.pinv(xc.T @ xc / len(xc)), xc)
  got = rx.global_rx(x)
  assert got.shape == (10, 9) and got.dtype == np.float32
  np.testing.assert_allclose(got.ravel(), want, rtol=2e-3, atol=1e-3)


def test_global_rx_integer_input_and_scale_invariance():
  x = (_cube() * 1000).astype(np.int32)
  a = rx.global_rx(x)
  b = rx.global_rx(x.astype(np.float32) * 7.5)
  np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)


@pytest.mark.realdata
@pytest.mark.parametrize("name,want", [("abu-airport-2", 0.8404), ("abu-urban-1", 0.9907),
                                       ("sandiego", 0.8885), ("hydice-urban", 0.9932)])
def test_global_rx_reference_auc(data_dir, name, want):
  m = scipy.io.loadmat(data_dir / f"{name}.mat")
  scores = rx.global_rx(m["data"].astype(np.float32))
  auc = metrics.auc_df(scores.ravel(), m["map"].ravel() > 0)
  assert abs(auc - want) < 5e-4, (name, auc)


# ------------------------------------------------------------- windows --

@pytest.mark.parametrize("inner,outer,ridge,b", [(3, 9, 1e-3, 8), (1, 5, 1e-2, 8), (3, 7, 1e-1, 8),
                                                  (1, 5, 1e-2, 30)])
def test_local_rx_matches_naive_oracle_incl_borders(inner, outer, ridge, b):
  # b = 8 <= n: p x p Cholesky; b = 30 > n = 24: the ring-space identity.
  x = _cube(b=b)
  got = rx.local_rx(x, inner=inner, outer=outer, ridge=ridge, n_components=None, chunk=37)
  want = _lrx_oracle(x, inner, outer, ridge)
  np.testing.assert_allclose(got, want, rtol=2e-4)


def test_local_rx_legacy_setting_is_the_all_band_3_9_detector():
  x = _cube()
  np.testing.assert_allclose(rx.local_rx(x, **rx.LEGACY_LRX), _lrx_oracle(x, 3, 9, 1e-3),
                             rtol=2e-4)


def _pca_np(x, p):
  """float64 whitened principal components via the SVD of the centred pixels."""
  h, w, b = x.shape
  xc = x.reshape(-1, b).astype(np.float64)
  xc -= xc.mean(0)
  u, s, _ = np.linalg.svd(xc, full_matrices=False)
  return (u[:, :p] * np.sqrt(h * w)).reshape(h, w, p)  # = xc V_p / sqrt(e_p)


def test_local_rx_on_principal_components_matches_oracle():
  x = _cube(14, 15, 12)
  got = rx.local_rx(x, inner=3, outer=7, ridge=1e-3, n_components=5)
  want = _lrx_oracle(_pca_np(x, 5), 3, 7, 1e-3)  # the score ignores the PCs' signs
  np.testing.assert_allclose(got, want, rtol=1e-3)
  t = _pca.principal_components(x, 5)
  np.testing.assert_allclose(np.abs(t), np.abs(_pca_np(x, 5)), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("inner,outer", [(3, 9), (1, 5), (crd.DEFAULT_INNER, crd.DEFAULT_OUTER)])
def test_crd_matches_naive_oracle_incl_borders(inner, outer):
  x = _cube(14, 15, b=80)  # n = 72 / 24 / 48 ring pixels < B = 80 bands, as in real scenes
  for lam in (1e-6, 1e-2):
    got = crd.crd(x, inner=inner, outer=outer, lam=lam, chunk=50)
    want = _crd_oracle(x, inner, outer, lam)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * np.median(want))


def test_ring_indices_mirror_and_drop_guard():
  off = _window.ring_offsets(3, 9)
  assert off.shape == (81 - 9, 2)
  assert np.all(np.max(np.abs(off), axis=1) >= 2)
  idx, mask = _window.ring_indices(10, 11, 3, 9)
  assert idx.shape == mask.shape == (110, 72)
  assert np.all(mask[5 * 11 + 5] == 1)  # interior pixel: full ring
  # pixel (0, 1): column -1 mirrors onto column 1, i.e. the pixel itself
  p = 0 * 11 + 1
  self_entries = idx[p] == p
  assert self_entries.any() and np.all(mask[p][self_entries] == 0)
  r, c = np.divmod(idx[p][mask[p] > 0], 11)
  assert np.all(np.maximum(np.abs(r - 0), np.abs(c - 1)) > 1)


@pytest.mark.parametrize("h,w,inner,outer,chunk", [(10, 11, 3, 9, 7), (9, 9, 1, 9, 256),
                                                   (13, 6, 1, 5, 4)])
def test_chunk_rings_equal_the_numpy_ring_indices(h, w, inner, outer, chunk):
  """map_rings derives each chunk's rings in the compiled function: the same
  indices and masks as ring_indices (padding centres repeat pixel 0)."""
  centre, off, guard = _window.chunked_rings(h, w, inner, outer, chunk)
  assert centre.shape[1] == min(chunk, h * w) and centre.size >= h * w
  idx, mask = _window.chunk_rings(jnp.asarray(centre.reshape(-1)), jnp.asarray(off),
                                  jnp.asarray(guard), h, w)
  want_idx, want_mask = _window.ring_indices(h, w, inner, outer)
  np.testing.assert_array_equal(np.asarray(idx)[:h * w], want_idx)
  np.testing.assert_array_equal(np.asarray(mask)[:h * w].astype(np.float32), want_mask)
  pad = np.broadcast_to(want_idx[0], (centre.size - h * w, off.shape[0]))
  np.testing.assert_array_equal(np.asarray(idx)[h * w:], pad)


@pytest.mark.parametrize("inner,outer,msg", [
    (3, 3, "smaller"), (5, 3, "smaller"), (2, 9, "odd"), (3, 8, "odd"), (0, 5, ">= 1"),
    (3, 15, "larger than the scene"), (3.0, 9, "integer")])
def test_window_errors(inner, outer, msg):
  x = _cube()
  for fn in (rx.local_rx, crd.crd):
    with pytest.raises(ConfigError, match=msg) as e:
      fn(x, inner=inner, outer=outer)
    assert "window" in str(e.value)
  with pytest.raises(ConfigError, match=r"\(12, 13, 8\)"):
    rx.local_rx(x, inner=3, outer=15)


def test_bad_ridge_and_lam():
  with pytest.raises(ConfigError, match="ridge"):
    rx.local_rx(_cube(), inner=3, outer=7, ridge=0.0)
  with pytest.raises(ConfigError, match="lam"):
    crd.crd(_cube(), inner=3, outer=9, lam=-1.0)


def test_local_detectors_find_planted_anomaly():
  rng = np.random.default_rng(3)
  x = rng.random((24 * 24, 4)) @ rng.random((4, 90)) + 0.01 * rng.normal(size=(576, 90))
  x = x.reshape(24, 24, 90).astype(np.float32)
  x[12, 12] = rng.random(90) * 2.0
  for s in (rx.local_rx(x), crd.crd(x), rx.global_rx(x), rx.local_rx(x, **rx.LEGACY_LRX),
            crd.crd(x, **crd.LEGACY_CRD)):
    assert np.unravel_index(np.argmax(s), s.shape) == (12, 12)


# ---------------------------------------------------------------- LRASR --

def _ladmap_np(x, d, lam, beta, mu0, rho, iters):
  """float64 numpy reference of the LADMAP iteration (documented in lrasr.py)."""
  b, n = x.shape
  k = d.shape[1]
  z = np.zeros((k, n)); j = np.zeros((k, n)); e = np.zeros((b, n))
  y1 = np.zeros((b, n)); y2 = np.zeros((k, n)); mu = mu0
  eta = 1.02 * (np.linalg.norm(d, 2) ** 2 + 1)
  for _ in range(iters):
    m = z + (d.T @ (x - d @ z - e + y1 / mu) - (z - j + y2 / mu)) / eta
    u, s, vt = np.linalg.svd(m, full_matrices=False)
    z = (u * np.maximum(s - 1 / (mu * eta), 0)) @ vt
    t = z + y2 / mu
    j = np.sign(t) * np.maximum(np.abs(t) - beta / mu, 0)
    t = x - d @ z + y1 / mu
    nr = np.linalg.norm(t, axis=0)
    e = t * np.maximum(nr - lam / mu, 0) / np.where(nr > 0, nr, 1)
    y1 += mu * (x - d @ z - e); y2 += mu * (z - j); mu = min(rho * mu, 1e10)
  return z, e


def test_lrasr_ladmap_matches_numpy_reference():
  rng = np.random.default_rng(1)
  d = rng.random((6, 5))
  x = d @ rng.random((5, 40)) * 0.3
  x[:, 7] += 0.8
  x = x / x.max()
  state = lrasr.solve_lrasr(x.astype(np.float32), d.astype(np.float32), mu0=0.5, rho=1.5,
                            tol=0.0, max_iter=12)
  assert int(state.it) == 12
  z, e = _ladmap_np(x, d, 0.1, 0.1, 0.5, 1.5, 12)
  np.testing.assert_allclose(np.asarray(state.z_kn), z, atol=2e-4 * np.abs(z).max())
  np.testing.assert_allclose(np.asarray(state.e_bn), e, atol=2e-4 * np.abs(e).max() + 1e-6)


def test_lrasr_converges_and_scores_anomaly():
  rng = np.random.default_rng(2)
  a = rng.random((12, 4))
  cube = (a @ rng.random((4, 24 * 20))).T.reshape(24, 20, 12)
  cube += 0.01 * rng.normal(size=cube.shape)
  cube[10, 11] = rng.random(12) * 3.0
  scores, st = lrasr.lrasr(cube.astype(np.float32), n_clusters=3, per_cluster=5,
                           return_state=True)
  assert scores.shape == (24, 20) and scores.dtype == np.float32
  assert int(st.it) < 500
  assert float(st.res_x) < 1e-5 and float(st.res_z) < 1e-5
  assert np.unravel_index(np.argmax(scores), scores.shape) == (10, 11)


def test_lrasr_bad_params():
  with pytest.raises(ConfigError, match="lam"):
    lrasr.lrasr(_cube(), lam=0.0)
  with pytest.raises(ConfigError, match="rho"):
    lrasr.solve_lrasr(np.ones((3, 4)), np.ones((3, 2)), rho=0.5)


# -------------------------------------------------------------- registry --

def test_registry_lists_classical_methods_and_runs():
  names = detectors.available_methods()
  assert {"grx", "lrx", "crd", "lrasr", "aed"} <= set(names)
  assert set(detectors.METHODS) == set(names)
  spec = detectors.get_method("grx")
  assert isinstance(spec, detectors.MethodSpec) and spec.description
  scene = types.SimpleNamespace(cube=_cube(), gt=None, name="t")
  s = detectors.run_method("lrx", scene, inner=3, outer=7, n_components=None)
  assert s.shape == (12, 13) and s.dtype == np.float32
  np.testing.assert_allclose(s, rx.local_rx(scene.cube, inner=3, outer=7, n_components=None))


def test_registry_errors():
  with pytest.raises(ConfigError, match="unknown method 'nope'.*grx") as e:
    detectors.get_method("nope")
  assert "lrasr" in str(e.value)
  scene = types.SimpleNamespace(cube=_cube())
  with pytest.raises(ConfigError, match="no parameter.*window.*accepted: inner"):
    detectors.run_method("lrx", scene, window=3)
  with pytest.raises(ConfigError, match="already registered"):
    detectors.register(detectors.MethodSpec("grx", lambda s: s, "other"))
  with pytest.raises(ConfigError, match="MethodSpec"):
    detectors.register(("x", None, ""))


def test_register_new_method_and_reregister_same_fn():
  def fake(scene, k: int = 1):
    return np.full(np.shape(scene.cube)[:2], k, np.float64)
  spec = detectors.MethodSpec("test-fake", fake, "test only")
  try:
    detectors.register(spec)
    detectors.register(spec)  # same function again: allowed (module reload)
    out = detectors.run_method("test-fake", types.SimpleNamespace(cube=np.zeros((2, 3, 4))), k=2)
    assert out.dtype == np.float32 and np.all(out == 2)
  finally:
    detectors._METHODS.pop("test-fake", None)


def test_bad_input_errors_name_parameter_and_scene():
  small = types.SimpleNamespace(cube=_cube(), gt=None, name="tiny")  # 12 x 13 x 8
  with pytest.raises(ConfigError, match=r"scene 'tiny'.*outer=19.*larger than the scene"):
    detectors.run_method("lrx", small)
  with pytest.raises(ConfigError, match=r"scene 'tiny'.*outer=13.*larger than the scene"):
    detectors.run_method("crd", small)
  big = types.SimpleNamespace(cube=_cube(20, 21, 8), gt=None, name="few-bands")
  with pytest.raises(ConfigError, match=r"scene 'few-bands'.*n_components=20.*band count B=8"):
    detectors.run_method("lrx", big)
  with pytest.raises(ConfigError, match=r"scene 'few-bands'.*n_components=9.*B=8"):
    detectors.run_method("aed", big, n_components=9)
  with pytest.raises(ConfigError, match="area"):
    aed.aed(big.cube, area=0)
  with pytest.raises(ConfigError, match="sigma_r"):
    aed.aed(big.cube, sigma_r=0.0)
  with pytest.raises(ConfigError, match="iterations"):
    aed.aed(big.cube, iterations=0)


# ------------------------------------------------------------------ AED --

def _rf_np(img, guide, sigma_s, sigma_r, iterations):
  """Domain transform recursive filter, a plain float64 transcription."""
  f = img.astype(np.float64).copy()
  g = guide.astype(np.float64)
  h, w = f.shape
  dh = np.ones((h, w))
  dv = np.ones((h, w))
  dh[:, 1:] += sigma_s / sigma_r * np.abs(np.diff(g, axis=1)).sum(2)
  dv[1:, :] += sigma_s / sigma_r * np.abs(np.diff(g, axis=0)).sum(2)
  for i in range(iterations):
    sig = sigma_s * np.sqrt(3) * 2 ** (iterations - i - 1) / np.sqrt(4 ** iterations - 1)
    a = np.exp(-np.sqrt(2) / sig)
    for img_, d in ((f, dh), (f.T, dv.T)):
      v = a ** d
      for j in range(1, img_.shape[1]):
        img_[:, j] += v[:, j] * (img_[:, j - 1] - img_[:, j])
      for j in range(img_.shape[1] - 2, -1, -1):
        img_[:, j] += v[:, j + 1] * (img_[:, j + 1] - img_[:, j])
  return f


def test_domain_transform_matches_numpy_transcription():
  rng = np.random.default_rng(0)
  img, guide = rng.random((9, 11)), rng.random((9, 11, 2))
  guide[:, 6:] += 3.0  # a strong edge: nothing leaks across it
  for sigma_s, sigma_r, k in ((5.0, 0.5, 3), (2.0, 1.0, 1)):
    got = aed.domain_transform_rf(img, guide, sigma_s, sigma_r, k)
    np.testing.assert_allclose(got, _rf_np(img, guide, sigma_s, sigma_r, k), rtol=1e-5, atol=1e-6)
  step = np.zeros((9, 11))
  step[:, 6:] = 1.0
  out = aed.domain_transform_rf(step, guide, 5.0, 0.5, 3)
  assert out[:, :6].max() < 1e-3 and out[:, 6:].min() > 1 - 1e-3


def test_attribute_residual_keeps_only_small_structures():
  f = np.zeros((20, 20))
  f[2:5, 2:5] = 1.0      # 9 px bright: removed by the area-25 opening
  f[10:17, 10:17] = 1.0  # 49 px bright: kept
  f[2:4, 14:16] = -0.5   # 4 px dark: filled by the closing
  d = aed.attribute_residual(f, 25)
  np.testing.assert_allclose(d[2:5, 2:5], 1.0)
  np.testing.assert_allclose(d[2:4, 14:16], 0.5)
  np.testing.assert_allclose(d[10:17, 10:17], 0.0)
  assert d.sum() == pytest.approx(9 * 1.0 + 4 * 0.5)


def test_aed_matches_numpy_pipeline_and_finds_small_target():
  rng = np.random.default_rng(1)
  h, w, b = 30, 32, 40
  yy, xx = np.mgrid[:h, :w] / 30.0
  abund = np.stack([np.ones((h, w)), yy, xx, (yy > 0.5) * 1.0], axis=-1)
  x = abund @ rng.random((4, b)) + 0.005 * rng.normal(size=(h, w, b))
  x[8:10, 20:22] += rng.random(b)  # 4-pixel target
  got = aed.aed(x)
  assert got.shape == (h, w) and got.dtype == np.float32
  t = _pca_np(x, 3)
  t = (t - t.min((0, 1))) / (t.max((0, 1)) - t.min((0, 1)))
  fused = np.mean([aed.attribute_residual(t[..., k], 25) for k in range(3)], axis=0)
  fused = (fused - fused.min()) / (fused.max() - fused.min())
  want = _rf_np(fused, t, 5.0, 0.5, 3)
  np.testing.assert_allclose(got, want, atol=2e-4)
  gt = np.zeros((h, w), bool)
  gt[8:10, 20:22] = True
  assert np.unravel_index(np.argmax(got), got.shape) in set(zip(*np.nonzero(gt)))
  assert metrics.auc_df(got.ravel(), gt.ravel()) > 0.99
