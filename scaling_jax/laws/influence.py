"""Which runs an extrapolation leans on: derivatives of predictions by observations.

Implicit differentiation: at the fitted optimum the gradient of the objective
vanishes, g(p*, x, y) = 0, so by the implicit function theorem
  d p* / d y = -H^-1 dg/dy,   H = dg/dp (the objective's Hessian),
and likewise for inputs x. No solver iteration is unrolled; the derivative is that
of the exact fit the user got, for least squares and for the robust objective alike.

`influence[t, i]` = d prediction_t / d observation_i: a shift of delta in run i's
measured value moves prediction t by about influence * delta.

Where H is singular the fitted parameters are not a function of the data (a design
that cannot separate them, or a robust fit with too few points inside huber_delta):
there is no derivative to report, and `InfluenceError` says why instead of returning
rounding noise or NaN.
"""
from __future__ import annotations

import functools
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import solver

# Curvature below this share of the largest (each parameter scaled to unit curvature)
# means the data leave that direction unpinned: solving along it multiplies float64
# rounding (~1e-16) by the inverse share, so 1e-10 keeps influences good to ~1e-6.
# The paper's 5-point Eq. 4 fits sit near 1e-5; one token multiplier gives ~1e-16.
_MIN_CURVATURE_RATIO = 1e-10


class InfluenceError(ValueError):
  """The fit's parameters are not differentiable in the data; the message says why."""


def _objective(law, settings, params, x, y, w):
  if settings.robust:
    return solver.huber_objective(law, params, x, y, w, settings.huber_delta)
  return 0.5 * jnp.sum(w * (law(params, x) - y) ** 2)


@functools.partial(jax.jit, static_argnames=("law", "settings"))
def _param_jacobians(law, settings, params, x, y, w):
  """(H, d p*/d y [P, n], {input: d p*/d x_input [P, n]}) at the optimum `params`."""
  grad = jax.grad(_objective, argnums=2)
  hessian = jax.jacfwd(grad, argnums=2)(law, settings, params, x, y, w)
  cross_y = jax.jacfwd(grad, argnums=4)(law, settings, params, x, y, w)
  cross_x = jax.jacfwd(grad, argnums=3)(law, settings, params, x, y, w)
  solve = lambda b: -jnp.linalg.solve(hessian, b)
  return hessian, solve(cross_y), {k: solve(v) for k, v in cross_x.items()}


def _curvature_ratio(hessian: np.ndarray) -> float:
  """Smallest over largest |eigenvalue| of H scaled to a unit diagonal (0 if singular).

  A parameter the objective does not curve along (a diagonal entry of H at
  underflow scale, 4e-200 on one smoke study's error law) makes H singular: its
  ratio is 0, never a division that overflows into a failed eigensolve.
  """
  diag = np.abs(np.diag(hessian))
  if not np.all(np.isfinite(hessian)) or diag.max(initial=0.0) == 0:
    return 0.0
  if np.any(diag <= diag.max() * np.finfo(np.float64).eps ** 2):
    return 0.0
  scaled = hessian / np.sqrt(np.outer(diag, diag))
  if not np.all(np.isfinite(scaled)):
    return 0.0
  try:
    eigenvalues = np.abs(np.linalg.eigvalsh(scaled))
  except np.linalg.LinAlgError:
    return 0.0
  return float(eigenvalues.min() / eigenvalues.max())


def _not_identified(result: fit_lib.FitResult, ratio: float) -> InfluenceError:
  law, settings = result.law, result.settings
  why = (f"the data do not pin down every parameter of {law.formula} (e.g. a design "
         f"with one token multiplier M cannot separate Eq. 4's a from b)")
  if settings.robust:
    log_residual = np.log(result.predict(result.x)) - np.log(result.y)
    curved = int(np.sum(np.abs(log_residual) <= settings.huber_delta))
    why += (f", or too few points sit where the Huber loss is curved: {curved} of "
            f"{len(result.y)} lie within fit.huber_delta={settings.huber_delta:g} of the "
            f"fit, and the {law.num_params} parameters need about as many")
  return InfluenceError(
      f"the fit's objective has a singular Hessian (curvature ratio {ratio:.1e} < "
      f"{_MIN_CURVATURE_RATIO:g}), so its parameters are not a differentiable function of "
      f"the observations and no influence exists: {why}. Add design points that "
      f"separate the parameters" + (", or raise fit.huber_delta" if settings.robust else ""))


