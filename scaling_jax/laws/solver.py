"""The one module that touches jaxopt (unmaintained upstream; swap it out here).

Two least-squares problems, both solved with jaxopt's Levenberg-Marquardt, the
algorithm of scipy's curve_fit that the paper used:

- `solve_projected`: plain (weighted) least squares on the law's residuals, solved by
  variable projection: LM runs over the non-linear parameters only (one exponent for
  Eq. 4 and 5), the linear ones being the exact least-squares answer for each trial
  exponent. It reaches the same optima as LM on all parameters (Golub & Pereyra 1973)
  in a handful of uniform iterations, which matters because a vmapped while_loop
  runs until its slowest member stops.
- `solve_robust`: Huber loss on log residuals over all parameters (the Chinchilla
  authors' objective), written as least squares on sign(r) sqrt(2 huber(r)).

Both differentiate implicitly (jaxopt's default), so fitted parameters have
gradients with respect to the observations. Both also say whether LM stopped on its
own tolerance test rather than on maxiter (`converged`).
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import jax.numpy as jnp

from scaling_jax.laws import linear

with warnings.catch_warnings():
  # jaxopt announces its end of maintenance on import; say it once here, not per user.
  warnings.filterwarnings("ignore", message=".*JAXopt is no longer maintained.*",
                          category=DeprecationWarning)
  import jaxopt

# Residuals that overflow (an exponent wandering far off) become this large value so
# LM rejects the step instead of blending NaNs into its state.
_NON_FINITE_RESIDUAL = 1e8


def _finite(r):
  return jnp.where(jnp.isfinite(r), r, _NON_FINITE_RESIDUAL)


def _levenberg_marquardt(residual_fun, maxiter, tol):
  # Stop when the step is tiny relative to the parameters or the gradient vanishes:
  # a bare gradient-norm test stalls at the float64 noise floor for some data sets,
  # and under vmap one stalled member keeps the whole batch iterating.
  return jaxopt.LevenbergMarquardt(
      residual_fun=residual_fun, maxiter=maxiter, stop_criterion="madsen-nielsen",
      xtol=tol, gtol=tol * 1e-2, solver="cholesky",
      materialize_jac=True)


def _met_tolerance(solver, params, state):
  """Whether LM's own stopping test holds at its final state (else maxiter stopped it).

  The test jaxopt's while-loop applies (Madsen-Nielsen, with its `- xtol`): a vanishing
  gradient, or a step tiny relative to the parameters. Reading the final state rather
  than comparing iter_num with maxiter also counts a test met on the last iteration.
  The initial state's step is zero, so the step test needs one iteration at least.
  """
  small_gradient = jnp.max(jnp.abs(state.gradient)) <= solver.gtol
  small_step = jnp.linalg.norm(state.delta) <= solver.xtol * (
      jnp.linalg.norm(params) - solver.xtol)
  return small_gradient | ((state.iter_num > 0) & small_step)


def _run(solver, params0, *args):
  """(params, converged) of one LM solve."""
  params, state = solver.run(params0, *args)
  return params, _met_tolerance(solver, params, state)


def projected_coefficients(law, theta, x, y, w, bounds=None):
  """Best linear coefficients of `law` for non-linear params theta (within the
  coefficient part of `bounds`, a `Bounds`, when given)."""
  phi = law.basis(theta, x)
  if bounds is None:
    return linear.solve_linear(phi, y, w)
  return linear.solve_linear_bounded(phi, y, w, bounds.coef_lo, bounds.coef_hi,
                                     bounds.coef_pattern)


def _projected_residual(theta, law, x, y, w, bounds):
  phi = law.basis(theta, x)
  coef = projected_coefficients(law, theta, x, y, w, bounds)
  return _finite(jnp.sqrt(w) * (phi @ coef - y))


class Bounds(NamedTuple):
  """Box bounds split as the law is: theta (non-linear) and coefficients (linear).

  Arrays may be traced; `coef_pattern` (which coefficient bounds are finite) is a
  static tuple of (has_lo, has_hi).
  """
  theta_lo: jnp.ndarray
  theta_hi: jnp.ndarray
  coef_lo: jnp.ndarray
  coef_hi: jnp.ndarray
  coef_pattern: tuple


def solve_projected(law, theta0, x, y, w, *, maxiter: int, tol: float, bounds=None):
  """LM over theta from theta0; returns (theta, linear coefficients, converged).

  With `bounds`, the coefficients are the best within theirs for every trial theta
  (exact), and theta is clipped to its range after LM: exact where the profile of
  the objective along theta has one minimum (one exponent, as in Eq. 4 and 5).
  """
  solver = _levenberg_marquardt(
      lambda t, x, y, w: _projected_residual(t, law, x, y, w, bounds), maxiter, tol)
  theta, converged = _run(solver, theta0, x, y, w)
  if bounds is not None:
    theta = jnp.clip(theta, bounds.theta_lo, bounds.theta_hi)
  return theta, projected_coefficients(law, theta, x, y, w, bounds), converged


def _log_residual(params, law, x, y):
  return jnp.log(law(params, x)) - jnp.log(y)


def _huber_residual(params, law, x, y, w, delta):
  r = _log_residual(params, law, x, y)
  inside = jnp.abs(r) <= delta
  # sqrt(2 huber(r)): r itself inside delta, sqrt(2 delta |r| - delta^2) outside. The
  # sqrt only ever sees positive arguments: jnp.where differentiates both branches,
  # and sqrt's infinite slope at 0 times where's zero would make every derivative NaN.
  excess = jnp.where(inside, 1.0, 2 * delta * jnp.abs(r) - delta**2)
  return _finite(jnp.sqrt(w) * jnp.where(inside, r, jnp.sign(r) * jnp.sqrt(excess)))


def solve_robust(law, params0, x, y, w, *, delta: float, maxiter: int, tol: float):
  """LM on all parameters minimising sum_i w_i huber_delta(log law(x_i) - log y_i).

  Returns (params, converged).
  """
  solver = _levenberg_marquardt(
      lambda p, x, y, w: _huber_residual(p, law, x, y, w, delta), maxiter, tol)
  return _run(solver, params0, x, y, w)


def huber_objective(law, params, x, y, w, delta):
  """sum_i w_i huber_delta(r_i), r the log residuals: what `solve_robust` minimises.

  Written with huber itself rather than as the square of `_huber_residual` (the same
  value) so that its second derivatives, which influence.py needs, carry no sqrt.
  """
  r = _log_residual(params, law, x, y)
  abs_r = jnp.abs(r)
  huber = jnp.where(abs_r <= delta, 0.5 * r**2, delta * (abs_r - 0.5 * delta))
  return jnp.sum(w * huber)
