"""The delta method for a least-squares law fit: where it is linearised, its Fisher
information and the parameters' covariance (the run advisor's arithmetic,
laws/advise.py).

Linearised at the fitted optimum p, Var f(x*) ~= g^T Info^-1 g with Info = J^T W J /
sigma^2 (+ a prior's precision), J = d law(p, x_i) / d p over the runs, W their
weights, sigma the noise of a unit-weight run, g = d f(x*) / d p.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms
from scaling_jax.laws import noise as noise_lib

# Curvature below this share of the largest (information scaled to unit diagonal)
# means the runs leave some parameter direction unpinned: its variance is rounding.
_MIN_CURVATURE_RATIO = 1e-12


@dataclasses.dataclass(frozen=True)
class Design:
  """What the delta method needs of one law: where it is linearised and how noisy.

  Build it with `design_of(fit)`; build it by hand to advise before any fit is
  possible (params a prior guess, plus `prior_sd` to keep Info invertible).
  """
  law: forms.Law
  params: np.ndarray               # [P] point of linearisation (the fit's optimum)
  x: dict[str, np.ndarray]         # inputs of the runs so far, each [n]
  weights: np.ndarray              # [n]
  sigma: float                     # noise sd of a unit-weight run
  df: float                        # degrees of freedom behind sigma; inf: given
  prior_sd: np.ndarray | None = None  # [P] Gaussian prior sd of each parameter


def design_of(result: fit_lib.FitResult, sigma: float | None = None,
              prior_sd=None) -> Design:
  """The Design of a least-squares fit; sigma from its residuals unless given."""
  if result.settings.robust:
    raise ValueError("advise linearises a least-squares fit; the Huber (robust) "
                     "objective has a different covariance: refit with robust=False")
  df = noise_lib.residual_df(result)
  if sigma is None:
    if df < 1:
      raise ValueError(
          f"{len(result.y)} runs for the {result.law.num_params} parameters of "
          f"{result.law.formula} leave no residual degrees of freedom, so the noise "
          f"scale is unknown: pass sigma (seed spread, the evaluation interval)")
    rss = float(np.sum(result.weights * result.residuals() ** 2))
    sigma, df = np.sqrt(rss / df), float(df)
  elif not (np.isfinite(sigma) and sigma > 0):
    raise ValueError(f"sigma must be a positive number, got {sigma!r}")
  else:
    df = np.inf
  prior = None if prior_sd is None else np.broadcast_to(
      np.asarray(prior_sd, np.float64), (result.law.num_params,)).copy()
  return Design(result.law, np.asarray(result.params, np.float64), dict(result.x),
                np.asarray(result.weights, np.float64), float(sigma), df, prior)


@functools.partial(jax.jit, static_argnames="law")
def _jac(law, params, x):
  return jax.jacfwd(lambda p: law(p, x))(params)


def jacobian(law: forms.Law, params, x: Mapping[str, np.ndarray]) -> np.ndarray:
  """d law(params, x_i) / d params -> [n, P], in float64."""
  with jax.enable_x64(True):
    return np.asarray(_jac(law, jnp.asarray(params, jnp.float64), fit_lib.as_inputs(x)))


def information(design: Design) -> np.ndarray:
  """Info = J^T W J / sigma^2 (+ diag(1 / prior_sd^2)) -> [P, P]."""
  jac = jacobian(design.law, design.params, design.x)
  info = (jac * design.weights[:, None]).T @ jac / design.sigma**2
  if design.prior_sd is not None:
    info = info + np.diag(1.0 / design.prior_sd**2)
  return info


def covariance(info: np.ndarray, law: forms.Law) -> np.ndarray:
  """Info^-1, solved on the unit-diagonal scaling (eta ~ 0.1 beside a ~ 200)."""
  scale = np.sqrt(np.abs(np.diag(info)))
  ratio = 0.0
  if np.all(scale > 0) and np.all(np.isfinite(info)):
    eig = np.linalg.eigvalsh(info / np.outer(scale, scale))
    ratio = eig.min() / eig.max()
  if ratio < _MIN_CURVATURE_RATIO:
    raise ValueError(
        f"the runs do not pin down every parameter of {law.formula} (curvature ratio "
        f"{ratio:.1e}; e.g. runs at one M cannot separate Eq. 4's a from b), so the "
        f"target's variance is unbounded: give prior_sd, or add runs that separate them")
  return np.linalg.inv(info / np.outer(scale, scale)) / np.outer(scale, scale)
