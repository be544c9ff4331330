"""Bootstrap confidence intervals: every resample (and every start) in one call.

Three ways to make the resampled data sets, all refitted together by `fit_many`:

- residual (default): y* = y_hat + r*, r* drawn with replacement from the centred
  residuals inflated by sqrt(n / (n - p)). Every resample keeps every design
  point, which is what small designs need: the paper's loss fit has 5 points for 4
  parameters, so resampling points would often leave fewer unique points than
  parameters.
- pairs: points drawn with replacement, expressed as integer weights so every
  resample has the same shape. Resamples with fewer unique points than parameters
  cannot be fitted and are dropped (their count is reported).
- parametric: y* = y + sigma * z, z ~ N(0, 1), with sigma the per-run measurement
  noise (half-width of the recorded 95% loss interval / 1.96).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from scaling_jax.laws import fit as fit_lib

METHODS = ("residual", "pairs", "parametric")
DEFAULT_RESAMPLES = 1000


@dataclasses.dataclass
class BootstrapResult:
  method: str
  params: np.ndarray     # [B, P]; rows of invalid resamples are NaN
  objective: np.ndarray  # [B]
  valid: np.ndarray      # [B] bool
  # [B] bool: valid, and the resample's best start met the solver's tolerance within
  # maxiter. Unconverged resamples stay valid (their parameters are still a fit's
  # best effort); a low share says the intervals rest partly on cut-off solves.
  converged: np.ndarray

  @property
  def num_valid(self) -> int:
    return int(self.valid.sum())

  @property
  def num_converged(self) -> int:
    return int(self.converged.sum())

  @property
  def converged_fraction(self) -> float:
    """Share of the valid resamples (those the intervals use) whose fit converged."""
    return self.num_converged / self.num_valid if self.num_valid else 0.0


def resample_data(result: fit_lib.FitResult, method, num_resamples, rng, sigma=None):
  """Resampled (ys [B, n], weights [B, n], usable [B]) around a fit."""
  n, p = len(result.y), result.law.num_params
  ys = np.tile(result.y, (num_resamples, 1))
  ws = np.tile(result.weights, (num_resamples, 1))
  usable = np.ones(num_resamples, bool)
  if method == "residual":
    residuals = result.y - result.predict(result.x)
    residuals = residuals - residuals.mean()
    if n > p:
      residuals = residuals * np.sqrt(n / (n - p))
    draws = rng.integers(0, n, size=(num_resamples, n))
    ys = result.predict(result.x)[None, :] + residuals[draws]
  elif method == "pairs":
    counts = np.stack([np.bincount(rng.integers(0, n, size=n), minlength=n)
                       for _ in range(num_resamples)])
    ws = ws * counts
    usable = (counts > 0).sum(axis=1) >= p
  elif method == "parametric":
    if sigma is None:
      raise ValueError("the parametric bootstrap needs sigma: per-run measurement "
                       "noise (e.g. the loss_ci/<set> column / 1.96)")
    sigma = np.asarray(sigma, np.float64)
    if sigma.shape != (n,) or not np.all(np.isfinite(sigma)) or np.any(sigma < 0):
      raise ValueError(f"sigma must be {n} finite non-negative numbers, got {sigma}")
    ys = ys + sigma[None, :] * rng.standard_normal((num_resamples, n))
  else:
    raise ValueError(f"unknown bootstrap method {method!r}; choose one of {METHODS}")
  return ys, ws, usable


def _resamples_problem(num_resamples, name: str) -> str | None:
  # A percentile interval needs two replicates to have any width: with one, lo = hi
  # = that replicate, an interval that claims certainty; with none there is nothing
  # to take percentiles of.
  if (isinstance(num_resamples, (int, np.integer)) and not isinstance(num_resamples, bool)
      and num_resamples >= 2):
    return None
  return (f"{name} is {num_resamples!r}; use an integer >= 2: an interval is a pair of "
          f"percentiles over resamples, which fewer than two cannot give "
          f"({DEFAULT_RESAMPLES} is the default)")


def config_problem(boot_cfg, field: str) -> str | None:
  """What is wrong with a bootstrap config (method, num_resamples, level), naming
  `field`; None if fine."""
  if boot_cfg.method not in METHODS:
    return (f"config field '{field}.method' is {boot_cfg.method!r}; use one of "
            f"{METHODS}")
  problem = _resamples_problem(boot_cfg.num_resamples,
                               f"config field '{field}.num_resamples'")
  if problem:
    return problem
  if not 0 < boot_cfg.level < 1:
    return f"config field '{field}.level' must lie in (0, 1)"
  return None


def bootstrap(result: fit_lib.FitResult, *, method: str = "residual",
              num_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
              sigma=None) -> BootstrapResult:
  """Refits `result`'s law on resampled data, all resamples x starts in one call."""
  problem = _resamples_problem(num_resamples, "num_resamples")
  if problem:
    raise ValueError(problem)
  rng = np.random.default_rng(seed)
  ys, ws, usable = resample_data(result, method, num_resamples, rng, sigma)
  # Unusable resamples still ride along (fixed shapes, one compile); they are masked.
  ws = np.where(usable[:, None], ws, result.weights[None, :])
  fits = fit_lib.solve_many(result.law, result.x, ys, ws, starts=result.starts,
                            settings=result.settings)
  valid = usable & np.isfinite(fits.objective) & np.all(np.isfinite(fits.params), axis=1)
  params = np.where(valid[:, None], fits.params, np.nan)
  return BootstrapResult(method=method, params=params, objective=fits.objective,
                         valid=valid, converged=valid & fits.converged)


def interval(samples, level: float = 0.95, axis: int = 0):
  """Percentile interval of bootstrap samples, ignoring NaN (invalid) resamples."""
  tail = 100 * (1 - level) / 2
  lo, hi = np.nanpercentile(samples, [tail, 100 - tail], axis=axis)
  return lo, hi
