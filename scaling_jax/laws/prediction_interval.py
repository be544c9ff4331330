"""Prediction intervals: where ONE run trained at a target will land, not the law's mean.

A bootstrap interval (predict.py, the `mean` kind) bounds the law's value at a point
under the assumption that the law's form is exactly right. A user about to pay for
a run needs more: the run's own noise (seed, data order, finite evaluation) and the
law's misfit, which grows with how far the target lies beyond the fit runs. The
`prediction` kind adds both to each bootstrap replicate, in log space for a loss
(errors scale with the loss) and in its own units for an error rate:

  log L*_b = log L_b(x) + s_b z_b + g d(x) z'_b,     z, z' ~ N(0, 1),

- L_b: replicate b of the law, bootstrapped with the run noise below as its scale;
- s_b = s sqrt(nu / chi2_nu): the run-level noise, its estimate's uncertainty drawn
  as in the t-corrected bootstrap. s^2 = (df r^2 + df0 s0^2) / (df + df0) pools the
  fit's own relative residual scale r (on its df = n - p; or the seeds' spread)
  with a prior s0 worth df0 degrees of freedom (the conjugate scaled-inverse-chi-
  square update; nu = df + df0). With the paper's 5 runs (df = 1) the prior
  dominates, as it must: one residual cannot tell the noise;
- d(x): decades of extrapolation, log10 of the target's compute over the largest
  fit run's, plus log10 of its M over the largest fit M (0 inside the design);
- g: the extrapolation error's growth per decade.

s0, df0 and g are a PRIOR measured on the real held-out runs in ../shared (the three
testbed training sets and the training-curve families) by
`python benchmarks/real_calibration.py --measure_prior`; the report says so.
"""
from __future__ import annotations

import dataclasses

import numpy as np


KINDS = ("prediction", "mean")
# One sentence each, printed by README, summary.md and --help.
WHAT_IT_COVERS = {
    "prediction": "a `prediction` interval is where one run trained at that point will "
                  "land: the law's fit uncertainty, the run's own noise and an "
                  "extrapolation error that grows with the decades beyond the fit runs",
    "mean": "a `mean` interval bounds the law's value there (the average over many "
            "seeds), assuming the law's form is exactly right: fit uncertainty only",
}




def help_text() -> str:
  """The two kinds, as --help, README and summary.md say them."""
  return ("Intervals (predictions.csv and fit.json hold both; "
          "--config.study.interval=prediction|mean picks the one summary.md leads "
          "with):\n" + "\n".join(f"  - {WHAT_IT_COVERS[k]}." for k in KINDS))


@dataclasses.dataclass(frozen=True)
class Prior:
  run_noise: float     # s0: sd of one run about the law (log units for a loss)
  run_noise_df: float  # df0: how many residual degrees of freedom s0 is worth
  growth: float        # g: sd of the extrapolation error added per decade
  source: str          # one line for the report

  def line(self) -> str:
    return (f"run noise {self.run_noise:.3g} (worth {self.run_noise_df:g} df), "
            f"extrapolation {self.growth:.3g} per decade; {self.source}")


_MEASURED = ("a prior measured on real held-out runs (the released testbed, one "
             "training-curve family) by benchmarks/real_calibration.py --measure_prior")
# Loss laws (Eq. 3, Eq. 4), log units, from the held-out runs of the testbed's three
# training sets (paper design) and the late checkpoints of the largest model of
# Alabdulmohsin et al.'s language-model curves (fit on the 4 smaller sizes): s0 by
# likelihood, every data set weighted equally; df0 by empirical Bayes over the
# data sets' own estimates; g the upper end of its 95% profile-likelihood interval
# (the likeliest g is 0 over these 0.2-3 decades; farther extrapolations need the
# growth these runs cannot rule out). Measured 2026-12-06; docs/benchmarks.md.
LOSS_PRIOR = Prior(run_noise=0.0060, run_noise_df=7.0, growth=0.0106, source=_MEASURED)
# The error law Err(L), in error-rate units: the residual scale of Eq. 5 fitted to
# every run of each training set (0.0116, 0.0100, 0.0103 on 29-30 df; empirical
# Bayes df0 at its cap, 30). Its extrapolation reaches it through the loss.
ERROR_PRIOR = Prior(run_noise=0.0106, run_noise_df=30.0, growth=0.0, source=_MEASURED)


