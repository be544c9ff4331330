"""Do 95% intervals cover 95%? Coverage by simulation, and the pieces it rests on.

Each test here is aimed at a way intervals silently go wrong (the audit of issue 9
planted them all and every older test stayed green): a loss or error law's
uncertainty dropped from the chained error, uncentred residuals, resamples drawn
around the observations instead of the fit, shrunken residuals, a 90% interval
labelled 95%. Expected numbers come from numpy and scipy formulas or from known
simulated truths, never from the code under test.
"""
import dataclasses

import numpy as np
import pytest
from scipy import stats

from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms
from scaling_jax.laws import noise as noise_lib
from scaling_jax.laws import predict as predict_lib
from scaling_jax.laws import profile as profile_lib

TRUE = np.array([1.5, 400.0, 0.3])           # E, A, alpha of y = E + A X^-alpha
X8 = {"X": np.geomspace(1e6, 1e9, 8)}        # 8 points, 3 parameters: n - p = 5
FAR = {"X": np.array([1e11])}                # 100x beyond the largest point
STARTS = np.array([[0.0, 1.0, 0.2], [0.0, 1.0, 0.5]])  # two exponents: fast, enough
ERR_TRUE = np.array([0.86, 2.2, 0.71])       # eps, k, gamma of Err(L)
ERR_STARTS = np.array([[0.5, 1.0, 0.3], [0.5, 1.0, 1.0]])
RESAMPLES = 200  # one batch shape for most tests: the solver compiles once per shape


def _power(params, x):
  return params[0] + params[1] * x ** -params[2]


def _err(params, loss):
  return params[0] - params[1] * np.exp(-params[2] * loss)


def _fit(x, y, law=forms.POWER, starts=STARTS):
  return fit_lib.fit(law, x, y, starts=starts)


@pytest.mark.slow
def test_default_intervals_cover_95_percent_with_five_residual_degrees_of_freedom():
  # 600 seeded trials: a binomial standard error of 0.009 at 0.95. The old residual
  # bootstrap covers P(|t_5| < 1.96) = 0.89 here; a 90% interval covers 0.90;
  # halved residuals about 0.7.
  trials, sigma = 600, 0.05
  rng = np.random.default_rng(0)
  truth = np.array([_power(TRUE, FAR["X"])[0], TRUE[2]])
  covered = []
  for trial in range(trials):
    result = _fit(X8, _power(TRUE, X8["X"]) + rng.normal(0, sigma, 8))
    boot = bootstrap_lib.bootstrap(result, num_resamples=RESAMPLES, seed=trial)
    pred = predict_lib.predict(result, boot, FAR)
    alpha_lo, alpha_hi = bootstrap_lib.interval(boot.params[:, 2])
    covered.append([pred.lo[0] <= truth[0] <= pred.hi[0], alpha_lo <= truth[1] <= alpha_hi])
  coverage = np.mean(covered, axis=0)
  tolerance = 3 * np.sqrt(0.95 * 0.05 / trials)
  assert np.all(np.abs(coverage - 0.95) <= tolerance), coverage


def _off_optimum_fit(shift):
  """A FitResult whose residuals average `shift`: the law sits below every point."""
  rng = np.random.default_rng(1)
  x = X8["X"]
  y = _power(TRUE, x) + shift + rng.normal(0, 0.03, 8)
  return fit_lib.FitResult(law=forms.POWER, params=TRUE, objective=0.0, x={"X": x}, y=y,
                           weights=np.ones(8), starts=STARTS,
                           settings=fit_lib.FitSettings(), converged=True)


@pytest.mark.parametrize("method", ["residual_t", "parametric", "residual"])
def test_resamples_scatter_around_the_fit_not_the_observations(method):
  # Whatever the residuals' mean, resampled data must be centred on the fitted
  # curve: uncentred residuals, or draws added to the observations, move the
  # centre by about the 0.1 shift (each mean over 20000 draws is good to 0.001).
  result = _off_optimum_fit(shift=0.1)
  noise = (noise_lib.NoiseScale(np.full(8, 0.03), np.inf, "test")
           if method != "residual" else None)
  ys, _, _ = bootstrap_lib.resample_data(result, method, 20000, np.random.default_rng(2),
                                         noise=noise)
  np.testing.assert_allclose(ys.mean(axis=0), result.predict(result.x), atol=0.004)


