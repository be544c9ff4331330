"""Implicit derivatives of predictions agree with refitting perturbed data."""
import numpy as np
import pytest

from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms
from scaling_jax.laws import influence

C = np.array([1e16, 8e16, 7e17, 3e18, 2e19, 2e17])
M = np.array([20.0, 20.0, 20.0, 20.0, 20.0, 320.0])
Y = np.array([3.93, 3.45, 3.05, 2.86, 2.68, 3.31])
TARGET = {"C": np.array([8e21, 5e22]), "M": np.array([640.0, 20.0])}


def _finite_difference(law, x, y, x_target, settings, step=1e-6):
  base = fit_lib.fit(law, x, y, settings=settings)
  columns = []
  for i in range(len(y)):
    bumped = y.copy()
    bumped[i] += step
    refit = fit_lib.fit(law, x, bumped, starts=base.params[None], settings=settings)
    columns.append((refit.predict(x_target) - base.predict(x_target)) / step)
  return base, np.stack(columns, axis=1)


@pytest.mark.slow
def test_loss_influence_matches_finite_differences():
  settings = fit_lib.FitSettings()
  base, numeric = _finite_difference(forms.OVERTRAINING, {"C": C, "M": M}, Y, TARGET, settings)
  analytic = influence.prediction_influence(base, TARGET)
  np.testing.assert_allclose(analytic, numeric, rtol=1e-3, atol=1e-4)
  # Influences of a least-squares prediction sum to one (shifting every run shifts E).
  np.testing.assert_allclose(analytic.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.slow
def test_chain_influence_matches_finite_differences():
  loss_fit = fit_lib.fit(forms.OVERTRAINING, {"C": C, "M": M}, Y)
  err_l = np.array([3.9, 3.4, 3.0, 2.9, 2.7, 2.5])
  err_y = np.array([0.80, 0.74, 0.68, 0.66, 0.62, 0.58])
  err_fit = fit_lib.fit(forms.DOWNSTREAM, {"L": err_l}, err_y)
  grads = influence.chain_influence(loss_fit, err_fit, TARGET)

  def chained(loss_y, l_obs, e_obs):
    lf = fit_lib.fit(forms.OVERTRAINING, {"C": C, "M": M}, loss_y, starts=loss_fit.params[None])
    ef = fit_lib.fit(forms.DOWNSTREAM, {"L": l_obs}, e_obs, starts=err_fit.params[None])
    return ef.predict({"L": lf.predict(TARGET)})

  base = chained(Y, err_l, err_y)
  step = 1e-6
  for name, (which, values) in {"loss_fit_loss": (0, Y), "err_fit_loss": (1, err_l),
                                "err_fit_err": (2, err_y)}.items():
    for i in range(len(values)):
      args = [Y.copy(), err_l.copy(), err_y.copy()]
      args[which][i] += step
      numeric = (chained(*args) - base) / step
      np.testing.assert_allclose(grads[name][:, i], numeric, rtol=2e-3, atol=1e-4)


@pytest.mark.slow
def test_robust_influence_matches_finite_differences_of_robust_refits():
  settings = fit_lib.FitSettings(robust=True)
  # A larger step than least squares needs: the Huber refits stop at a step test
  # whose slack (~1e-10 in the predictions) would swamp a 1e-6 bump; 1e-4 keeps every
  # log residual on its side of huber_delta, so the objective's pieces stay the same.
  base, numeric = _finite_difference(forms.OVERTRAINING, {"C": C, "M": M}, Y, TARGET,
                                     settings, step=1e-4)
  analytic = influence.prediction_influence(base, TARGET)
  assert np.all(np.isfinite(analytic))
  np.testing.assert_allclose(analytic, numeric, rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_robust_parameter_jacobians_are_finite_and_ignore_outliers():
  y = Y.copy()
  y[1] += 0.3  # far outside huber_delta of any fit: the robust fit must not lean on it
  result = fit_lib.fit(forms.OVERTRAINING, {"C": C, "M": M}, y,
                       settings=fit_lib.FitSettings(robust=True))
  d_y, d_x = influence.param_jacobians(result)
  assert np.all(np.isfinite(d_y)) and all(np.all(np.isfinite(v)) for v in d_x.values())
  np.testing.assert_allclose(d_y[:, 1], 0.0, atol=1e-12)


@pytest.mark.slow
def test_unidentified_parameters_raise_instead_of_returning_noise():
  # One token multiplier: a M^eta and b M^-eta scale the same column, so the Hessian
  # is singular and any "influence" would be rounding noise (or NaN).
  same_m = {"C": C, "M": np.full(len(C), 20.0)}
  for robust in (False, True):
    result = fit_lib.fit(forms.OVERTRAINING, same_m, Y,
                         settings=fit_lib.FitSettings(robust=robust))
    with pytest.raises(influence.InfluenceError, match="singular"):
      influence.prediction_influence(result, TARGET)


@pytest.mark.slow
def test_a_parameter_held_by_a_bound_has_no_influence_but_an_interior_one_does():
  x = {"C": C, "M": M}
  free = fit_lib.fit(forms.OVERTRAINING, x, Y)
  e_free = free.named_params["E"]
  loose = fit_lib.fit(forms.OVERTRAINING, x, Y,
                      settings=fit_lib.FitSettings(bounds=(("E", e_free - 1, 10.0),)))
  # (atol: an entry of 1e-13 in both is zero to rounding, whose sign the compiler's
  # optimisation level may flip; the entries that matter are 0.1-3.)
  np.testing.assert_allclose(influence.prediction_influence(loose, TARGET),
                             influence.prediction_influence(free, TARGET), rtol=1e-5,
                             atol=1e-9)
  held = fit_lib.fit(forms.OVERTRAINING, x, Y,
                     settings=fit_lib.FitSettings(bounds=(("E", e_free + 0.1, 10.0),)))
  assert held.named_params["E"] == pytest.approx(e_free + 0.1)
  with pytest.raises(influence.InfluenceError, match=r"\['E'\] .* sit on their bounds"):
    influence.prediction_influence(held, TARGET)
