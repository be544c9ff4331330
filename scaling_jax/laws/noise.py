"""How noisy a fit's observations are, and where that number comes from.

A bootstrap interval is only as honest as its noise scale. The scale and its
uncertainty travel together in a `NoiseScale`: sigma (per point, in the units of
y), the degrees of freedom behind it (`df`; inf when it is taken as known) and a
one-line `source` the report prints. Sources, from most to least trustworthy:

- `seed_noise`: the spread between seeds of the same design point;
- `residual_noise`: the fit's own residuals, sigma^2 = RSS / (n - p). With the
  paper's 5 points for 4 parameters that is one degree of freedom: an unbiased
  scale whose own spread is a chi-square with 1 df, so a 95% interval must span
  t_1(0.975) = 12.7 standard errors, not 1.96;
- `pooled_noise`: the residuals of several fits that share a noise level (the same
  design on other training sets), their degrees of freedom added. Only honest when
  their residuals are independent: the released testbed's three training sets share
  one residual pattern (the misfit is the design's, not the noise's), so pooling
  them overstates the degrees of freedom;
- `floor`: a per-point lower bound, e.g. the evaluation interval of each run's
  loss (loss_ci / 1.96): the finite validation set alone makes that much noise.
  Alone it is far too small for the testbed (0.006 against residuals of 0.02):
  seed-to-seed and model-to-model variation dominate.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import lack_of_fit

# Points whose leverage is this close to 1 are fitted exactly whatever their noise:
# their residual is 0/0 after the leverage adjustment and carries no information.
_FULL_LEVERAGE = 1 - 1e-8
# Below this many residual degrees of freedom a noise scale cannot be checked, and
# the t-correction it needs (t_2(0.975) = 4.3 standard errors) dominates the width.
MIN_CALIBRATED_DF = 3


@dataclasses.dataclass(frozen=True)
class NoiseScale:
  # [n] noise standard deviation of each observation, or [1]: one scale per unit
  # weight (a point of weight w then has sigma / sqrt(w))
  sigma: np.ndarray
  df: float                 # degrees of freedom behind sigma; inf: taken as known
  source: str               # one line for the report: where sigma comes from
  floor: np.ndarray | None = None  # [n] or [1]: lower bound on each point's sigma
  # Measured apart from the fit's residuals (seeds): the residuals can then be
  # tested against it, a misfit check (calibration_problem).
  external: bool = False

  def __post_init__(self):
    sigma = np.atleast_1d(np.asarray(self.sigma, np.float64))
    if sigma.ndim != 1 or not np.all(np.isfinite(sigma)) or np.any(sigma < 0):
      raise ValueError(f"sigma must be finite non-negative numbers, got {self.sigma}")
    if not self.df > 0:
      raise ValueError(f"a noise scale needs df > 0 degrees of freedom, got {self.df}")
    object.__setattr__(self, "sigma", sigma)
    if self.floor is not None:
      floor = np.atleast_1d(np.asarray(self.floor, np.float64))
      if not np.all(np.isfinite(floor)) or np.any(floor < 0):
        raise ValueError(f"floor must be finite non-negative numbers, got {self.floor}")
      object.__setattr__(self, "floor", floor)

  @property
  def known(self) -> bool:
    return bool(np.isinf(self.df))

  def for_points(self, n: int) -> "NoiseScale":
    """This scale broadcast to n points (bootstrap.noise_for first divides a single
    sigma by each point's sqrt(weight))."""
    for name, values in (("sigma", self.sigma), ("floor", self.floor)):
      if values is not None and len(values) not in (1, n):
        raise ValueError(f"{name} has {len(values)} values for {n} points")
    floor = None if self.floor is None else np.broadcast_to(self.floor, (n,)).copy()
    return dataclasses.replace(self, sigma=np.broadcast_to(self.sigma, (n,)).copy(),
                               floor=floor)

  def with_floor(self, floor, what: str) -> "NoiseScale":
    return dataclasses.replace(self, floor=floor, source=f"{self.source}; floor: {what}")

  def scales(self, rng, num_resamples: int) -> np.ndarray:
    """[B, n] per-resample sigmas: sigma * sqrt(df / chi2_df), floored.

    Drawing the scale from its sampling distribution (the fiducial/Bayesian
    posterior of sigma given an estimate on df degrees of freedom) makes every
    replicate's deviation a normal mixture that is exactly Student's t in a linear
    model: the t-correction for an estimated scale, at every level at once.
    """
    factor = np.ones(num_resamples)
    if not self.known:
      factor = np.sqrt(self.df / rng.chisquare(self.df, num_resamples))
    sigmas = factor[:, None] * self.sigma[None, :]
    return sigmas if self.floor is None else np.maximum(sigmas, self.floor[None, :])


def residual_df(result: fit_lib.FitResult) -> int:
  return len(result.y) - result.law.num_params


@functools.partial(jax.jit, static_argnames="law")
def _jacobian(law, params, x):
  return jax.jacfwd(lambda p: law(p, x))(params)


def leverages(result: fit_lib.FitResult) -> np.ndarray:
  """Diagonal of the hat matrix of the linearised (weighted) fit [n]: h_i in [0, 1]."""
  with jax.enable_x64(True):
    jac = np.asarray(_jacobian(result.law, jnp.asarray(result.params),
                               fit_lib.as_inputs(result.x)))
  jac = jac * np.sqrt(result.weights)[:, None]
  u, s, _ = np.linalg.svd(jac, full_matrices=False)
  rank = s > s.max() * 1e-10 if s.size and s.max() > 0 else np.zeros_like(s, bool)
  return np.clip(np.sum(u[:, rank] ** 2, axis=1), 0.0, 1.0)


def standardized_residuals(result: fit_lib.FitResult) -> np.ndarray:
  """sqrt(w) r / sqrt(1 - h) of the points not fitted exactly by construction.

  Each has variance sigma^2 under homoscedastic noise (a raw residual has
  sigma^2 (1 - h), smaller where the point pulls the fit to itself).
  """
  h = leverages(result)
  free = h < _FULL_LEVERAGE
  r = np.sqrt(result.weights) * (result.y - result.predict(result.x))
  return r[free] / np.sqrt(1 - h[free])


def misfit_problem(result: fit_lib.FitResult) -> str | None:
  """Why the law's form fails its own design (laws/lack_of_fit.py); None if the
  residuals show no pattern, or the design leaves too few df to look."""
  with jax.enable_x64(True):
    jac = np.asarray(_jacobian(result.law, jnp.asarray(result.params),
                               fit_lib.as_inputs(result.x)))
  found = lack_of_fit.test(result.y, result.predict(result.x), jac, result.weights,
                           result.x)
  if found is None or found.p_value >= lack_of_fit.LACK_OF_FIT_P:
    return None
  return found.line()


def residual_noise(result: fit_lib.FitResult) -> NoiseScale:
  """sigma^2 = sum w r^2 / (n - p) from the fit's residuals, on n - p df."""
  df = residual_df(result)
  if df < 1:
    raise ValueError(
        f"{len(result.y)} points for the {result.law.num_params} parameters of "
        f"{result.law.formula} leave no residual degrees of freedom: the residuals are "
        f"zero whatever the noise. Give a noise scale (seed spread, the evaluation "
        f"interval) or add runs")
  rss = float(np.sum(result.weights * (result.y - result.predict(result.x)) ** 2))
  sigma = np.sqrt(rss / df) / np.sqrt(result.weights)
  return NoiseScale(sigma, df, f"residuals of this fit (n - p = {len(result.y)} - "
                               f"{result.law.num_params} = {df} df)")


def _shared_pattern(results) -> float:
  """Mean squared correlation of the fits' residual vectors when their points
  correspond (one law on as many points: the same design on several training
  sets, point i the same run spec, its inputs close); 0 otherwise, or for one fit."""
  first = results[0]
  same = len(results) > 1 and all(
      r.law is first.law and len(r.y) == len(first.y) for r in results[1:])
  if not same:
    return 0.0
  # One design's residuals all lie near one (n - p)-dimensional space, so even
  # independent noise correlates them: E[rho^2] = 1 / (n - p). Corrected for that;
  # at n - p = 1 every pattern is the same line and sharing cannot be told from
  # independence, so the fits are counted once (the cautious reading).
  d = min(residual_df(r) for r in results)
  if d < 2:
    return 1.0
  residuals = [np.sqrt(r.weights) * (r.y - r.predict(r.x)) for r in results]
  squares = []
  for i in range(len(residuals)):
    for j in range(i + 1, len(residuals)):
      a, b = residuals[i], residuals[j]
      norm = np.linalg.norm(a) * np.linalg.norm(b)
      squares.append(float(a @ b / norm) ** 2 if norm > 0 else 0.0)
  return float(np.clip((np.mean(squares) - 1 / d) / (1 - 1 / d), 0.0, 1.0))


def pooled_noise(results, what: str = "") -> NoiseScale:
  """One sigma from several fits' residuals: sum RSS / sum (n - p), on the degrees
  of freedom their residuals are worth together.

  Fits of one design on several training sets can share their residual pattern
  (the testbed's three share 82% of Eq. 4's residual variance: the misfit is the
  design's, not the noise's). K fits of df each whose residuals correlate by rho
  give a sum of squares with the variance of a chi-square on K df / (1 + (K - 1)
  rho^2) degrees of freedom, not K df; rho^2 is the mean squared correlation of
  the residual vectors beyond what one design gives independent noise. Returned per unit weight (length 1): `for_points` spreads
  it over a fit's points.
  """
  rss = sum(float(np.sum(r.weights * (r.y - r.predict(r.x)) ** 2)) for r in results)
  total = sum(residual_df(r) for r in results)
  if total < 1:
    raise ValueError("the pooled fits leave no residual degrees of freedom")
  shared = _shared_pattern(results)
  df = total / (1 + (len(results) - 1) * shared)
  label = what or f"{len(results)} fits"
  kept = (f"{df:.3g} effective df of {total}: their residual patterns correlate, "
          f"rho^2 = {shared:.2f}" if shared > 0 else f"{total} df")
  return NoiseScale(np.sqrt(rss / total), df, f"residuals pooled over {label} ({kept})")


def seed_noise(groups, what: str = "design points") -> NoiseScale:
  """sigma of ONE run from the spread between seeds: groups is a list of arrays,
  the values of each design point's seeds; df = sum (k_i - 1). Divide by sqrt(k)
  (via `NoiseScale.sigma`) when the fit uses each point's mean of k seeds."""
  groups = [np.asarray(g, np.float64) for g in groups]
  df = sum(len(g) - 1 for g in groups)
  if df < 1:
    raise ValueError("seed spread needs a design point with two or more seeds")
  ss = sum(float(np.sum((g - g.mean()) ** 2)) for g in groups)
  return NoiseScale(np.sqrt(ss / df), df, f"seed-to-seed spread over {what} ({df} df)",
                    external=True)


def calibration_problem(result: fit_lib.FitResult, noise: NoiseScale | None) -> str | None:
  """Why intervals from this fit cannot be shown to be calibrated; None when they can.

  `noise` is the scale a t-corrected method drew from; None for methods that treat
  the residuals' scale as known (residual, pairs), whose 95% intervals cover about
  P(|t_{n-p}| < 1.96) under Gaussian noise (0.70 at n - p = 1, 0.89 at 5).
  """
  df = residual_df(result)
  design = (f"{len(result.y)} points for the {result.law.num_params} parameters of "
            f"{result.law.name} leave {df} residual degree(s) of freedom")
  # A study averages a design point's seeds into one row, so under the default
  # (residual) noise an extra seed adds no degree of freedom; its spread does, to
  # the seed noise scale (noise=seeds).
  add = ("add runs at new (N, M), or seeds of the design runs with "
         "--config.study.bootstrap.noise=seeds (each extra seed then adds a degree of "
         "freedom to the noise scale; averaged under the default noise source, seeds "
         "add none)")
  if noise is None:
    coverage = naive_coverage(df)
    if coverage >= 0.93:
      return None
    return (f"{design}, and this method treats the noise scale they give as known: its "
            f"95% intervals cover about {coverage:.0%}. Use the residual_t method, or "
            f"{add}")
  if noise.known:
    return _known_scale_problem(result, noise)
  if noise.df >= MIN_CALIBRATED_DF:
    return _external_scale_problem(result, noise) if noise.external else None
  return (f"{design}; a noise scale on {noise.df:g} df is uncertain by a factor of "
          f"{_scale_range(noise.df):.0f} (95% range), so the intervals are t-corrected, very "
          f"wide, and rest on Gaussian noise that the design cannot check. For a "
          f"calibrated interval {add}, to {MIN_CALIBRATED_DF} or more degrees of freedom; "
          f"or give a noise scale measured elsewhere (a study's "
          f"--config.study.bootstrap.noise=seeds or pooled; noise.seed_noise, "
          f"noise.pooled_noise from Python)")


def _external_scale_problem(result, noise: NoiseScale) -> str | None:
  """A scale measured apart from the fit (seeds) must explain the residuals: the
  residual variance over it is F(n - p, df) distributed when it does. Seeds of one
  configuration share its offset (the misfit, the data order's luck), which their
  spread cannot see."""
  from scipy import stats
  df = residual_df(result)
  if df < 1:
    return None
  sigma = noise.for_points(len(result.y)).sigma
  if np.any(sigma <= 0):
    return None
  r = result.y - result.predict(result.x)
  ratio = float(np.sum((r / sigma) ** 2) / df)
  p_value = float(stats.f.sf(ratio, df, noise.df))
  if p_value >= 0.01:
    return None
  return (f"the residuals are {np.sqrt(ratio):.1f} times the noise scale ({noise.source}; "
          f"F = {ratio:.1f} on {df} and {noise.df:g} df, p = {p_value:.1g}): the design "
          f"points scatter more than their seeds do (a misfit of the law, or offsets "
          f"the seeds share), so these intervals are too narrow. Use "
          f"--config.study.bootstrap.noise=residuals, or read the prediction intervals")


def _known_scale_problem(result, noise: NoiseScale) -> str | None:
  """A scale taken as known must at least explain the residuals (a chi-square test)."""
  from scipy import stats
  df = residual_df(result)
  sigma = noise.for_points(len(result.y)).sigma
  if noise.floor is not None:
    sigma = np.maximum(sigma, noise.floor)
  r = result.y - result.predict(result.x)
  if df < 1 or np.any(sigma <= 0):
    return None if df < 1 or np.all(r == 0) else (
        f"the noise scale ({noise.source}) is zero at some points, but the fit leaves "
        f"residuals there: give every point a positive scale")
  chi2 = float(np.sum((r / sigma) ** 2))
  p_value = float(stats.chi2.sf(chi2, df))
  if p_value >= 0.01:
    return None
  return (f"the residuals are {np.sqrt(chi2 / df):.1f} times the noise scale taken as "
          f"known ({noise.source}; chi-square {chi2:.1f} on {df} df, p = {p_value:.1g}): "
          f"it misses sources of variation (seed to seed, misfit), so the intervals are "
          f"too narrow. Use the residual_t method, with this scale as its floor")


def naive_coverage(df: float, level: float = 0.95) -> float:
  """Coverage of a nominal interval that takes a scale estimated on df as known."""
  from scipy import stats
  if df < 1:
    return 0.0
  return float(2 * stats.t.cdf(stats.norm.ppf(0.5 + level / 2), df) - 1)


def _scale_range(df: float) -> float:
  from scipy import stats
  lo, hi = stats.chi2.ppf([0.025, 0.975], df)
  return float(np.sqrt(hi / lo))