# A parameter this close (relative to its bound's scale) to a bound is taken as
# held there by it; the solver stops on bounds to about its tolerance.
_AT_BOUND = 1e-6


def _active_bounds(result: fit_lib.FitResult) -> list[str]:
  """Names of parameters that sit on a bound of result.settings.bounds."""
  lo, hi = fit_lib.param_bounds(result.law, result.settings)
  p = np.asarray(result.params)
  near = lambda bound: np.isfinite(bound) & (
      np.abs(p - bound) <= _AT_BOUND * np.maximum(1.0, np.abs(bound)))
  return [n for n, hit in zip(result.law.param_names, near(lo) | near(hi)) if hit]


def param_jacobians(result: fit_lib.FitResult):
  """(d p*/d y [P, n], {input: d p*/d x_input [P, n]}); InfluenceError if H is singular
  or a bound holds a parameter (the optimum is then not a zero of the gradient)."""
  active = _active_bounds(result)
  if active:
    raise InfluenceError(
        f"parameter(s) {active} of {result.law.formula} sit on their bounds "
        f"(fit.bounds={result.settings.bounds!r}): there the gradient of the objective "
        f"is not zero, and the implicit-function derivative would be wrong. Refit "
        f"without bounds (fit.bounds='none') to see the influences")
  with jax.enable_x64(True):
    hessian, d_y, d_x = _param_jacobians(
        result.law, result.settings, jnp.asarray(result.params),
        fit_lib.as_inputs(result.x), jnp.asarray(result.y), jnp.asarray(result.weights))
    d_y, d_x = np.asarray(d_y), {k: np.asarray(v) for k, v in d_x.items()}
  ratio = _curvature_ratio(np.asarray(hessian))
  finite = np.all(np.isfinite(d_y)) and all(np.all(np.isfinite(v)) for v in d_x.values())
  if ratio < _MIN_CURVATURE_RATIO or not finite:
    raise _not_identified(result, ratio)
  return d_y, d_x


def _prediction_jacobian(law, params, x_target):
  """d law(params, x_target) / d params -> [n_target, P]."""
  with jax.enable_x64(True):
    return np.asarray(jax.jacfwd(law)(jnp.asarray(params), fit_lib.as_inputs(x_target)))


def prediction_influence(result: fit_lib.FitResult,
                         x_target: Mapping[str, np.ndarray]) -> np.ndarray:
  """d law(x_target) / d y for the fit's observations y -> [n_target, n_fit]."""
  d_params_d_y, _ = param_jacobians(result)
  return _prediction_jacobian(result.law, result.params, x_target) @ d_params_d_y


def chain_influence(loss_fit: fit_lib.FitResult, err_fit: fit_lib.FitResult,
                    x_target: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Derivatives of the chained error prediction Err(L(x_target)) by every input.

  Returns arrays [n_target, n] for: 'loss_fit_loss' (the loss law's observed losses),
  'err_fit_loss' and 'err_fit_err' (the error law's observed losses and errors).
  """
  loss_pred = loss_fit.predict(x_target)
  with jax.enable_x64(True):
    err_law = lambda p, l: err_fit.law(p, {"L": l})
    p_err, l_pred = jnp.asarray(err_fit.params), jnp.asarray(loss_pred)
    d_err_d_loss = np.diag(np.asarray(jax.jacfwd(err_law, argnums=1)(p_err, l_pred)))
    d_err_d_perr = np.asarray(jax.jacfwd(err_law)(p_err, l_pred))
  d_loss_d_y = prediction_influence(loss_fit, x_target)
  d_perr_d_y, d_perr_d_x = param_jacobians(err_fit)
  return {"loss_fit_loss": d_err_d_loss[:, None] * d_loss_d_y,
          "err_fit_loss": d_err_d_perr @ d_perr_d_x["L"],
          "err_fit_err": d_err_d_perr @ d_perr_d_y}
