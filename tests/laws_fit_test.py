"""Fitting: known answers on synthetic data, scipy's optimum on real data, errors."""
import numpy as np
import pytest
from scipy.optimize import curve_fit

from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms

C = np.array([1e16, 8e16, 7e17, 3e18, 2e19, 2e17, 5e18])
M = np.array([20.0, 20.0, 20.0, 20.0, 20.0, 320.0, 80.0])
TRUE_EQ4 = np.array([1.8, 210.0, 370.0, 0.135])


def _eq4(params, c=C, m=M):
  e, a, b, eta = params
  return e + (a * m**eta + b * m**-eta) * c**-eta


@pytest.mark.slow
@pytest.mark.parametrize("law,x,true", [
    (forms.OVERTRAINING, {"C": C, "M": M}, TRUE_EQ4),
    (forms.DOWNSTREAM, {"L": np.linspace(2.6, 5.5, 7)}, np.array([0.86, 2.2, 0.71])),
    (forms.POWER, {"X": np.geomspace(1e6, 1e9, 7)}, np.array([1.5, 400.0, 0.3])),
    (forms.CHINCHILLA, {"N": np.geomspace(1e7, 1e9, 7), "D": np.geomspace(1e8, 5e10, 7)[::-1]},
     np.array([1.7, 400.0, 900.0, 0.34, 0.28])),
])
def test_recovers_parameters_of_noise_free_data(law, x, true):
  import jax
  import jax.numpy as jnp
  with jax.enable_x64(True):
    y = np.asarray(law(jnp.asarray(true), {k: jnp.asarray(v) for k, v in x.items()}))
  result = fit_lib.fit(law, x, y)
  np.testing.assert_allclose(result.params, true, rtol=1e-5)
  assert result.objective < 1e-12


@pytest.mark.slow
def test_matches_or_beats_scipy_curve_fit_from_the_same_starts():
  rng = np.random.default_rng(0)
  y = _eq4(TRUE_EQ4) + rng.normal(0, 0.01, len(C))
  result = fit_lib.fit(forms.OVERTRAINING, {"C": C, "M": M}, y)
  best = np.inf
  for start in result.starts:
    try:
      popt, _ = curve_fit(lambda X, *p: _eq4(p, *X), np.stack([C, M]), y, p0=start,
                          maxfev=10000)
    except RuntimeError:
      continue
    best = min(best, 0.5 * np.sum((_eq4(popt) - y) ** 2))
  assert result.objective <= best * (1 + 1e-9)


@pytest.mark.slow
def test_distinct_problems_give_the_same_answer_as_solving_every_start():
  rng = np.random.default_rng(1)
  ys = _eq4(TRUE_EQ4)[None] + rng.normal(0, 0.02, (4, len(C)))
  ws = np.ones_like(ys)
  starts = fit_lib.default_starts(forms.OVERTRAINING)
  assert len(fit_lib.distinct_problems(forms.OVERTRAINING, starts)) == 2
  fast = fit_lib.fit_many(forms.OVERTRAINING, {"C": C, "M": M}, ys, ws)
  every = fit_lib.fit_many(forms.OVERTRAINING, {"C": C, "M": M}, ys, ws,
                           solve_every_start=True)
  np.testing.assert_allclose(fast[1], every[1], rtol=1e-9)
  np.testing.assert_allclose(fast[0], every[0], rtol=1e-6)


@pytest.mark.slow
def test_robust_objective_resists_an_outlier():
  y = _eq4(TRUE_EQ4)
  y_bad = y.copy()
  y_bad[2] += 0.3  # one corrupted run
  plain = fit_lib.fit(forms.OVERTRAINING, {"C": C, "M": M}, y_bad)
  robust = fit_lib.fit(forms.OVERTRAINING, {"C": C, "M": M}, y_bad,
                       settings=fit_lib.FitSettings(robust=True))
  clean = np.delete(np.arange(len(C)), 2)
  plain_err = np.abs(plain.predict({"C": C, "M": M}) - y)[clean].max()
  robust_err = np.abs(robust.predict({"C": C, "M": M}) - y)[clean].max()
  assert robust_err < 0.2 * plain_err


