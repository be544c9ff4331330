"""Bootstrap confidence intervals: every resample (and every start) in one call.

Four ways to make the resampled data sets, all refitted together by `fit_many`:

- residual_t (default): y* = y_hat + s* u*, u* drawn with replacement from the fit's
  leverage-adjusted residuals (sqrt(w) r / sqrt(1 - h), centred, scaled to unit
  root-mean-square), s* = sigma sqrt(df / chi2_df) drawn once per resample, sigma
  and df from a `noise.NoiseScale` (default: the fit's own residuals, df = n - p).
  Drawing s* carries the uncertainty of an estimated noise scale, the t-correction:
  a plain residual bootstrap treats sigma as known and covers about 70% at a
  nominal 95% when n - p = 1 (the paper's 5-point design), the probability that
  |t_1| < 1.96. Every resample keeps every design point.
- parametric: y* = y_hat + s* z, z ~ N(0, 1), with s* drawn as above from the noise
  scale: `sigma` (per-run noise taken as known, e.g. the recorded loss interval /
  1.96), or a `noise` NoiseScale, or by default the fit's residuals.
- residual: the earlier default, y* = y_hat + r*, r* from the centred residuals
  inflated by sqrt(n / (n - p)), sigma taken as known. Calibrated on large designs
  only (benchmarks/calibration.py).
- pairs: points drawn with replacement, expressed as integer weights so every
  resample has the same shape. Resamples with fewer unique points than parameters
  cannot be fitted and are dropped (their count is reported).

`BootstrapResult` records which method and noise source made it, the residual
degrees of freedom, and `calibration`: why the design cannot support a calibrated
interval (None when it can), for the report to print.

Measured (benchmarks/calibration.py: truth the testbed's RedPajama fits, Gaussian
noise at their residual scale, 1000 trials a design): residual_t's 95% intervals
cover 0.936-0.958 for every target with 3 seeds per run or 20 runs, and 0.95-0.96
for loss and eta on the paper's 5 runs (the old residual default: 0.67), where
the chained error over-covers (0.99: two t-corrected laws add conservatively).
"""
from __future__ import annotations

import dataclasses
import zlib

import numpy as np

from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import noise as noise_lib

METHODS = ("residual_t", "parametric", "residual", "pairs")
DEFAULT_METHOD = "residual_t"
DEFAULT_RESAMPLES = 1000
# Methods whose draws come from a noise scale (NoiseScale), and report its source.
SCALED_METHODS = ("residual_t", "parametric")


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
  # Where the noise came from (one line, for the report); the scale itself for the
  # methods that draw from one (residual_t, parametric), else None.
  noise_source: str | None = None
  noise: noise_lib.NoiseScale | None = None
  residual_df: int | None = None   # n - p of the fitted law
  # Why the design cannot support a calibrated interval; None when it can.
  calibration: str | None = None

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


def noise_for(result: fit_lib.FitResult, sigma=None,
              noise: noise_lib.NoiseScale | None = None) -> noise_lib.NoiseScale:
  """The noise scale a scaled method draws from: `noise`, else `sigma` taken as
  known, else the fit's own residuals."""
  n = len(result.y)
  if noise is not None and sigma is not None:
    raise ValueError("give sigma or noise, not both")
  if sigma is not None:
    sigma = np.asarray(sigma, np.float64)
    if sigma.shape != (n,) or not np.all(np.isfinite(sigma)) or np.any(sigma < 0):
      raise ValueError(f"sigma must be {n} finite non-negative numbers, got {sigma}")
    noise = noise_lib.NoiseScale(sigma, np.inf, "given per-run sigma, taken as known")
  if noise is None:
    noise = noise_lib.residual_noise(result)
  if len(noise.sigma) == 1:  # one scale per unit weight: a point of weight w has sigma/sqrt(w)
    noise = dataclasses.replace(noise, sigma=noise.sigma / np.sqrt(result.weights))
  return noise.for_points(n)