def test_resampled_noise_has_the_noise_scale_of_the_fit():
  # Known noise: every draw has variance sigma^2 (not a half, not double).
  result = _off_optimum_fit(shift=0.0)
  known = noise_lib.NoiseScale(np.full(8, 0.03), np.inf, "test")
  for method in ("residual_t", "parametric"):
    ys, _, _ = bootstrap_lib.resample_data(result, method, 40000, np.random.default_rng(3),
                                           noise=known)
    spread = (ys - result.predict(result.x)).std(axis=0)
    np.testing.assert_allclose(spread, 0.03, rtol=0.03)
  # The older residual method: draws with the unbiased variance RSS / (n - p).
  ys, _, _ = bootstrap_lib.resample_data(result, "residual", 40000, np.random.default_rng(4))
  r = result.y - result.predict(result.x)
  spread = (ys - result.predict(result.x)).std()
  assert spread == pytest.approx(np.sqrt(np.sum((r - r.mean()) ** 2) / (8 - 3)), rel=0.02)


@pytest.mark.slow
def test_default_noise_scale_is_the_unbiased_residual_variance_on_n_minus_p_df():
  rng = np.random.default_rng(4)
  result = _fit(X8, _power(TRUE, X8["X"]) + rng.normal(0, 0.05, 8))
  noise = noise_lib.residual_noise(result)
  rss = np.sum((result.y - _power(result.params, X8["X"])) ** 2)
  np.testing.assert_allclose(noise.sigma, np.sqrt(rss / 5), rtol=1e-9)
  assert noise.df == 5 and "residuals" in noise.source
  # With an estimated scale, each resample draws its own scale: the deviations of a
  # resample's points are t-distributed with 5 df, so 20000 of them put their
  # 97.5% quantile at t_5(0.975) sigma (2.57), not 1.96 sigma.
  ys, _, _ = bootstrap_lib.resample_data(result, "parametric", 20000,
                                         np.random.default_rng(5), noise=noise)
  z = (ys - result.predict(result.x))[:, 0] / noise.sigma[0]
  assert np.quantile(np.abs(z), 0.95) == pytest.approx(stats.t.ppf(0.975, 5), rel=0.05)


def _laws(loss_noise=1.0, err_noise=1.0, seed=6):
  """A loss law (the power law) and an error law on its 8 runs, noise scaled."""
  rng = np.random.default_rng(seed)
  loss_y = _power(TRUE, X8["X"]) + loss_noise * rng.normal(0, 0.05, 8)
  measured = _power(TRUE, X8["X"])  # the error law's inputs: the runs' losses
  err_y = _err(ERR_TRUE, measured) + err_noise * rng.normal(0, 0.02, 8)
  return _fit(X8, loss_y), _fit({"L": measured}, err_y, law=forms.DOWNSTREAM,
                                 starts=ERR_STARTS)


def _chain_width(loss_noise, err_noise):
  """Width of the chained error interval at the largest run, noise scaled."""
  loss_fit, err_fit = _laws(loss_noise, err_noise)
  boots = [bootstrap_lib.bootstrap(f, num_resamples=RESAMPLES, seed=7)
           for f in (loss_fit, err_fit)]
  _, err = predict_lib.predict_chain(loss_fit, boots[0], err_fit, boots[1],
                                     {"X": X8["X"][-1:]})
  return float(err.hi[0] - err.lo[0])


@pytest.mark.slow
def test_chained_error_interval_widens_with_either_laws_uncertainty():
  # The same draws (same seeds) with one law's noise tripled: the error interval
  # must grow (both laws contribute comparably here). It would stay put if the
  # chain dropped that law's replicates.
  base = _chain_width(1.0, 1.0)
  assert _chain_width(3.0, 1.0) > 1.5 * base
  assert _chain_width(1.0, 3.0) > 1.5 * base


