"""Leave-future-out backtest: how a design would have predicted its own largest runs.

At each compute cutoff that leaves the runs at or below it able to fit the law (at
least one residual degree of freedom, and two values of every input), the law is
refitted on those runs alone and predicts every run above the cutoff; each error
log(measured / predicted) is recorded beside the target's extrapolation distance
(prediction_interval.distance, decades in compute and M beyond that refit's runs).
Every cutoff is one problem of one vmapped solve: the runs above it get weight 0.

The errors measure the `prediction` interval's extrapolation term on the study's
own runs. Under e ~ N(0, s^2 + v + g^2 d^2), with s the pooled run noise and v the
refit's own estimation variance at the target (the delta method; a refit on five
runs extrapolates loosely, and that is not the law's misfit), the growth g is
estimated by maximum likelihood and pooled with the prior's g as a variance:
g^2 = (m g_hat^2 + m0 g0^2) / (m + m0), where m counts the distinct held-out runs
beyond the design (errors of one run from several cutoffs are not independent) and
m0 = PRIOR_GROWTH_WORTH is what the prior counts for: it was measured on four data
sets (three testbed training sets, one curve family), and errors within one data
set share its law's misfit, so it is worth about one run each.

Which growth the intervals use is config.study.extrapolation, 'prior' by default,
because on real data the backtest's growth is too pessimistic for the final fit:
its refits hold fewer runs than the final fit, and on the released testbed (each
training set's lower half of compute, 12-13 runs) they err by up to 20% where the
final fit errs by 6% on average, so the backtest's g (0.13-0.16 per decade) made the
80% prediction intervals cover 120 of 120 held-out runs at 63% median width, against
0.95 at 26% with the prior's g (`python benchmarks/backtest_calibration.py`). The backtest is reported either way, and a design whose backtest rejects
the prior's g (rejects_prior) gets a warning naming the option.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import predict as predict_lib
from scaling_jax.laws import prediction_interval as pi_lib

PRIOR_GROWTH_WORTH = 4.0
# config.study.extrapolation: what the intervals' growth comes from ('prior' first:
# the default, see the module docstring).
SOURCES = ("prior", "backtest")
# Residual degrees of freedom a refit needs to count (see the module docstring).
MIN_REFIT_DF = 1
# The ML search's range for g: 0 to 0.5 per decade (a 0.5 sd in log loss per decade
# is far beyond any measured law; the grid's step, 1e-4, is below what matters).
_GROWTH_GRID = np.linspace(0.0, 0.5, 5001)
_ONE_SIDED_LR_95 = 2.706  # the chi-square (1 df) 90% point


@dataclasses.dataclass
class Backtest:
  """The backtest's errors, and the extrapolation growth they give."""
  rows: list[dict]        # per (cutoff, held-out run): see leave_future_out
  growth_estimate: float  # g_hat (nan when there is nothing to estimate from)
  independent_runs: int   # m: distinct held-out runs beyond the design
  growth: float           # g pooled with the prior (used under extrapolation='backtest')
  rejects_prior: bool     # the errors reject the prior's g (likelihood ratio, 5%)
  source: str             # one line for the report

  @property
  def ran(self) -> bool:
    return bool(self.rows)


def _subset(x, mask) -> dict[str, np.ndarray]:
  return {name: np.asarray(values)[mask] for name, values in x.items()}


def cutoffs(law, x) -> list[np.ndarray]:
  """Fit masks [n] bool, one per usable compute cutoff, smallest first."""
  compute = pi_lib.compute_of(x)
  masks = []
  for c in np.unique(compute)[:-1]:
    mask = compute <= c * (1 + 1e-9)
    fit_x = _subset(x, mask)
    if (mask.sum() >= law.num_params + MIN_REFIT_DF
        and fit_lib.distinct_design_points(law, fit_x) >= law.num_params
        and all(len(np.unique(fit_x[k])) >= 2 for k in law.inputs)):
      masks.append(mask)
  return masks


@functools.lru_cache(maxsize=None)
def _log_jacobian(law):
  """jit(d log|law(theta, x)| / d theta): compiled once per law and input shape (a
  backtest takes it at every cutoff, a calibration study at every trial)."""
  return jax.jit(jax.jacfwd(lambda theta, x: jnp.log(jnp.abs(law(theta, x)))))


def _refit_variance(law, params, x, mask, run_noise: float) -> np.ndarray:
  """[n] variance of log(prediction) from the refit's own estimation error (the
  delta method: the law's log-Jacobian J, s^2 j' (J_fit' J_fit)^+ j), so that the
  errors of refits on few runs are not taken for extrapolation error."""
  with jax.enable_x64(True):
    jac = np.asarray(_log_jacobian(law)(jnp.asarray(params, jnp.float64),
                                        fit_lib.as_inputs(x)))
  if not np.all(np.isfinite(jac)):
    return np.full(len(mask), np.inf)
  fitted = jac[mask]
  cov = run_noise**2 * np.linalg.pinv(fitted.T @ fitted)
  return np.einsum("ip,pq,iq->i", jac, cov, jac)


def _loglik(growth, errors, decades, run_noise: float, refit_var) -> np.ndarray:
  """sum log N(e; 0, s^2 + v + g^2 d^2) for each g of `growth`, v the refit's variance."""
  growth = np.atleast_1d(growth)
  var = run_noise**2 + refit_var[None, :] + (growth[:, None] * decades[None, :])**2
  return -0.5 * np.sum(np.log(var) + errors[None, :]**2 / var, axis=1)


