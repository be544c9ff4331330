"""Checks the run advisor's first-order ranking by simulation (laws/advise.py).

For each top candidate, outcomes are drawn from the current laws with their noise,
the laws refitted with the run added and bootstrapped with the project's own
`fit` and `bootstrap`; the median width over outcomes is set beside the delta
method's expectation. The same draws serve every candidate (common random numbers),
so their widths differ by where the candidates sit, not by luck.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import predict as predict_lib
from scaling_jax.laws.advise import LEVEL, Advice, Design, candidate_inputs


@dataclasses.dataclass(frozen=True)
class Confirmation:
  """A candidate's expected 95% widths (delta method) beside simulated ones: the
  median over outcomes drawn from the current fit, each refitted and bootstrapped."""
  N: float
  M: float
  flops: float
  loss_width: float
  loss_width_sim: float
  err_width: float
  err_width_sim: float
  loss_width_before_sim: float  # the current fit's bootstrap width, for scale
  err_width_before_sim: float


def _refit(result: fit_lib.FitResult, x_new, y_new) -> fit_lib.FitResult:
  """`result`'s fit with one more unit-weight run, from the same starts."""
  x = {k: np.append(result.x[k], x_new[k]) for k in result.law.inputs}
  return fit_lib.fit(result.law, x, np.append(result.y, y_new),
                     weights=np.append(result.weights, 1.0), starts=result.starts,
                     settings=result.settings)


def _boot(result, design: Design, num_resamples, seed):
  """The project's default bootstrap; with sigma given, the parametric one at it."""
  if np.isinf(design.df):
    return bootstrap_lib.bootstrap(result, method="parametric", num_resamples=num_resamples,
                                   seed=seed, sigma=design.sigma / np.sqrt(result.weights))
  return bootstrap_lib.bootstrap(result, num_resamples=num_resamples, seed=seed)


def _widths(advice, loss_fit, err_fit, num_resamples, seed) -> tuple[float, float]:
  """(loss, error) 95% interval widths of the target from fit + bootstrap."""
  loss_boot = _boot(loss_fit, advice.loss, num_resamples, seed)
  if err_fit is None:
    pred = predict_lib.predict(loss_fit, loss_boot, advice.target_x, LEVEL)
    return float(pred.hi[0] - pred.lo[0]), np.nan
  err_boot = _boot(err_fit, advice.err, num_resamples, seed)
  loss, err = predict_lib.predict_chain(loss_fit, loss_boot, err_fit, err_boot,
                                        advice.target_x, LEVEL)
  return float(loss.hi[0] - loss.lo[0]), float(err.hi[0] - err.lo[0])


def confirm(advice: Advice, loss_fit: fit_lib.FitResult, *, err_fit=None, top: int = 3,
            num_outcomes: int = 5, num_resamples: int = 200,
            seed: int = 0) -> list[Confirmation]:
  """Checks the first-order ranking of advice.ranked[:top] by simulation.

  Each outcome draws the candidate's loss from the current loss law plus noise at
  its sigma (and its error from the error law at that loss, plus noise),
  refits with `fit` and bootstraps with `bootstrap` (the default method, or the
  parametric one where sigma was given). The same normal draws serve every
  candidate (common random numbers), so their widths differ by where they sit.
  """
  if (err_fit is None) != (advice.err is None):
    raise ValueError("give err_fit exactly when the advice was made with one")
  if num_outcomes < 1 or top < 1:
    raise ValueError("top and num_outcomes must be >= 1")
  draws = np.random.default_rng(seed).standard_normal((num_outcomes, 2))
  before = _widths(advice, loss_fit, err_fit, num_resamples, seed)
  out = []
  for c in advice.ranked[:top]:
    x_c = candidate_inputs(loss_fit.law, c.M, c.flops)
    widths = []
    for o, (z_loss, z_err) in enumerate(draws):
      loss_c = loss_fit.predict(x_c)[0] + advice.loss.sigma * z_loss
      new_err = err_fit
      if err_fit is not None and advice.err_measured:
        err_c = err_fit.predict({"L": [loss_c]})[0] + advice.err.sigma * z_err
        new_err = _refit(err_fit, {"L": [loss_c]}, err_c)
      widths.append(_widths(advice, _refit(loss_fit, x_c, loss_c), new_err,
                            num_resamples, seed + 1 + o))
    sim = np.median(np.array(widths), axis=0)
    out.append(Confirmation(c.N, c.M, c.flops, c.loss_width, float(sim[0]), c.err_width,
                            float(sim[1]), *before))
  return out