@pytest.mark.slow
def test_one_residual_degree_of_freedom_is_flagged_and_t_corrected():
  # 4 points for 3 parameters: one residual df. The interval must be about
  # t_1(0.975) / z(0.975) = 6.5 times the width that treats sigma as known, and
  # the result must say the design cannot support a calibrated interval.
  x = {"X": np.geomspace(1e6, 1e9, 4)}
  result = _fit(x, _power(TRUE, x["X"]) + np.array([0.02, -0.03, 0.025, -0.01]))
  boot = bootstrap_lib.bootstrap(result, num_resamples=2000)
  known = noise_lib.NoiseScale(noise_lib.residual_noise(result).sigma, np.inf, "as known")
  naive = bootstrap_lib.bootstrap(result, num_resamples=2000, noise=known)
  lo, hi = bootstrap_lib.interval(boot.params[:, 0])
  naive_lo, naive_hi = bootstrap_lib.interval(naive.params[:, 0])
  assert (hi - lo) / (naive_hi - naive_lo) > 4.0
  assert boot.residual_df == 1 and "residuals" in boot.noise_source
  assert boot.calibration and "seeds" in boot.calibration
  assert naive.calibration is None or "seeds" in naive.calibration
  # Unstructured noise (a sine of the index on this log grid is a smooth pattern in
  # log X, which the misfit check rightly flags).
  rich = bootstrap_lib.bootstrap(_fit(X8, _power(TRUE, X8["X"]) + 0.01 * np.random.default_rng(
      3).standard_normal(8)), num_resamples=RESAMPLES)
  assert rich.calibration is None and rich.residual_df == 5


@pytest.mark.slow
def test_loss_and_error_laws_draw_independent_resamples_from_one_seed():
  # A study bootstraps both laws with one seed. Were their draws the same stream,
  # the two laws' replicate errors would move together (correlation ~0.9 here)
  # and the chained interval would be wrong.
  deviations = []
  for result in _laws():
    boot = bootstrap_lib.bootstrap(result, method="parametric", num_resamples=RESAMPLES,
                                   seed=3)
    deviations.append(boot.params[:, 0] - result.params[0])
  assert abs(np.corrcoef(*deviations)[0, 1]) < 0.25


def _replicates(params):
  params = np.asarray(params, np.float64)
  return bootstrap_lib.BootstrapResult(
      method="residual_t", params=params, objective=np.zeros(len(params)),
      valid=np.ones(len(params), bool), converged=np.ones(len(params), bool))


def test_intervals_never_leave_the_physical_range():
  # Replicates that put the error below 0 or above 1, or a loss below 0, are
  # clipped, so an interval ends at the limit instead of crossing it.
  loss_fit, err_fit = _laws()
  spread = np.linspace(-3, 3, 101)[:, None] * [1, 0, 0]
  _, err = predict_lib.predict_chain(loss_fit, _replicates(TRUE + 0 * spread), err_fit,
                                     _replicates(ERR_TRUE + spread), FAR)
  assert err.lo[0] == 0.0 and err.hi[0] == 1.0 and 0 < err.value[0] < 1
  assert np.all((err.samples >= 0) & (err.samples <= 1))
  eq4 = np.array([1.8, 210.0, 370.0, 0.135])
  eq4_fit = dataclasses.replace(loss_fit, law=forms.OVERTRAINING, params=eq4)
  spread = np.linspace(-5, 5, 101)[:, None] * [1, 0, 0, 0]
  loss = predict_lib.predict(eq4_fit, _replicates(eq4 + spread),
                             {"C": np.array([1e21]), "M": np.array([20.0])})
  assert loss.lo[0] == 0.0 and loss.hi[0] > 5 and np.all(loss.samples >= 0)
  assert loss.value[0] > 1.8