def _growth_ml(errors, decades, run_noise: float, refit_var) -> tuple[float, float]:
  """(argmax_g of the log-likelihood, its maximum)."""
  loglik = _loglik(_GROWTH_GRID, errors, decades, run_noise, refit_var)
  return float(_GROWTH_GRID[np.argmax(loglik)]), float(loglik.max())


def no_backtest(prior: pi_lib.Prior, why: str) -> Backtest:
  return Backtest([], float("nan"), 0, prior.growth, False,
                  f"the prior ({why}): {prior.growth:.3g} per decade")


def leave_future_out(result: fit_lib.FitResult, runs, run_noise: float,
                     prior: pi_lib.Prior, batch: int = 0, masks=None,
                     scored=None) -> Backtest:
  """The backtest of a loss law's fit; rows hold cutoff (index, smallest first),
  num_fit, cutoff_flops, run, decades, predicted, measured, log_error, refit_sd
  (sqrt v) and converged. `batch`: solve this many problems (the cutoffs, then
  copies of the last) when it is more than the cutoffs: a study passes its
  bootstrap's resample count, whose solver is then already compiled.
  `run_noise`: the pooled relative run noise s (prediction_interval.RunNoise.sigma).
  `masks`: the refits' points (default: `cutoffs`, by compute); `scored` [n] bool:
  the points a refit predicts when they lie outside it (default: all), e.g. each
  run's final checkpoint of a curve fit (fitting/curve_backtest.py)."""
  masks = cutoffs(result.law, result.x) if masks is None else masks
  if not masks:
    return no_backtest(prior, f"the {len(result.y)} design runs are too few to refit "
                              f"below a compute cutoff: it takes "
                              f"{result.law.num_params + MIN_REFIT_DF + 1} or more "
                              f"(a refit and one run above it), spanning every "
                              f"input at the smaller computes")
  ws = np.stack([np.where(m, result.weights, 0.0)
                 for m in masks + masks[-1:] * max(batch - len(masks), 0)])
  fits = fit_lib.solve_many(result.law, result.x, np.broadcast_to(result.y, ws.shape),
                            ws, starts=result.starts, settings=result.settings)
  params = fits.params[:len(masks)]
  predicted = predict_lib.law_samples(result.law, params, result.x)  # [K, n]
  compute = pi_lib.compute_of(result.x)
  rows = []
  for k, mask in enumerate(masks):
    decades = pi_lib.distance(_subset(result.x, mask), result.x)
    refit_var = _refit_variance(result.law, params[k], result.x, mask, run_noise)
    for i in np.flatnonzero(~mask if scored is None else ~mask & scored):
      ok = predicted[k, i] > 0 and result.y[i] > 0
      rows.append({"cutoff": k, "num_fit": int(mask.sum()),
                   "cutoff_flops": float(compute[mask].max()), "run": str(runs[i]),
                   "decades": float(decades[i]), "predicted": float(predicted[k, i]),
                   "measured": float(result.y[i]),
                   "log_error": float(np.log(result.y[i] / predicted[k, i])) if ok
                   else float("nan"),
                   "refit_sd": float(np.sqrt(refit_var[i])),
                   "converged": bool(fits.converged[k])})
  usable = [r for r in rows if np.isfinite(r["log_error"]) and np.isfinite(r["refit_sd"])]
  beyond = {r["run"] for r in usable if r["decades"] > 0}
  if not usable:
    return dataclasses.replace(no_backtest(prior, "no backtest prediction was "
                                                  "positive"), rows=rows)
  data = (np.array([r["log_error"] for r in usable]),
          np.array([r["decades"] for r in usable]), run_noise,
          np.array([r["refit_sd"] for r in usable])**2)
  estimate, best = _growth_ml(*data)
  # The one-sided likelihood-ratio test of the prior's g against a larger one (5%):
  # errors of one run from several cutoffs count as independent, so it rejects
  # readily; it only says when to warn.
  rejects = (estimate > prior.growth and
             2 * (best - float(_loglik(prior.growth, *data)[0])) > _ONE_SIDED_LR_95)
  m = len(beyond)
  growth = float(np.sqrt((m * estimate**2 + PRIOR_GROWTH_WORTH * prior.growth**2)
                         / (m + PRIOR_GROWTH_WORTH)))
  return Backtest(rows, estimate, m, growth, rejects,
                  f"this design's backtest ({len(masks)} cutoffs, {m} runs beyond "
                  f"them: {estimate:.3g} per decade) pooled with the prior "
                  f"{prior.growth:.3g} (worth {PRIOR_GROWTH_WORTH:g} runs): "
                  f"{growth:.3g} per decade")


def growth_used(backtest: Backtest | None, extrapolation: str, prior: pi_lib.Prior) -> float:
  """The growth per decade a fit's prediction intervals use (config.study.extrapolation)."""
  if backtest is not None and extrapolation == "backtest":
    return backtest.growth
  return prior.growth


def rejection_notes(backtest: Backtest | None, extrapolation: str, prior: pi_lib.Prior,
                    where: str) -> list[str]:
  """A warning when the design's own backtest errs more than the prior's growth
  allows and the intervals still use the prior; `where`: the report's section."""
  if backtest is None or not backtest.rejects_prior or extrapolation == "backtest":
    return []
  return [f"this design's backtest ({where}) extrapolated its own largest runs worse "
          f"than the prior's {prior.growth:.3g} per decade allows (its errors imply "
          f"{backtest.growth_estimate:.3g}); the prediction intervals use the prior, "
          f"whose coverage was measured on real runs, and "
          f"--config.study.extrapolation=backtest widens them by this design's own "
          f"errors ({backtest.growth:.3g} per decade pooled)"]