@dataclasses.dataclass(frozen=True)
class RunNoise:
  """The pooled run-level noise scale: s on nu degrees of freedom."""
  sigma: float
  df: float
  source: str

  def draws(self, rng, num: int) -> np.ndarray:
    """[num] scales s sqrt(nu / chi2_nu): s with its own uncertainty."""
    return self.sigma * np.sqrt(self.df / rng.chisquare(self.df, num))


def pooled_noise(residual_sigma: float, residual_df: float, prior: Prior,
                 what: str) -> RunNoise:
  """The conjugate update of the prior s0 (df0) by an estimate r on df."""
  df = max(float(residual_df), 0.0)
  nu = df + prior.run_noise_df
  if nu <= 0:
    raise ValueError("a run-noise scale needs degrees of freedom from the fit or the prior")
  sigma = np.sqrt((df * residual_sigma**2 + prior.run_noise_df * prior.run_noise**2) / nu)
  return RunNoise(float(sigma), nu, f"{what} ({df:g} df) pooled with the prior "
                                    f"{prior.run_noise:.3g} ({prior.run_noise_df:g} df)")


def with_eval_floor(noise: RunNoise, floor: float | None) -> RunNoise:
  """`noise` raised to `floor` (a known evaluation noise) where it is smaller: no run
  lands closer to the law than its own finite evaluation allows."""
  if floor is None or not np.isfinite(floor) or floor <= noise.sigma:
    return noise
  return RunNoise(float(floor), noise.df,
                  f"the evaluation noise of the recorded task sizes, {floor:.3g}, as a "
                  f"floor over {noise.source}")


def relative_residual_scale(y, fitted, num_params: int) -> tuple[float, int]:
  """sqrt(sum log(y / y_hat)^2 / (n - p)) and n - p (0 when n <= p). A fit that
  reaches zero or below somewhere (a broken law, flagged elsewhere) has no log
  residual there: (y - y_hat) / |y| stands in."""
  y, fitted = np.asarray(y, float), np.asarray(fitted, float)
  df = len(y) - num_params
  if df < 1:
    return 0.0, 0
  positive = (y > 0) & (fitted > 0)
  r = np.where(positive, np.log(np.where(positive, y / np.where(positive, fitted, 1), 1)),
               (y - fitted) / np.maximum(np.abs(y), 1e-12))
  return float(np.sqrt(np.sum(r**2) / df)), df


def absolute_residual_scale(y, fitted, num_params: int) -> tuple[float, int]:
  y, fitted = np.asarray(y, float), np.asarray(fitted, float)
  df = len(y) - num_params
  if df < 1:
    return 0.0, 0
  return float(np.sqrt(np.sum((y - fitted) ** 2) / df)), df


def compute_of(x) -> np.ndarray:
  """Training compute of a law's inputs: C itself (Eq. 4), else 6 N D (Eq. 3)."""
  if "C" in x:
    return np.asarray(x["C"], float)
  return 6.0 * np.asarray(x["N"], float) * np.asarray(x["D"], float)


def distance(fit_x, target_x) -> np.ndarray:
  """Decades beyond the fit runs [n]: in compute, plus in M where the law has M.

  `fit_x`, `target_x`: a law's inputs, {'C', 'M'} (Eq. 4) or {'N', 'D'} (Eq. 3).
  """
  decades = np.maximum(0.0, np.log10(compute_of(target_x) / np.max(compute_of(fit_x))))
  if "M" in target_x and "M" in fit_x:
    decades = decades + np.maximum(
        0.0, np.log10(np.asarray(target_x["M"], float) / np.max(fit_x["M"])))
  return decades


def spread_loss(samples, noise: RunNoise, decades, growth: float, rng) -> np.ndarray:
  """[B, n] replicates of a loss law -> replicates of one run's loss there."""
  samples = np.asarray(samples, float)
  b, n = samples.shape
  run = noise.draws(rng, b)[:, None] * rng.standard_normal((b, n))
  extrapolation = growth * np.asarray(decades, float)[None, :] * rng.standard_normal((b, n))
  return samples * np.exp(run + extrapolation)


def spread_error(samples, noise: RunNoise, rng) -> np.ndarray:
  """[B, n] error-law replicates at one run's loss -> one run's error there."""
  samples = np.asarray(samples, float)
  b, n = samples.shape
  return samples + noise.draws(rng, b)[:, None] * rng.standard_normal((b, n))
