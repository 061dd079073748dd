"""Proximal operators and ADMM steps vs numpy float64 oracles and optimality conditions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lrrjax.lrr import admm, prox


def np_svt(x, tau):
  u, s, vt = np.linalg.svd(np.asarray(x, np.float64), full_matrices=False)
  return (u * np.maximum(s - tau, 0.0)) @ vt


def low_rank(rng, k, n, r, scale=1.0):
  return (scale * rng.normal(size=(k, r)) @ rng.normal(size=(r, n))).astype(np.float32)


@pytest.mark.parametrize("shape,rank", [((20, 300), 3), ((12, 40), 12), ((40, 15), 4)])
@pytest.mark.parametrize("tau", [0.0, 0.5, 5.0, 1e4])
def test_svt_matches_numpy(shape, rank, tau):
  rng = np.random.default_rng(0)
  x = low_rank(rng, *shape, rank)
  got = np.asarray(prox.svt(jnp.asarray(x), tau))
  want = np_svt(x, tau)
  assert got.shape == x.shape
  np.testing.assert_allclose(got, want, atol=2e-5 * max(1.0, np.abs(x).max()))


def test_svt_is_the_prox_of_the_nuclear_norm():
  """Optimality: X - Z = tau * (U V^T + W) with ||W||_2 <= 1 on the kept subspace."""
  rng = np.random.default_rng(1)
  x = low_rank(rng, 10, 60, 10)
  tau = 3.0
  z = np.asarray(prox.svt(jnp.asarray(x), tau), np.float64)
  g = (x - z) / tau  # must be a subgradient of ||.||_* at z: spectral norm <= 1
  assert np.linalg.norm(g, 2) <= 1 + 1e-4
  # and <g, z> = ||z||_*
  np.testing.assert_allclose(np.sum(g * z), np.linalg.svd(z, compute_uv=False).sum(), rtol=1e-4)


def test_two_stacked_svt_stages_have_finite_gradients_on_rank_3_input():
  rng = np.random.default_rng(2)
  x = jnp.asarray(low_rank(rng, 20, 200, 3))

  def f(x, t1, t2):
    return jnp.sum(prox.svt(2.0 * prox.svt(x, t1), t2) ** 2)

  gx, g1, g2 = jax.grad(f, argnums=(0, 1, 2))(x, 1.0, 2.0)
  assert np.all(np.isfinite(gx)) and np.isfinite(g1) and np.isfinite(g2)
  assert g1 != 0 and g2 != 0
  # values match float64 numpy SVT
  want = np_svt(2.0 * np_svt(np.asarray(x), 1.0), 2.0)
  np.testing.assert_allclose(np.asarray(prox.svt(2.0 * prox.svt(x, 1.0), 2.0)), want,
                             atol=1e-4 * np.abs(want).max())
  # threshold gradients agree with central differences (float64 numpy forward)
  eps = 1e-2
  fd1 = (np.sum(np_svt(2 * np_svt(x, 1 + eps), 2) ** 2)
         - np.sum(np_svt(2 * np_svt(x, 1 - eps), 2) ** 2)) / (2 * eps)
  np.testing.assert_allclose(float(g1), fd1, rtol=2e-3)


@pytest.mark.parametrize("x", [np.zeros((5, 30)), np.eye(5, 30), np.eye(6, 6) * 3.0])
def test_svt_gradient_finite_on_zero_and_repeated_singular_values(x):
  x = jnp.asarray(x, jnp.float32)
  gx, gt = jax.grad(lambda x, t: jnp.sum(prox.svt(x, t) ** 2) + jnp.sum(prox.svt(x, t)),
                    argnums=(0, 1))(x, 0.5)
  assert np.all(np.isfinite(gx)) and np.isfinite(gt)


def test_svt_gradient_matches_finite_differences_in_x():
  rng = np.random.default_rng(3)
  x = rng.normal(size=(6, 30))
  d = rng.normal(size=x.shape)
  f = lambda x: jnp.sum(jnp.sin(prox.svt(x, 1.5)))
  g = jax.grad(f)(jnp.asarray(x, jnp.float32))
  # float64 numpy forward for the central difference
  f64 = lambda x: np.sum(np.sin(np_svt(x, 1.5)))
  eps = 1e-5
  fd = (f64(x + eps * d) - f64(x - eps * d)) / (2 * eps)
  np.testing.assert_allclose(float(jnp.sum(g * d)), fd, rtol=2e-3)


def test_soft_threshold_matches_closed_form_and_optimality():
  x = np.linspace(-3, 3, 61).astype(np.float32)
  z = np.asarray(prox.soft_threshold(jnp.asarray(x), 1.0))
  np.testing.assert_allclose(z, np.sign(x) * np.maximum(np.abs(x) - 1, 0), atol=1e-7)
  # optimality: x - z in tau * d|z|
  g = x - z
  assert np.all(np.abs(g) <= 1.0 + 1e-6)
  assert np.allclose(g[z != 0], np.sign(z[z != 0]))


def test_column_shrink_matches_numpy_and_handles_zero_columns():
  rng = np.random.default_rng(4)
  x = rng.normal(size=(8, 50)).astype(np.float32)
  x[:, 3] = 0.0
  tau = 2.5
  z = np.asarray(prox.column_shrink(jnp.asarray(x), tau))
  nrm = np.linalg.norm(x.astype(np.float64), axis=0)
  want = x * np.where(nrm > 0, np.maximum(nrm - tau, 0) / np.where(nrm > 0, nrm, 1), 0)
  np.testing.assert_allclose(z, want, atol=1e-6)
  # optimality: each nonzero column satisfies x - z = tau z / ||z||
  nz = np.linalg.norm(z, axis=0) > 0
  np.testing.assert_allclose((x - z)[:, nz], tau * z[:, nz] / np.linalg.norm(z[:, nz], axis=0),
                             atol=1e-5)
  assert np.all(np.linalg.norm(x[:, ~nz], axis=0) <= tau + 1e-6)
  g = jax.grad(lambda x: jnp.sum(prox.column_shrink(x, tau) ** 2))(jnp.asarray(x))
  assert np.all(np.isfinite(g))


def test_nuclear_norm_value_and_subgradient_on_rank_deficient_input():
  rng = np.random.default_rng(5)
  x = low_rank(rng, 10, 80, 2)
  val = float(prox.nuclear_norm(jnp.asarray(x)))
  np.testing.assert_allclose(val, np.linalg.svd(x.astype(np.float64), compute_uv=False).sum(),
                             rtol=1e-4)
  g = np.asarray(jax.grad(prox.nuclear_norm)(jnp.asarray(x)))
  u, s, vt = np.linalg.svd(x.astype(np.float64), full_matrices=False)
  np.testing.assert_allclose(g, u[:, :2] @ vt[:2], atol=1e-3)


def test_solve_l_matches_numpy_and_is_the_argmin():
  rng = np.random.default_rng(6)
  b, k, n, mu = 12, 5, 40, 0.7
  x, s, y1 = (rng.normal(size=(b, n)) for _ in range(3))
  j, y2 = (rng.normal(size=(k, n)) for _ in range(2))
  d = np.asarray(admm.project_atoms(jnp.asarray(rng.normal(size=(b, k)))), np.float64)
  got = np.asarray(admm.solve_l(*(jnp.asarray(a, jnp.float32) for a in (x, s, d, j, y1, y2)), mu))
  want = np.linalg.solve(d.T @ d + np.eye(k), d.T @ (x - s + y1 / mu) + j - y2 / mu)
  np.testing.assert_allclose(got, want, atol=1e-4)
  # gradient of the augmented Lagrangian in L vanishes there
  grad = -d.T @ (y1 + mu * (x - d @ want - s)) + y2 + mu * (want - j)
  assert np.abs(grad).max() < 1e-8


def test_inverse_vjp_is_exact_and_finite_on_repeated_eigenvalues():
  g = jnp.zeros((4, 4))  # all eigenvalues equal
  grad = jax.grad(lambda g: jnp.sum(admm.inv_gram_plus_identity(g) @ jnp.arange(4.0)))(g)
  assert np.all(np.isfinite(grad))
  a = np.random.default_rng(7).normal(size=(5, 5))
  g = jnp.asarray(a @ a.T, jnp.float32)
  np.testing.assert_allclose(np.asarray(admm.inv_gram_plus_identity(g)),
                             np.linalg.inv(a @ a.T + np.eye(5)), atol=1e-5)


def test_update_d_decreases_the_weighted_fit_and_projects_atoms():
  rng = np.random.default_rng(8)
  b, k, n = 15, 6, 200
  d = admm.project_atoms(jnp.asarray(rng.normal(size=(b, k)), jnp.float32))
  l = jnp.asarray(rng.normal(size=(k, n)), jnp.float32)
  x = jnp.asarray(rng.normal(size=(b, n)), jnp.float32)
  z = jnp.zeros_like(x)
  w = jnp.asarray(rng.random(n) > 0.1, jnp.float32)
  fit = lambda d: float(jnp.sum(((x - d @ l) * w) ** 2))
  d2 = admm.update_d(x, z, l, d, z, 1.0, 1.0, w)
  assert fit(d2) < fit(d)
  assert np.all(np.linalg.norm(np.asarray(d2), axis=0) <= 1 + 1e-6)


def test_background_weights_mask_outlier_columns():
  rng = np.random.default_rng(9)
  r = rng.normal(size=(10, 500)).astype(np.float32) * 0.1
  r[:, :5] += 5.0
  w = np.asarray(admm.background_weights(jnp.asarray(r)))
  assert np.all(w[:5] == 0) and w[5:].mean() > 0.95


def test_multiplier_update_is_dual_ascent():
  rng = np.random.default_rng(10)
  x, dl, s, y1 = (rng.normal(size=(4, 7)) for _ in range(4))
  l, j, y2 = (rng.normal(size=(3, 7)) for _ in range(3))
  y1n, y2n = admm.update_multipliers(x, dl, s, l, j, y1, y2, 2.0)
  np.testing.assert_allclose(y1n, y1 + 2 * (x - dl - s))
  np.testing.assert_allclose(y2n, y2 + 2 * (l - j))


def test_solve_l_sparse_is_the_argmin():
  rng = np.random.default_rng(11)
  b, k, n, mu = 12, 5, 40, 0.7
  x, s, y1 = (rng.normal(size=(b, n)) for _ in range(3))
  j, w, y2, y3 = (rng.normal(size=(k, n)) for _ in range(4))
  d = np.asarray(admm.project_atoms(jnp.asarray(rng.normal(size=(b, k)))), np.float64)
  args = (x, s, d, j, w, y1, y2, y3)
  got = np.asarray(admm.solve_l_sparse(*(jnp.asarray(a, jnp.float32) for a in args), mu),
                   np.float64)
  want = np.linalg.solve(d.T @ d + 2 * np.eye(k),
                         d.T @ (x - s + y1 / mu) + j - y2 / mu + w - y3 / mu)
  np.testing.assert_allclose(got, want, atol=1e-4)
  # gradient of the augmented Lagrangian in L vanishes there
  grad = (-d.T @ (y1 + mu * (x - d @ want - s)) + y2 + mu * (want - j)
          + y3 + mu * (want - w))
  assert np.abs(grad).max() < 1e-8


def test_update_w_is_the_l1_prox():
  rng = np.random.default_rng(12)
  l, y3 = rng.normal(size=(2, 4, 9))
  mu, tau = 2.0, 0.3
  v = l + y3 / mu
  got = np.asarray(admm.update_w(jnp.asarray(l), jnp.asarray(y3), mu, tau))
  np.testing.assert_allclose(got, np.sign(v) * np.maximum(np.abs(v) - tau, 0), atol=1e-6)
