"""Prediction intervals (where one run will land) beside mean intervals (the law's value)."""
import numpy as np
import pytest
from scipy import stats

from conftest import eq4_rows
from scaling_jax.fitting import study_fit
from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms
from scaling_jax.laws import predict as predict_lib
from scaling_jax.laws import prediction_interval as pi_lib

_EQ4 = np.array([1.5, 10.0, 30.0, 0.15])  # E, a, b, eta as forms.OVERTRAINING orders them
_EQ5 = np.array([0.85, 2.0, 0.6])         # eps, k, gamma: Err = eps - k exp(-gamma L)


def _fixed(law, params, x, num):
  """A fit whose bootstrap replicates all equal its point: no fit uncertainty, so an
  interval's width is exactly what the run noise and the extrapolation add."""
  x = {k: np.asarray(v, float) for k, v in x.items()}
  y = np.asarray(law(np.asarray(params), fit_lib.as_inputs(x)), float)
  result = fit_lib.FitResult(law=law, params=np.asarray(params, float), objective=0.0,
                             converged=True, x=x, y=y, weights=np.ones_like(y),
                             starts=np.zeros((1, len(params))),
                             settings=fit_lib.FitSettings())
  boot = bootstrap_lib.BootstrapResult(
      method="parametric", params=np.tile(params, (num, 1)), objective=np.zeros(num),
      valid=np.ones(num, bool), converged=np.ones(num, bool))
  return result, boot


def _z(level):
  return stats.norm.ppf(0.5 + level / 2)


@pytest.mark.parametrize("level", [0.8, 0.95])
def test_the_loss_interval_adds_run_noise_and_extrapolation_in_quadrature(level):
  # Planted bugs this catches: the run noise dropped (width ~ g d alone), the
  # extrapolation term dropped (width ~ s alone), or either added linearly.
  num = 40_000
  x = {"C": [1e18, 1e20], "M": [20.0, 20.0]}
  loss_fit, loss_boot = _fixed(forms.OVERTRAINING, _EQ4, x, num)
  decades = np.array([0.0, 2.0])
  noise = pi_lib.RunNoise(0.01, 1e9, "known")  # df huge: a normal draw
  spread = predict_lib.RunSpread(noise, decades, growth=0.02)
  loss, err = predict_lib.predict_run_chain(loss_fit, loss_boot, spread, None, None, None,
                                            x, level, seed=3)
  assert err is None
  half = np.log(loss.hi / loss.value)
  expected = _z(level) * np.sqrt(0.01**2 + (0.02 * decades) ** 2)
  np.testing.assert_allclose(half, expected, rtol=0.03)
  np.testing.assert_allclose(np.log(loss.value / loss.lo), expected, rtol=0.03)


def test_an_estimated_noise_scale_widens_the_interval_like_students_t():
  # Planted bug: the run noise's own uncertainty (nu df) ignored.
  num, df = 200_000, 3.0
  x = {"C": [1e18], "M": [20.0]}
  loss_fit, loss_boot = _fixed(forms.OVERTRAINING, _EQ4, x, num)
  spread = predict_lib.RunSpread(pi_lib.RunNoise(0.01, df, "estimated"), None)
  loss, _ = predict_lib.predict_run_chain(loss_fit, loss_boot, spread, None, None, None,
                                          x, 0.95, seed=4)
  half = float(np.log(loss.hi / loss.value)[0])
  assert half == pytest.approx(stats.t.ppf(0.975, df) * 0.01, rel=0.04)


def test_the_error_interval_carries_the_losss_spread_and_its_own_noise():
  # Planted bugs: the error law fed the mean loss instead of one run's loss, or its
  # own run noise dropped. Err = eps - k exp(-gamma L): slope k gamma exp(-gamma L).
  num = 60_000
  x = {"C": [1e19], "M": [20.0]}
  loss_fit, loss_boot = _fixed(forms.OVERTRAINING, _EQ4, x, num)
  point = float(loss_fit.predict(x)[0])
  err_fit, err_boot = _fixed(forms.DOWNSTREAM, _EQ5, {"L": [point - 0.1, point + 0.1]}, num)
  loss_spread = predict_lib.RunSpread(pi_lib.RunNoise(0.02, 1e9, "known"), np.zeros(1))
  err_spread = predict_lib.RunSpread(pi_lib.RunNoise(0.015, 1e9, "known"), None)
  loss, err = predict_lib.predict_run_chain(loss_fit, loss_boot, loss_spread, err_fit,
                                            err_boot, err_spread, x, 0.95, seed=5)
  slope = _EQ5[1] * _EQ5[2] * np.exp(-_EQ5[2] * point)
  expected = 1.96 * np.sqrt((slope * point * 0.02) ** 2 + 0.015**2)
  assert float((err.hi - err.lo)[0]) / 2 == pytest.approx(expected, rel=0.05)
  assert float(err.value[0]) == pytest.approx(
      float(forms.DOWNSTREAM(_EQ5, {"L": np.array([point])})[0]), rel=1e-6)