def test_fewer_points_than_parameters_is_a_clear_error():
  with pytest.raises(fit_lib.FitError, match="3 points cannot determine the 4 parameters"):
    fit_lib.fit(forms.OVERTRAINING, {"C": C[:3], "M": M[:3]}, np.ones(3))


def test_non_finite_observation_is_named():
  y = _eq4(TRUE_EQ4)
  y[4] = np.nan
  with pytest.raises(fit_lib.FitError, match=r"y has non-finite values at positions \[4\]"):
    fit_lib.fit(forms.OVERTRAINING, {"C": C, "M": M}, y)


def test_missing_input_is_named():
  with pytest.raises(fit_lib.FitError, match=r"missing \['M'\]"):
    fit_lib.fit(forms.OVERTRAINING, {"C": C}, np.ones(len(C)))


def test_compute_optimal_multiplier_formula():
  e, a, b, eta = TRUE_EQ4
  m_star = float(forms.compute_optimal_multiplier(np.array(TRUE_EQ4)))
  assert m_star == pytest.approx((b / a) ** (1 / (2 * eta)))
  # M* minimises Eq. 4 at fixed compute.
  ms = np.geomspace(m_star / 3, m_star * 3, 201)
  assert ms[np.argmin(_eq4(TRUE_EQ4, np.full_like(ms, 1e20), ms))] == pytest.approx(m_star, rel=0.02)


@pytest.mark.parametrize("maxiter", [0, -5, 2.5, True])
def test_maxiter_below_one_or_not_an_integer_is_refused(maxiter):
  # maxiter=0 used to return the starting exponent with a zero-width interval.
  with pytest.raises(fit_lib.FitError, match=r"fit\.maxiter"):
    fit_lib.FitSettings(maxiter=maxiter)


@pytest.mark.parametrize("field,value", [("tol", 0.0), ("tol", np.nan),
                                         ("huber_delta", -1e-3)])
def test_non_positive_tolerances_are_refused(field, value):
  with pytest.raises(fit_lib.FitError, match=rf"fit\.{field}"):
    fit_lib.FitSettings(**{field: value})


@pytest.mark.slow
def test_a_fit_cut_off_by_maxiter_is_marked_unconverged():
  rng = np.random.default_rng(0)
  y = _eq4(TRUE_EQ4) + rng.normal(0, 0.01, len(C))
  cut = fit_lib.fit(forms.OVERTRAINING, {"C": C, "M": M}, y,
                    settings=fit_lib.FitSettings(maxiter=1))
  full = fit_lib.fit(forms.OVERTRAINING, {"C": C, "M": M}, y)
  assert cut.converged is False
  assert full.converged is True


@pytest.mark.slow
def test_robust_fit_records_convergence_of_its_huber_stage():
  y = _eq4(TRUE_EQ4) * (1 + 0.003 * np.array([1, -1, 1, 1, -1, 1, -1]))
  full = fit_lib.fit(forms.OVERTRAINING, {"C": C, "M": M}, y,
                     settings=fit_lib.FitSettings(robust=True))
  cut = fit_lib.fit(forms.OVERTRAINING, {"C": C, "M": M}, y,
                    settings=fit_lib.FitSettings(robust=True, maxiter=1))
  assert full.converged is True and cut.converged is False


def test_repeated_design_points_count_once():
  # Five rows but two distinct (C, M): four parameters are not determined.
  c, m = np.array([1e17, 1e17, 1e17, 1e18, 1e18]), np.full(5, 20.0)
  with pytest.raises(fit_lib.FitError,
                     match=r"5 points hold only 2 distinct design points.*4 parameters"):
    fit_lib.fit(forms.OVERTRAINING, {"C": c, "M": m}, np.linspace(3.0, 2.5, 5))
  with pytest.raises(fit_lib.FitError, match=r"only 2 distinct design points"):
    fit_lib.fit(forms.DOWNSTREAM, {"L": [3.0, 3.0, 3.0, 2.5, 2.5]},
                [0.7, 0.71, 0.69, 0.6, 0.61])