@pytest.mark.slow
def test_profile_interval_of_the_exponent_matches_the_t_based_wald_interval():
  # Small noise: the profile is nearly quadratic, so its F-based interval must
  # match alpha_hat +- t_{n-p}(0.975) se, se from a finite-difference Jacobian.
  rng = np.random.default_rng(9)
  result = _fit(X8, _power(TRUE, X8["X"]) + rng.normal(0, 0.002, 8))
  lo, hi = profile_lib.profile_interval(result)
  step = 1e-6 * np.maximum(np.abs(result.params), 1e-3)
  jac = np.stack([(_power(result.params + step * e, X8["X"]) -
                   _power(result.params - step * e, X8["X"])) / (2 * step[i])
                  for i, e in enumerate(np.eye(3))], axis=1)
  s2 = 2 * result.objective / 5
  se = np.sqrt(s2 * np.linalg.inv(jac.T @ jac)[2, 2])
  half = stats.t.ppf(0.975, 5) * se
  alpha = result.params[2]
  assert lo == pytest.approx(alpha - half, rel=0.01)
  assert hi == pytest.approx(alpha + half, rel=0.01)


def test_a_noise_scale_taken_as_known_must_explain_the_residuals():
  # An evaluation interval alone (0.005) against noise of 0.05: the chi-square of
  # the residuals on that scale is ~100 on 5 df, so the result says the scale misses
  # sources of variation; the true scale passes.
  rng = np.random.default_rng(10)
  result = _fit(X8, _power(TRUE, X8["X"]) + rng.normal(0, 0.05, 8))
  small = bootstrap_lib.bootstrap(result, method="parametric", sigma=np.full(8, 0.005),
                                  num_resamples=RESAMPLES)
  right = bootstrap_lib.bootstrap(result, method="parametric", sigma=np.full(8, 0.05),
                                  num_resamples=RESAMPLES)
  assert small.calibration and "misses sources of variation" in small.calibration
  assert right.calibration is None and "given" in right.noise_source


def test_seed_spread_and_pooled_residuals_give_unbiased_scales_with_their_df():
  groups = [np.array([3.10, 3.14, 3.12]), np.array([2.90, 2.95])]
  seeds = noise_lib.seed_noise(groups)
  within = sum(np.sum((g - g.mean()) ** 2) for g in groups)
  assert seeds.df == 3 and seeds.sigma[0] == pytest.approx(np.sqrt(within / 3))
  rng = np.random.default_rng(11)
  fits = [_fit(X8, _power(TRUE, X8["X"]) + rng.normal(0, 0.05, 8)) for _ in range(2)]
  pooled = noise_lib.pooled_noise(fits, "two fits")
  rss = sum(np.sum((f.y - _power(f.params, X8["X"])) ** 2) for f in fits)
  # Independent noise: beyond the 1 / (n - p) that one design gives any two
  # residual vectors, the patterns barely correlate, so nearly 10 df.
  a, b = (f.y - _power(f.params, X8["X"]) for f in fits)
  rho2 = max(0.0, ((a @ b) ** 2 / ((a @ a) * (b @ b)) - 1 / 5) / (1 - 1 / 5))
  assert pooled.df == pytest.approx(10 / (1 + rho2)) and pooled.df > 8
  assert pooled.sigma[0] == pytest.approx(np.sqrt(rss / 10))
  assert "two fits" in pooled.source


def test_pooled_fits_that_share_a_residual_pattern_count_about_once():
  # The audit: the testbed's training sets share 82% of their residual variance,
  # and summing their df overstated the pooled scale's certainty (coverage 0.88).
  # Planted bug: df summed regardless (here 15 instead of about 5).
  rng = np.random.default_rng(12)
  pattern = rng.normal(0, 0.05, 8)
  fits = [_fit(X8, _power(TRUE, X8["X"]) + pattern + rng.normal(0, 0.005, 8))
          for _ in range(3)]
  pooled = noise_lib.pooled_noise(fits, "three sets")
  assert 5 <= pooled.df < 6.5 and "effective df of 15" in pooled.source