def test_distance_counts_decades_of_compute_and_of_m_beyond_the_fit_runs():
  fit_x = {"C": np.array([1e18, 1e19]), "M": np.array([20.0, 320.0])}
  target = {"C": np.array([1e18, 1e21, 1e19]), "M": np.array([20.0, 20.0, 640.0])}
  np.testing.assert_allclose(pi_lib.distance(fit_x, target), [0.0, 2.0, np.log10(2)])
  curves = {"N": np.array([1e8]), "D": np.array([2e9])}
  far = {"N": np.array([1e9]), "D": np.array([2e10])}
  np.testing.assert_allclose(pi_lib.distance(curves, far), [2.0])


def test_the_prior_pools_with_the_fits_own_scale_by_degrees_of_freedom():
  prior = pi_lib.Prior(0.01, 4.0, 0.0, "test")
  pooled = pi_lib.pooled_noise(0.03, 1, prior, "one residual")
  assert pooled.df == 5.0
  assert pooled.sigma == pytest.approx(np.sqrt((0.03**2 + 4 * 0.01**2) / 5))
  plenty = pi_lib.pooled_noise(0.03, 400, prior, "many")
  assert plenty.sigma == pytest.approx(0.03, rel=0.01)


@pytest.mark.slow  # a real fit and two bootstraps: compiles the solver
def test_the_study_puts_each_kind_in_its_own_columns():
  # Planted bug: loss_lo/hi and loss_mean_lo/hi swapped (or one computed twice).
  from scaling_jax import config_lib  # pylint: disable=import-outside-toplevel
  study = config_lib.default_config().study
  study.bootstrap.num_resamples = 64
  study.targets = "m8e+06@40"
  study.loss_design = "m1e+06@10,m1e+06@20,m2e+06@20,m4e+06@20,m1e+06@40,m2e+06@40"
  study.downstream = "none"
  fit = study_fit.fit(eq4_rows(), {}, study)
  target = fit.targets[0]
  x = {"C": np.array([target["flops"]]), "M": np.array([target["M"]])}
  mean = predict_lib.predict(fit.loss.result, fit.loss.boot, x, 0.95)
  assert (target["loss_mean_lo"], target["loss_mean_hi"]) == pytest.approx(
      (mean.lo[0], mean.hi[0]))
  decades = pi_lib.distance(fit.loss.result.x, x)
  assert target["extrapolation_decades"] == pytest.approx(decades[0])
  run, _ = predict_lib.predict_run_chain(
      fit.loss.result, fit.loss.run_boot,
      predict_lib.RunSpread(fit.loss.run_noise, decades, fit.loss.extrapolation_growth),
      None, None, None, x, 0.95, seed=fit.loss.seed)
  assert (target["loss_lo"], target["loss_hi"]) == pytest.approx((run.lo[0], run.hi[0]))
  # eq4_rows scatter by 0.1%: the run noise is the prior's, pooled with that.
  assert fit.loss.run_noise.df == 2 + pi_lib.LOSS_PRIOR.run_noise_df
  assert fit.interval == "prediction"
  # Six runs leave one cutoff to backtest (five runs up to m2e+06@40, predicting
  # m4e+06@20); by default the target's extrapolation term is the prior's.
  backtest = fit.loss.backtest
  assert [(r["num_fit"], r["run"]) for r in backtest.rows] == [(5, "r4e+06_20")]
  assert fit.loss.extrapolation_growth == pi_lib.LOSS_PRIOR.growth != backtest.growth
  from scaling_jax.report import summary  # pylint: disable=import-outside-toplevel
  text = summary.render(fit, {"workdir": "w"})
  assert "## Backtest: how this design predicts its own largest runs" in text
  assert "| 5 | 9.6e+14 | r4e+06_20 | 0.30 |" in text
  # study.extrapolation='backtest': the backtest's growth, pooled, widens the target's.
  study.extrapolation = "backtest"
  pooled = study_fit.fit(eq4_rows(), {}, study)
  assert pooled.loss.extrapolation_growth == backtest.growth
  assert pooled.loss.backtest.rows == backtest.rows
  assert pooled.targets[0]["loss_hi"] != target["loss_hi"]
  assert backtest.source in summary.render(pooled, {"workdir": "w"})