@pytest.mark.parametrize("change,message", [
    (lambda x, y, w: x["C"].__setitem__(1, 0.0), r"C must be positive.*positions \[1\]"),
    (lambda x, y, w: x["M"].__setitem__(3, -20.0), r"M must be positive.*positions \[3\]"),
    (lambda x, y, w: w.__setitem__(2, 0.0), r"weights must be positive.*positions \[2\]"),
    (lambda x, y, w: w.__setitem__(0, np.inf), r"weights has non-finite.*positions \[0\]"),
])
def test_degenerate_inputs_say_what_is_degenerate(change, message):
  x, y, w = {"C": C.copy(), "M": M.copy()}, _eq4(TRUE_EQ4), np.ones(len(C))
  change(x, y, w)
  with pytest.raises(fit_lib.FitError, match=message):
    fit_lib.fit(forms.OVERTRAINING, x, y, weights=w)


def test_robust_fit_needs_positive_observations():
  y = _eq4(TRUE_EQ4)
  y[5] = -0.1
  with pytest.raises(fit_lib.FitError, match=r"Huber objective.*y must be positive.*\[5\]"):
    fit_lib.fit(forms.OVERTRAINING, {"C": C, "M": M}, y,
                settings=fit_lib.FitSettings(robust=True))


def _scipy_bounded(x, y, lo, hi, alphas):
  from scipy.optimize import least_squares
  best = None
  for alpha in alphas:
    sol = least_squares(lambda p: p[0] + p[1] * x ** -p[2] - y, [0.1, 100.0, alpha],
                        bounds=(lo, hi), xtol=1e-15, ftol=1e-15, gtol=1e-15, x_scale="jac")
    best = sol if best is None or sol.cost < best.cost else best
  return best


@pytest.mark.slow
@pytest.mark.parametrize("bounds,lo,hi", [
    ("physical", [0, 0, 0], [np.inf, np.inf, 3]),                    # E held at 0
    ((("alpha", 0.0, 0.25),), [-np.inf, -np.inf, 0], [np.inf, np.inf, 0.25]),  # alpha
])
def test_bounded_fit_matches_scipy_bounded_least_squares(bounds, lo, hi):
  # The data want E = -0.28 and alpha = 0.30: both bounds bind.
  x = np.geomspace(1e6, 1e9, 8)
  y = -0.3 + 400 * x**-0.3 + np.random.default_rng(0).normal(0, 0.01, 8)
  result = fit_lib.fit(forms.POWER, {"X": x}, y,
                       settings=fit_lib.FitSettings(bounds=bounds))
  want = _scipy_bounded(x, y, lo, hi, np.linspace(0.05, min(hi[2], 1.5) - 0.01, 8))
  assert np.all(result.params >= np.array(lo) - 1e-12)
  assert np.all(result.params <= np.array(hi) + 1e-12)
  assert result.objective == pytest.approx(want.cost, rel=1e-7)
  np.testing.assert_allclose(result.params, want.x, rtol=1e-5, atol=1e-8)


@pytest.mark.slow
def test_bounds_that_do_not_bind_change_nothing():
  x = np.geomspace(1e6, 1e9, 8)
  y = 1.5 + 400 * x**-0.3 + np.random.default_rng(3).normal(0, 0.01, 8)
  free = fit_lib.fit(forms.POWER, {"X": x}, y)
  held = fit_lib.fit(forms.POWER, {"X": x}, y, settings=fit_lib.FitSettings(bounds="physical"))
  np.testing.assert_allclose(held.params, free.params, rtol=1e-7)


@pytest.mark.parametrize("bounds,robust,message", [
    ("tight", False, "use one of"), ((("E", 1.0, 0.0),), False, "lo < hi"),
    ("physical", True, "least squares only")])
def test_bad_bounds_are_refused(bounds, robust, message):
  with pytest.raises(fit_lib.FitError, match=rf"fit\.bounds.*{message}"):
    fit_lib.FitSettings(bounds=bounds, robust=robust)
