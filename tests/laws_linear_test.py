"""Weighted linear least squares against numpy.linalg.lstsq, including hard cases."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaling_jax.laws import linear


def _solve(phi, y, w):
  with jax.enable_x64(True):
    return np.asarray(linear.solve_linear(jnp.asarray(phi, jnp.float64),
                                          jnp.asarray(y, jnp.float64),
                                          jnp.asarray(w, jnp.float64)))


def _lstsq(phi, y, w):
  """numpy's answer, on unit-norm columns so its rcond cut-off sees no scale."""
  a = phi * np.sqrt(w)[:, None]
  norms = np.linalg.norm(a, axis=0)
  norms = np.where(norms > 0, norms, 1.0)
  return np.linalg.lstsq(a / norms, y * np.sqrt(w), rcond=None)[0] / norms


@pytest.mark.parametrize("n,k", [(3, 1), (5, 2), (7, 3), (40, 4)])
def test_matches_lstsq_with_unequal_weights(n, k):
  rng = np.random.default_rng(n)
  phi, y = rng.normal(size=(n, k)), rng.normal(size=n)
  w = rng.uniform(0.1, 5.0, n)
  np.testing.assert_allclose(_solve(phi, y, w), _lstsq(phi, y, w), rtol=1e-10,
                             atol=1e-12)


def test_columns_of_wildly_different_scales_all_keep_their_coefficients():
  # Like C^-eta columns of a loss law: magnitudes from 1e-14 to 1e10. Without
  # per-column scaling, the tiny column would look rank-deficient and be zeroed.
  rng = np.random.default_rng(1)
  x = np.geomspace(1.0, 100.0, 9)
  phi = np.stack([np.ones(9), 1e-14 * x**-0.5, 1e10 * x**-1.5], axis=-1)
  true = np.array([1.7, 3e14, 2e-10])
  y = phi @ true + rng.normal(0, 1e-3, 9)
  got = _solve(phi, y, np.ones(9))
  np.testing.assert_allclose(got, _lstsq(phi, y, np.ones(9)), rtol=1e-8)
  np.testing.assert_allclose(got, true, rtol=0.05)


@pytest.mark.parametrize("degree,rtol", [(11, 3e-9), (13, 2e-7)])
def test_ill_conditioned_polynomial_basis_matches_lstsq(degree, rtol):
  # Condition numbers 2e7 and 7e8: one Gram-Schmidt pass loses ~10x the accuracy
  # of the re-orthogonalised one, which stays within `rtol` of lstsq (SVD).
  rng = np.random.default_rng(2)
  x = np.linspace(0.0, 1.0, 40)
  phi = np.vander(x, degree)
  y = phi @ rng.normal(size=degree) + rng.normal(0, 0.1, 40)
  got, want = _solve(phi, y, np.ones(40)), _lstsq(phi, y, np.ones(40))
  np.testing.assert_allclose(got, want, rtol=rtol)
  # The residual is what the fitter minimises: it must be as small as lstsq's.
  assert np.sum((phi @ got - y) ** 2) <= np.sum((phi @ want - y) ** 2) * (1 + 1e-9)


def test_nearly_collinear_columns_are_both_kept():
  # Orthogonal parts 1e-7 of the norm are information, not rank deficiency.
  rng = np.random.default_rng(8)
  a, b = rng.normal(size=12), rng.normal(size=12)
  phi = np.stack([np.ones(12), a, a + 1e-7 * b], axis=-1)
  true = np.array([0.5, 2.0, 3.0])
  np.testing.assert_allclose(_solve(phi, phi @ true, np.ones(12)), true, rtol=1e-6)


def test_zero_weight_points_are_ignored():
  rng = np.random.default_rng(3)
  phi, y = rng.normal(size=(8, 3)), rng.normal(size=8)
  w = np.array([1.0, 0.0, 2.0, 1.0, 0.0, 0.5, 1.0, 3.0])
  keep = w > 0
  y_changed = np.where(keep, y, 1e6)  # dropped points may hold anything
  np.testing.assert_allclose(_solve(phi, y_changed, w),
                             _lstsq(phi[keep], y[keep], w[keep]), rtol=1e-10)


def test_dependent_and_empty_columns_get_zero_and_the_fit_is_still_optimal():
  rng = np.random.default_rng(4)
  a, b = rng.normal(size=10), rng.normal(size=10)
  phi = np.stack([a, b, 2.0 * a - b, np.zeros(10)], axis=-1)  # rank 2
  y = rng.normal(size=10)
  got = _solve(phi, y, np.ones(10))
  assert np.all(np.isfinite(got))
  assert got[2] == 0.0 and got[3] == 0.0
  want = _lstsq(phi, y, np.ones(10))  # minimum-norm, but the same fitted values
  np.testing.assert_allclose(phi @ got, phi @ want, rtol=1e-9, atol=1e-12)


def test_batched_problems_are_solved_independently():
  rng = np.random.default_rng(5)
  phi = rng.normal(size=(4, 6, 3))
  y, w = rng.normal(size=(4, 6)), rng.uniform(0.1, 2.0, (4, 6))
  got = _solve(phi, y, w)
  assert got.shape == (4, 3)
  for i in range(4):
    np.testing.assert_allclose(got[i], _lstsq(phi[i], y[i], w[i]), rtol=1e-10)
  # One design shared by many resampled targets and weights (the bootstrap's case).
  shared = _solve(phi[0], y, w)
  for i in range(4):
    np.testing.assert_allclose(shared[i], _lstsq(phi[0], y[i], w[i]), rtol=1e-10)


def test_gradient_with_respect_to_targets_is_the_weighted_pseudo_inverse():
  rng = np.random.default_rng(6)
  phi, y, w = rng.normal(size=(7, 3)), rng.normal(size=7), rng.uniform(0.5, 2.0, 7)
  with jax.enable_x64(True):
    jac = np.asarray(jax.jacobian(lambda t: linear.solve_linear(
        jnp.asarray(phi), t, jnp.asarray(w)))(jnp.asarray(y)))
  sw = np.sqrt(w)
  np.testing.assert_allclose(jac, np.linalg.pinv(phi * sw[:, None]) * sw[None, :],
                             rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dropped", ["duplicate", "zero"])
def test_gradient_stays_finite_when_a_column_is_dropped(dropped):
  rng = np.random.default_rng(7)
  a = rng.normal(size=6)
  phi = np.stack([np.ones(6), a, a if dropped == "duplicate" else np.zeros(6)], axis=-1)
  with jax.enable_x64(True):
    jac = jax.jacobian(lambda t: linear.solve_linear(jnp.asarray(phi), t, jnp.ones(6)))(
        jnp.asarray(rng.normal(size=6)))
  assert np.all(np.isfinite(np.asarray(jac)))
  assert np.all(np.asarray(jac)[2] == 0.0)  # the dropped coefficient does not move