def test_readme_help_and_summary_say_what_each_kind_covers():
  import pathlib  # pylint: disable=import-outside-toplevel
  from scaling_jax import main  # pylint: disable=import-outside-toplevel
  from scaling_jax.report import summary  # pylint: disable=import-outside-toplevel
  readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
  noise = type("Noise", (), dict(sigma=0.01, source="residuals"))()
  fit = type("Fit", (), dict(targets=[dict(run="t", N=1e9, M=20.0, flops=1e20)],
                             level=0.95, interval="mean",
                             loss=type("Law", (), dict(
                                 run_noise=noise, backtest=None, extrapolation="prior",
                                 extrapolation_growth=0.01))()))()
  # The targets table heads its columns; what each kind covers is under Details.
  text = "\n".join(summary._targets_section(fit)  # pylint: disable=protected-access
                   + summary._intervals_section(fit))  # pylint: disable=protected-access
  for kind in pi_lib.KINDS:
    sentence = pi_lib.WHAT_IT_COVERS[kind]
    assert sentence in main.__doc__ and sentence in text, kind
    assert sentence in " ".join(readme.split()), kind
  assert "predicted [95% mean]" in text  # the lead kind heads its columns


def test_the_small_design_warning_says_seeds_add_df_only_as_a_seed_noise_scale():
  # Averaged seeds add no residual degree of freedom under the default noise source;
  # the warning once promised each repeat would.
  from scaling_jax.laws import noise as noise_lib  # pylint: disable=import-outside-toplevel
  x = {"C": np.geomspace(1e17, 1e19, 5), "M": np.array([20.0, 20, 20, 20, 320])}
  result, _ = _fixed(forms.OVERTRAINING, _EQ4, x, 2)
  problem = noise_lib.calibration_problem(
      result, noise_lib.NoiseScale(np.array([0.01]), 1.0, "residuals"))
  assert "noise=seeds" in problem and "seeds add none" in problem
  assert "each repeat adds a degree of freedom" not in problem


def test_an_interval_ends_monte_carlo_error_matches_its_spread_over_reruns():
  # Planted bugs: the binomial spread of the rank dropped or mis-scaled (error off
  # by sqrt(B) or more), or the two ends' errors not taken at their own quantiles.
  rng = np.random.default_rng(7)
  reruns = rng.standard_normal((400, 1000))
  ends = np.array([bootstrap_lib.interval(r, 0.95) for r in reruns])  # [400, 2]
  spread = 1.96 * ends.std(axis=0).max()
  errors = [float(bootstrap_lib.end_error(r, 0.95)[0]) for r in reruns[:50]]
  assert 0.7 * spread < np.median(errors) < 1.4 * spread
  heavy = rng.standard_t(1, size=(1000, 1))  # one residual df: Cauchy-like ends
  assert bootstrap_lib.end_error(heavy, 0.95)[0] > 10 * np.median(errors)


def test_the_summary_prints_an_end_to_the_digits_its_error_supports():
  from scaling_jax.report import verdict  # pylint: disable=import-outside-toplevel
  assert [verdict.end_digits(e) for e in (None, 1e-6, 3e-4, 3e-3, 0.04, 2.0)] == [
      4, 4, 3, 2, 1, 0]
  t = dict(run="t", N=1e9, M=20.0, flops=1e20, loss=2.5, loss_pred=2.51234,
           loss_lo=2.3012345, loss_hi=2.7098765, loss_rel_err=0.005,
           loss_end_error=0.004)
  cells = verdict.target_cells(t, "loss", "prediction")
  assert cells[1] == "2.5123 [2.30, 2.71]"


def test_an_interval_with_a_large_end_error_still_shows_its_width():
  # The main job's error interval [0.133, 0.471] with an end error of 0.059 was
  # printed '[0, 0]' (zero decimals), which reads as no interval at all.
  from scaling_jax.report import verdict  # pylint: disable=import-outside-toplevel
  t = dict(run="t", err=0.4, err_pred=0.35556, err_lo=0.13264, err_hi=0.47075,
           err_rel_err=0.111, err_end_error=0.059)
  assert verdict.target_cells(t, "err", "prediction")[1:] == [
      "0.3556 [0.1, 0.5]", "11.10%", "yes"]
  assert [verdict.width_digits(0.0, w) for w in (3.0, 0.34, 0.11, 0.05, 1e-9)] == [
      0, 1, 1, 2, 4]
  assert verdict.width_digits(0.5, 0.5) == 0 and verdict.width_digits(0, np.inf) == 0


def test_a_fit_that_reaches_zero_still_gets_a_finite_run_noise():
  # A broken law (flagged by its premise checks) must not crash the study on a log
  # of a negative prediction.
  sigma, df = pi_lib.relative_residual_scale([2.0, 3, 4, 5, 6], [2.02, -1, 4, 5.1, 6], 4)
  assert df == 1 and np.isfinite(sigma) and sigma > 1
  assert pi_lib.relative_residual_scale([2.0, 3], [2.0, 3], 4) == (0.0, 0)