def _unit_residual_pool(result: fit_lib.FitResult) -> np.ndarray:
  """Leverage-adjusted residuals, centred, with unit root-mean-square."""
  pool = noise_lib.standardized_residuals(result)
  pool = pool - pool.mean()
  rms = np.sqrt(np.mean(pool**2)) if pool.size else 0.0
  # An exact fit leaves no shape to resample: fall back to normal draws.
  return pool / rms if rms > 0 else np.empty(0)


def resample_data(result: fit_lib.FitResult, method, num_resamples, rng, sigma=None,
                  noise=None):
  """Resampled (ys [B, n], weights [B, n], usable [B]) around a fit."""
  n, p = len(result.y), result.law.num_params
  ys = np.tile(result.y, (num_resamples, 1))
  ws = np.tile(result.weights, (num_resamples, 1))
  usable = np.ones(num_resamples, bool)
  fitted = result.predict(result.x)
  if method in SCALED_METHODS:
    scales = noise_for(result, sigma, noise).scales(rng, num_resamples)
    pool = _unit_residual_pool(result) if method == "residual_t" else np.empty(0)
    if pool.size:
      unit = pool[rng.integers(0, len(pool), size=(num_resamples, n))]
    else:
      unit = rng.standard_normal((num_resamples, n))
    ys = fitted[None, :] + scales * unit
  elif method == "residual":
    residuals = result.y - fitted
    residuals = residuals - residuals.mean()
    if n > p:
      residuals = residuals * np.sqrt(n / (n - p))
    draws = rng.integers(0, n, size=(num_resamples, n))
    ys = fitted[None, :] + residuals[draws]
  elif method == "pairs":
    counts = np.stack([np.bincount(rng.integers(0, n, size=n), minlength=n)
                       for _ in range(num_resamples)])
    ws = ws * counts
    usable = (counts > 0).sum(axis=1) >= p
  else:
    raise ValueError(f"unknown bootstrap method {method!r}; choose one of {METHODS}")
  return ys, ws, usable


def resamples_problem(num_resamples, name: str) -> str | None:
  # A percentile interval needs two replicates to have any width: with one, lo = hi
  # = that replicate, an interval that claims certainty; with none there is nothing
  # to take percentiles of.
  if (isinstance(num_resamples, (int, np.integer)) and not isinstance(num_resamples, bool)
      and num_resamples >= 2):
    return None
  return (f"{name} is {num_resamples!r}; use an integer >= 2: an interval is a pair of "
          f"percentiles over resamples, which fewer than two cannot give "
          f"({DEFAULT_RESAMPLES} is the default)")


def settings_problem(*, field: str = "bootstrap", method=DEFAULT_METHOD,
                     num_resamples=DEFAULT_RESAMPLES, seed=0, level=0.95) -> str | None:
  """What is wrong with these bootstrap settings, naming them as `field`.<name>;
  None if fine."""
  if method not in METHODS:
    return f"config field '{field}.method' is {method!r}; use one of {METHODS}"
  problem = resamples_problem(num_resamples, f"config field '{field}.num_resamples'")
  if problem:
    return problem
  if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
    return f"config field '{field}.seed' is {seed!r}; use an integer"
  if not 0 < level < 1:
    return f"config field '{field}.level' must lie in (0, 1)"
  return None


@dataclasses.dataclass(frozen=True)
class BootstrapSettings:
  """How a study resamples (method, count, seed) and the intervals' level."""
  method: str = DEFAULT_METHOD
  num_resamples: int = DEFAULT_RESAMPLES
  seed: int = 0
  level: float = 0.95

  def __post_init__(self):
    problem = settings_problem(**dataclasses.asdict(self))
    if problem:
      raise ValueError(problem)


