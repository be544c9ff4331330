"""Bootstrap intervals: shapes, validity rules, and coverage on simulated data."""
import numpy as np
import pytest

from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms
from scaling_jax.laws import predict as predict_lib

X = {"X": np.geomspace(1e6, 1e9, 12)}
TRUE = np.array([1.5, 400.0, 0.3])


def _power(params, x=X["X"]):
  return params[0] + params[1] * x ** -params[2]


@pytest.mark.slow
def test_parametric_interval_covers_the_truth_about_95_percent_of_the_time():
  rng = np.random.default_rng(0)
  sigma = np.full(12, 0.01)
  x_far = {"X": np.array([1e11])}
  covered = []
  for trial in range(40):
    y = _power(TRUE) + rng.normal(0, 0.01, 12)
    result = fit_lib.fit(forms.POWER, X, y)
    boot = bootstrap_lib.bootstrap(result, method="parametric", sigma=sigma,
                                   num_resamples=200, seed=trial)
    pred = predict_lib.predict(result, boot, x_far)
    covered.append(pred.lo[0] <= _power(TRUE, x_far["X"])[0] <= pred.hi[0])
  assert 0.85 <= np.mean(covered) <= 1.0


@pytest.mark.slow
def test_residual_bootstrap_keeps_every_point_and_brackets_the_fit():
  rng = np.random.default_rng(1)
  result = fit_lib.fit(forms.POWER, X, _power(TRUE) + rng.normal(0, 0.01, 12))
  boot = bootstrap_lib.bootstrap(result, num_resamples=300)
  assert boot.num_valid == 300
  lo, hi = bootstrap_lib.interval(boot.params)
  assert np.all(lo <= result.params) and np.all(result.params <= hi)
  assert np.all(hi > lo)


@pytest.mark.slow
def test_pairs_bootstrap_drops_resamples_with_too_few_unique_points():
  x = {"X": X["X"][:4]}
  result = fit_lib.fit(forms.POWER, x, _power(TRUE, x["X"]) + np.array([1, -1, 1, -1]) * 1e-3)
  boot = bootstrap_lib.bootstrap(result, method="pairs", num_resamples=400, seed=3)
  # 4 draws from 4 points leave at most 2 unique ones with P = (4 + 6 * 14) / 256 ~ 34%.
  assert 0.5 < boot.num_valid / 400 < 0.8
  assert np.all(np.isnan(boot.params[~boot.valid]))


@pytest.mark.slow
def test_parametric_records_its_noise_source():
  rng = np.random.default_rng(4)
  result = fit_lib.fit(forms.POWER, X, _power(TRUE) + rng.normal(0, 0.01, 12))
  own = bootstrap_lib.bootstrap(result, method="parametric", num_resamples=20)
  assert "residuals" in own.noise_source and own.noise.df == 9 and own.residual_df == 9
  given = bootstrap_lib.bootstrap(result, method="parametric", sigma=np.full(12, 0.01),
                                  num_resamples=20)
  assert "given" in given.noise_source and given.noise.known
  with pytest.raises(ValueError, match="not both"):
    bootstrap_lib.bootstrap(result, method="parametric", sigma=np.full(12, 0.01),
                            noise=own.noise)


@pytest.mark.slow
def test_default_method_refuses_a_design_without_residual_degrees_of_freedom():
  x = {"X": X["X"][:3]}
  result = fit_lib.fit(forms.POWER, x, _power(TRUE, x["X"]))
  with pytest.raises(ValueError, match="no residual degrees of freedom.*add runs"):
    bootstrap_lib.bootstrap(result, num_resamples=20)


@pytest.mark.slow
def test_unknown_method_is_named():
  result = fit_lib.fit(forms.POWER, X, _power(TRUE))
  with pytest.raises(ValueError, match="unknown bootstrap method 'jackknife'"):
    bootstrap_lib.bootstrap(result, method="jackknife")


@pytest.mark.parametrize("num_resamples", [0, -5, 1, 2.5])
def test_config_with_fewer_than_two_resamples_is_refused(num_resamples):
  problem = bootstrap_lib.settings_problem(num_resamples=num_resamples)
  assert problem is not None and "'bootstrap.num_resamples'" in problem and ">= 2" in problem
  assert bootstrap_lib.settings_problem(num_resamples=2) is None
  with pytest.raises(ValueError, match="'bootstrap.num_resamples'"):
    bootstrap_lib.BootstrapSettings(num_resamples=num_resamples)


@pytest.mark.parametrize("num_resamples", [0, -5, 1])
def test_bootstrap_refuses_fewer_than_two_resamples_before_fitting(num_resamples,
                                                                    monkeypatch):
  result = fit_lib.fit(forms.POWER, X, _power(TRUE))
  for name in ("fit_many", "solve_many"):
    monkeypatch.setattr(fit_lib, name, lambda *a, **k: pytest.fail("fitted anyway"),
                        raising=False)
  with pytest.raises(ValueError, match="num_resamples.*>= 2"):
    bootstrap_lib.bootstrap(result, num_resamples=num_resamples)


@pytest.mark.slow
def test_bootstrap_records_how_many_resamples_converged():
  rng = np.random.default_rng(2)
  y = _power(TRUE) + rng.normal(0, 0.01, 12)
  full = bootstrap_lib.bootstrap(fit_lib.fit(forms.POWER, X, y), num_resamples=50)
  assert full.converged.shape == (50,) and full.num_converged == 50
  assert full.converged_fraction == 1.0
  cut = fit_lib.fit(forms.POWER, X, y, settings=fit_lib.FitSettings(maxiter=1))
  cut_boot = bootstrap_lib.bootstrap(cut, num_resamples=50)
  assert cut_boot.num_converged < 50 and cut_boot.converged_fraction < 1.0
