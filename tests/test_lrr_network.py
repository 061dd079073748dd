"""LRR-Net+ network, model-based solver and training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lrrjax import io, metrics, synthetic
from lrrjax.lrr import admm, network, solver, train


@pytest.fixture(scope="module")
def scene():
  return synthetic.make_scene(24, 24, 30, n_targets=6, seed=3)


def small_config(**overrides):
  base = {"model.per_cluster": 2, "model.n_clusters": 5, "model.stages": 4,
          "train.steps": 4, "train.batch_pixels": 256, "train.checkpoint_every": 2}
  base.update(overrides)
  return train.config_with(base)


def np_admm(x, d, lam, mu0, rho, iters):
  """Independent float64 numpy ADMM of the fixed-dictionary LRR model."""
  k, n = d.shape[1], x.shape[1]
  l = np.zeros((k, n)); s = np.zeros_like(x); y1 = np.zeros_like(x); y2 = np.zeros((k, n))
  mu = mu0
  for _ in range(iters):
    u, sv, vt = np.linalg.svd(l + y2 / mu, full_matrices=False)
    j = (u * np.maximum(sv - 1 / mu, 0)) @ vt
    l = np.linalg.solve(d.T @ d + np.eye(k), d.T @ (x - s + y1 / mu) + j - y2 / mu)
    r = x - d @ l + y1 / mu
    nr = np.linalg.norm(r, axis=0)
    s = r * np.maximum(nr - lam / mu, 0) / np.where(nr > 0, nr, 1)
    y1 = y1 + mu * (x - d @ l - s)
    y2 = y2 + mu * (l - j)
    mu = mu * rho
  return l, s


def np_admm_sparse(x, d, lam, beta, mu0, rho, iters):
  """Independent float64 numpy ADMM of the beta ||L||_1 variant (fixed dictionary)."""
  k, n = d.shape[1], x.shape[1]
  l = np.zeros((k, n)); s = np.zeros_like(x); y1 = np.zeros_like(x)
  y2 = np.zeros((k, n)); y3 = np.zeros((k, n))
  mu = mu0
  for _ in range(iters):
    u, sv, vt = np.linalg.svd(l + y2 / mu, full_matrices=False)
    j = (u * np.maximum(sv - 1 / mu, 0)) @ vt
    v = l + y3 / mu
    w = np.sign(v) * np.maximum(np.abs(v) - beta / mu, 0)
    l = np.linalg.solve(d.T @ d + 2 * np.eye(k),
                        d.T @ (x - s + y1 / mu) + j - y2 / mu + w - y3 / mu)
    r = x - d @ l + y1 / mu
    nr = np.linalg.norm(r, axis=0)
    s = r * np.maximum(nr - lam / mu, 0) / np.where(nr > 0, nr, 1)
    y1 = y1 + mu * (x - d @ l - s)
    y2 = y2 + mu * (l - j)
    y3 = y3 + mu * (l - w)
    mu = mu * rho
  return l, s


def test_solver_matches_independent_numpy_admm(scene):
  x = scene.x_bn()
  rng = np.random.default_rng(0)
  d = np.asarray(admm.project_atoms(jnp.asarray(x[:, rng.choice(x.shape[1], 8, replace=False)])))
  res = solver.solve_lrr(jnp.asarray(x), jnp.asarray(d), lam=0.1, mu0=0.05, rho=1.5,
                         iters=6, update_dictionary=False)
  l_ref, s_ref = np_admm(x.astype(np.float64), d.astype(np.float64), 0.1, 0.05, 1.5, 6)
  np.testing.assert_allclose(np.asarray(res.state.s_bn), s_ref, atol=2e-4 * np.abs(s_ref).max())
  np.testing.assert_allclose(np.asarray(res.state.l_kn), l_ref, atol=2e-4 * np.abs(l_ref).max())
  tr = res.trace
  assert tr.objective.shape == (6,) and np.all(np.isfinite(tr.objective))
  assert tr.rel_residual[-1] < tr.rel_residual[1]
  assert np.all(np.asarray(tr.rank) <= d.shape[1])


def test_sparse_solver_matches_independent_numpy_admm(scene):
  x = scene.x_bn()
  rng = np.random.default_rng(0)
  d = np.asarray(admm.project_atoms(jnp.asarray(x[:, rng.choice(x.shape[1], 8, replace=False)])))
  res = solver.solve_lrr_sparse(jnp.asarray(x), jnp.asarray(d), lam=0.1, beta=0.05, mu0=0.05,
                                rho=1.5, iters=6, update_dictionary=False)
  l_ref, s_ref = np_admm_sparse(x.astype(np.float64), d.astype(np.float64), 0.1, 0.05, 0.05,
                                1.5, 6)
  np.testing.assert_allclose(np.asarray(res.state.s_bn), s_ref, atol=2e-4 * np.abs(s_ref).max())
  np.testing.assert_allclose(np.asarray(res.state.l_kn), l_ref, atol=2e-4 * np.abs(l_ref).max())
  assert np.all(np.isfinite(res.trace.objective))


def test_beta_makes_the_coefficients_sparser_and_is_routed_by_the_config(scene):
  from lrrjax.errors import ConfigError
  x = jnp.asarray(scene.x_bn("global"))
  cfg = small_config()
  d = train.init_dictionary(x, cfg.model, 0)
  l1, zeros = [], []
  for beta in (0.001, 0.1, 1.0):
    cfg.model.beta = beta
    res = solver.solve_with_config(x, d, cfg.model, iters=60, update_dictionary=True)
    assert isinstance(res.state, admm.SparseAdmmState)
    w = np.asarray(res.state.w_kn)
    l1.append(np.abs(w).sum())
    zeros.append(np.mean(w == 0))
    # converged: the splits agree and the constraint holds
    assert float(res.trace.rel_residual[-1]) < 1e-3
    np.testing.assert_allclose(np.asarray(res.state.l_kn), w, atol=1e-3 * np.abs(w).max())
  assert l1[0] > l1[1] > l1[2]
  assert zeros[0] == 0 and zeros[2] > 0.01
  cfg.model.beta = -1.0
  with pytest.raises(ConfigError, match="beta"):
    solver.solve_with_config(x, d, cfg.model, iters=2, update_dictionary=False)
  cfg.model.beta = 0.1
  with pytest.raises(ConfigError, match="lrr-admm"):
    network.from_config(x, d, cfg.model)


@pytest.mark.parametrize("learn", [True, False])
def test_untrained_network_equals_solver(scene, learn):
  cfg = small_config(**{"model.learn_dictionary": learn, "model.stages": 6})
  x = jnp.asarray(scene.x_bn())
  d = train.init_dictionary(x, cfg.model, 0)
  model = network.from_config(x, d, cfg.model)
  out = model(x)
  ref = solver.solve_with_config(x, d, cfg.model, iters=6, update_dictionary=learn)
  scale = float(jnp.abs(ref.state.s_bn).max())
  np.testing.assert_allclose(np.asarray(out.s_bn), np.asarray(ref.state.s_bn), atol=1e-4 * scale)


def test_network_is_scale_equivariant(scene):
  cfg = small_config()
  x = jnp.asarray(scene.x_bn())
  model = train.build_model(x, cfg)
  s1 = admm.anomaly_scores(model(x).s_bn)
  graphdef, state = nnx.split(model)
  model.d0[...] = model.d0[...]  # same dictionary (atoms are directions)
  s3 = admm.anomaly_scores(model(3.0 * x).s_bn)
  np.testing.assert_allclose(np.asarray(s3), 3.0 * np.asarray(s1), rtol=2e-3,
                             atol=1e-4 * float(s1.max()))


def test_trace_and_stage_view_shapes(scene):
  cfg = small_config()
  x = jnp.asarray(scene.x_bn())
  model = train.build_model(x, cfg)
  out = model(x, with_trace=True)
  t = cfg.model.stages
  assert out.trace.mse.shape == (t,) and out.s_bn.shape == x.shape
  view = model.stage_view(x)
  assert view.dl_tbn.shape == (t,) + x.shape and view.scores_tn.shape == (t, x.shape[1])
  np.testing.assert_allclose(np.asarray(view.scores_tn[-1]),
                             np.asarray(admm.anomaly_scores(out.s_bn)), rtol=1e-4, atol=1e-6)


def test_gradients_finite_for_every_parameter_on_a_real_crop(data_dir):
  scene = io.load_scene(data_dir / "hydice-urban.mat")
  cube = io.normalize(scene.cube)[:30, :30]
  x = jnp.asarray(cube.reshape(-1, cube.shape[2]).T)
  cfg = small_config(**{"train.loss": "objective"})  # every term of the loss module
  model = train.build_model(x, cfg)
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)

  def loss(p):
    out = nnx.merge(graphdef, p, rest)(x)
    return train.total_loss(train.loss_terms(out, x, cfg.model.lam), cfg.train)

  grads = jax.grad(loss)(params)
  leaves = jax.tree.leaves(grads)
  assert leaves and all(np.all(np.isfinite(np.asarray(g))) for g in leaves)
  assert any(np.abs(np.asarray(g)).max() > 0 for g in leaves)


def test_tied_stages_share_parameters(scene):
  cfg = small_config(**{"model.tie_stages": True})
  model = train.build_model(scene.x_bn(), cfg)
  assert model.log_mu[...].shape == (1,)
  p = model.stage_params(1.0)
  assert p.mu.shape == (cfg.model.stages,) and np.all(p.mu == p.mu[0])


@pytest.mark.parametrize("loss", ["distill", "objective", "mse"])
def test_training_is_deterministic_and_lowers_the_loss(scene, loss):
  # full batch, so the losses of successive steps are comparable
  cfg = small_config(**{"train.steps": 6, "train.plateau_window": 100, "train.loss": loss,
                        "train.batch_pixels": 0})
  a = train.train(scene.x_bn(), cfg)
  b = train.train(scene.x_bn(), cfg)
  assert a.history["loss"] == b.history["loss"]
  assert min(a.history["loss"][1:]) < a.history["loss"][0]
  np.testing.assert_array_equal(train.detect(a.model, scene.x_bn()),
                                train.detect(b.model, scene.x_bn()))


def test_killed_run_resumes_to_the_same_result(scene, tmp_path):
  cfg = small_config(**{"train.steps": 4, "train.plateau_window": 100})
  full = train.train(scene.x_bn(), cfg, workdir=tmp_path / "full")
  # "killed" after 2 steps: a run with steps=2 leaves the checkpoint of step 2
  half = small_config(**{"train.steps": 2, "train.plateau_window": 100})
  train.train(scene.x_bn(), half, workdir=tmp_path / "resumed")
  resumed = train.train(scene.x_bn(), cfg, workdir=tmp_path / "resumed")
  assert resumed.history["loss"] == full.history["loss"]
  np.testing.assert_array_equal(train.detect(resumed.model, scene.x_bn()),
                                train.detect(full.model, scene.x_bn()))
  model, cfg2 = train.restore(tmp_path / "resumed")
  assert cfg2.train.steps == 4
  np.testing.assert_array_equal(train.detect(model, scene.x_bn()),
                                train.detect(full.model, scene.x_bn()))


def test_plateau_rule():
  assert not train.plateaued([5, 4, 3], 3, 1e-3)
  assert not train.plateaued([5, 4, 3, 2, 1], 3, 1e-3)
  assert train.plateaued([5, 1, 1, 1, 1], 3, 1e-3)
  assert train.plateaued([5, 1, 1.0001, 0.99995, 1], 3, 1e-3)


def test_config_overrides_are_checked():
  from lrrjax.errors import ConfigError
  assert train.config_with({"model.stages": "7"}).model.stages == 7
  assert train.config_with({"model.learn_dictionary": "false"}).model.learn_dictionary is False
  with pytest.raises(ConfigError, match="model.stagez"):
    train.config_with({"model.stagez": 3})
  with pytest.raises(ConfigError, match="dict_init"):
    train.build_model(np.ones((4, 30), np.float32), train.config_with({"model.dict_init": "pca"}))


def test_robust_atom_update_keeps_targets_out_of_the_dictionary():
  """Strong targets: the naive update pulls atoms towards them, the robust one not."""
  scene = synthetic.make_scene(40, 40, 30, n_targets=10, seed=5)
  cube = io.normalize(scene.cube)
  x = jnp.asarray(cube.reshape(-1, cube.shape[2]).T)
  gt = scene.gt.ravel()
  cfg = small_config(**{"model.stages": 10})
  d = train.init_dictionary(x, cfg.model, 0)

  def target_affinity(k):
    out = solver.solve_lrr(x, d, iters=10, update_dictionary=True, outlier_k=k,
                           mu0=network.scaled_mu0(x, 10.0))
    atoms = np.asarray(out.state.d_bk)
    t = np.asarray(x)[:, gt]
    t = t / np.linalg.norm(t, axis=0)
    a = atoms / np.linalg.norm(atoms, axis=0)
    return np.max(np.abs(a.T @ t), axis=0).mean(), out

  naive, out_n = target_affinity(1e30)
  robust, out_r = target_affinity(3.0)
  assert robust <= naive
  auc_n = metrics.auc_df(np.asarray(admm.anomaly_scores(out_n.state.s_bn)), gt)
  auc_r = metrics.auc_df(np.asarray(admm.anomaly_scores(out_r.state.s_bn)), gt)
  assert auc_r >= auc_n - 1e-3