def bootstrap(result: fit_lib.FitResult, *, method: str = DEFAULT_METHOD,
              num_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, sigma=None,
              noise: noise_lib.NoiseScale | None = None) -> BootstrapResult:
  """Refits `result`'s law on resampled data, all resamples x starts in one call.

  `sigma` ([n], taken as known) or `noise` (a NoiseScale) set the noise scale of
  the residual_t and parametric methods; by default the fit's residuals give it.
  The random stream is keyed by seed and the law, so two laws bootstrapped with one
  seed (the loss and the error law of a chain) get independent draws.
  """
  problem = resamples_problem(num_resamples, "num_resamples")
  if problem:
    raise ValueError(problem)
  if method not in METHODS:
    raise ValueError(f"unknown bootstrap method {method!r}; choose one of {METHODS}")
  rng = np.random.default_rng([seed, zlib.crc32(result.law.name.encode())])
  scale = noise_for(result, sigma, noise) if method in SCALED_METHODS else None
  ys, ws, usable = resample_data(result, method, num_resamples, rng, noise=scale)
  # Unusable resamples still ride along (fixed shapes, one compile); they are masked.
  ws = np.where(usable[:, None], ws, result.weights[None, :])
  fits = fit_lib.solve_many(result.law, result.x, ys, ws, starts=result.starts,
                            settings=result.settings)
  valid = usable & np.isfinite(fits.objective) & np.all(np.isfinite(fits.params), axis=1)
  params = np.where(valid[:, None], fits.params, np.nan)
  return BootstrapResult(
      method=method, params=params, objective=fits.objective, valid=valid,
      converged=valid & fits.converged, noise_source=_source(result, method, scale),
      noise=scale, residual_df=noise_lib.residual_df(result),
      calibration=_calibration(result, method, scale))


def _source(result, method, scale) -> str:
  if scale is not None:
    return scale.source
  if method == "residual":
    return (f"residuals of this fit (n - p = {noise_lib.residual_df(result)} df), "
            f"taken as known")
  return "the runs themselves, drawn with replacement"


# Below this many residual degrees of freedom the pairs bootstrap measured 0.75-0.92
# at a nominal 0.95 on simulated designs of 5 to 20 runs (benchmarks/calibration.py).
_PAIRS_MIN_DF = 30


def _calibration(result, method, scale) -> str | None:
  df = noise_lib.residual_df(result)
  if method == "pairs" and df < _PAIRS_MIN_DF:
    return (f"the pairs bootstrap needs many runs: with {len(result.y)} points for "
            f"{result.law.num_params} parameters its 95% intervals measured 0.75-0.92 "
            f"coverage on simulated designs like this one; use the residual_t method")
  return noise_lib.calibration_problem(result, scale) or noise_lib.misfit_problem(result)


def interval(samples, level: float = 0.95, axis: int = 0):
  """Percentile interval of bootstrap samples, ignoring NaN (invalid) resamples."""
  tail = 100 * (1 - level) / 2
  lo, hi = np.nanpercentile(samples, [tail, 100 - tail], axis=axis)
  return lo, hi


def end_error(samples, level: float = 0.95) -> np.ndarray:
  """Monte-Carlo error of each interval end [n]: the larger half-width, over the
  two ends, of a 95% interval for that percentile from the same B replicates.

  The q-quantile of B draws is known to within the order statistics at ranks
  B q -/+ 1.96 sqrt(B q (1 - q)) (the binomial count of draws below it). With the
  paper's one residual degree of freedom the t-corrected replicates are heavy-
  tailed and this error is large: an end is only worth the digits it supports.
  """
  samples = np.asarray(samples, float)
  if samples.ndim == 1:
    samples = samples[:, None]
  errors = []
  for column in samples.T:
    values = np.sort(column[np.isfinite(column)])
    b = len(values)
    if b < 2:
      errors.append(np.inf)
      continue
    worst = 0.0
    for q in ((1 - level) / 2, (1 + level) / 2):
      spread = 1.96 * np.sqrt(b * q * (1 - q))
      lo = values[int(np.clip(np.floor(b * q - spread), 0, b - 1))]
      hi = values[int(np.clip(np.ceil(b * q + spread), 0, b - 1))]
      worst = max(worst, (hi - lo) / 2)
    errors.append(worst)
  return np.array(errors)
