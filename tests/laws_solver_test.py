"""The LM solvers against scipy on known problems, and their implicit derivatives."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from scaling_jax.laws import forms
from scaling_jax.laws import solver

X = np.geomspace(1e6, 1e9, 12)
TRUE = np.array([1.5, 400.0, 0.3])  # E, A, alpha of y = E + A X^-alpha
SETTINGS = dict(maxiter=100, tol=1e-10)


def _power(p, x=X):
  return p[0] + p[1] * x ** -p[2]


def _data(seed=0, noise=0.01):
  rng = np.random.default_rng(seed)
  return _power(TRUE) + rng.normal(0, noise, len(X)), rng.uniform(0.3, 3.0, len(X))


def _projected_params(theta0, y, w):
  # Extra outputs (e.g. a convergence flag) are ignored: only (theta, coef) matter.
  out = solver.solve_projected(forms.POWER, theta0, {"X": jnp.asarray(X)}, y, w,
                               **SETTINGS)
  return jnp.concatenate([out[1], out[0]])  # (E, A, alpha)


_projected_jit = jax.jit(_projected_params)


def _projected(theta0, y, w):
  with jax.enable_x64(True):
    return np.asarray(_projected_jit(jnp.asarray(theta0, jnp.float64), jnp.asarray(y),
                                     jnp.asarray(w)))


@functools.partial(jax.jit, static_argnames="delta")
def _robust_jit(params0, y, w, delta):
  out = solver.solve_robust(forms.POWER, params0, {"X": jnp.asarray(X)}, y, w,
                            delta=delta, **SETTINGS)
  return out[0] if isinstance(out, tuple) else out


def _robust(params0, y, w, delta):
  with jax.enable_x64(True):
    return np.asarray(_robust_jit(jnp.asarray(params0, jnp.float64), jnp.asarray(y),
                                  jnp.asarray(w), delta))


def _weighted_sse(p, y, w):
  return 0.5 * np.sum(w * (_power(p) - y) ** 2)


def _huber(r, delta):
  a = np.abs(r)
  return np.where(a <= delta, 0.5 * r**2, delta * a - 0.5 * delta**2)


def _huber_loss(p, y, w, delta):
  return np.sum(w * _huber(np.log(_power(p)) - np.log(y), delta))


@pytest.fixture(scope="module")
def weighted_fit():
  y, w = _data()
  # scipy's LM on all three parameters (plain least squares), from the truth.
  ref = optimize.least_squares(lambda p: np.sqrt(w) * (_power(p) - y), TRUE,
                               method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15)
  return y, w, ref.x


# From alpha0 = 10, LM's first trial steps overflow X^-alpha: they must be rejected,
# not stall the solve.
@pytest.mark.slow
@pytest.mark.parametrize("alpha0", [0.3, 1.2, 0.05, 10.0])
def test_variable_projection_reaches_the_weighted_least_squares_optimum(
    weighted_fit, alpha0):
  y, w, ref = weighted_fit
  got = _projected([alpha0], y, w)
  np.testing.assert_allclose(got, ref, rtol=1e-6)
  assert _weighted_sse(got, y, w) <= _weighted_sse(ref, y, w) * (1 + 1e-9)


@pytest.mark.slow
def test_overflowing_starts_do_not_disturb_the_others_in_a_vmapped_batch(weighted_fit):
  # X^60 overflows and X^-80 underflows: those members fail, the good one must not.
  y, w, ref = weighted_fit
  with jax.enable_x64(True):
    run = jax.jit(jax.vmap(_projected_jit, in_axes=(0, None, None)))
    params = np.asarray(run(jnp.array([[0.3], [-60.0], [80.0]]), jnp.asarray(y),
                            jnp.asarray(w)))
  np.testing.assert_allclose(params[0], ref, rtol=1e-6)


@pytest.mark.slow
def test_fitted_exponent_differentiates_like_refitting_perturbed_data(weighted_fit):
  # Implicit differentiation through LM. (Only jit(grad(solve)) works: grad of an
  # already-jitted solve fails inside jaxopt, and compiling the gradient takes ~15 s.)
  y, w, _ = weighted_fit
  with jax.enable_x64(True):
    grad = np.asarray(jax.jit(jax.grad(lambda y_: _projected_params(
        jnp.array([0.3]), y_, jnp.asarray(w))[2]))(jnp.asarray(y)))
  step, fd = 1e-3, np.zeros_like(y)  # large enough that solver tolerance is not noise
  for i in range(len(y)):
    bump = np.where(np.arange(len(y)) == i, step, 0.0)
    fd[i] = (_projected([0.3], y + bump, w)[2] - _projected([0.3], y - bump, w)[2]) / (
        2 * step)
  np.testing.assert_allclose(grad, fd, rtol=1e-4, atol=5e-7)


def test_huber_objective_is_the_weighted_huber_loss_of_log_residuals():
  y, w = _data(seed=1, noise=0.02)
  delta = 5e-3  # some log residuals fall inside delta, some outside
  p = TRUE * np.array([1.001, 0.99, 1.0])
  r = np.log(_power(p)) - np.log(y)
  assert (np.abs(r) <= delta).any() and (np.abs(r) > delta).any()
  with jax.enable_x64(True):
    got = float(solver.huber_objective(forms.POWER, jnp.asarray(p), {"X": jnp.asarray(X)},
                                       jnp.asarray(y), jnp.asarray(w), delta))
  assert got == pytest.approx(_huber_loss(p, y, w, delta), rel=1e-10)


@pytest.mark.slow
def test_robust_solver_minimises_the_huber_loss_and_ignores_an_outlier():
  y, w = _data(seed=2, noise=0.002)
  y[3] *= 1.3  # one corrupted run
  delta = 1e-3
  got = _robust(TRUE * np.array([1.1, 0.8, 1.1]), y, w, delta)
  # No point nearby does better (Nelder-Mead on the Huber loss written out here).
  ref = optimize.minimize(_huber_loss, got, args=(y, w, delta), method="Nelder-Mead",
                          options=dict(xatol=1e-12, fatol=1e-14, maxiter=20000))
  assert _huber_loss(got, y, w, delta) <= ref.fun * (1 + 1e-6)
  np.testing.assert_allclose(got, TRUE, rtol=0.05)
  # Plain least squares is dragged by the outlier much further.
  plain = _projected([0.3], y, w)
  clean = np.delete(np.arange(len(X)), 3)
  robust_err = np.abs(_power(got) - _power(TRUE))[clean].max()
  plain_err = np.abs(_power(plain) - _power(TRUE))[clean].max()
  assert robust_err < 0.2 * plain_err
