"""Leave-future-out backtests: refit below each compute cutoff, predict the runs above."""
import numpy as np
import pytest
from scipy import optimize

from scaling_jax.laws import backtest
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms
from scaling_jax.laws import prediction_interval as pi_lib

LAW = forms.OVERTRAINING
# Five sizes at three multipliers: ten cutoffs can refit the law (four parameters).
_N = np.repeat([1e7, 3e7, 1e8, 3e8, 1e9], 3)
_M = np.tile([10.0, 40.0, 160.0], 5)
_X = {"C": 6 * _N * _N * _M, "M": _M}
_RUN_NOISE = 0.006


def _design(bend: float, seed: int = 5):
  """Eq. 4 times a seeded run noise, times a misfit that bends upwards with compute
  (`bend` in log loss 2 decades past the smallest run, growing quadratically):
  the law cannot follow it, so its extrapolations err more the farther they go."""
  rng = np.random.default_rng(seed)
  c, m = _X["C"], _X["M"]
  law = 1.7 + (0.1 * m**0.12 + 9 * m**-0.12) * (c / 1e15) ** -0.12
  misfit = bend * (np.log10(c / c.min()) / 2) ** 2
  return law * np.exp(_RUN_NOISE * rng.standard_normal(len(c)) + misfit)


def _backtest(y):
  result = fit_lib.fit(LAW, _X, y)
  return backtest.leave_future_out(result, [f"run{i}" for i in range(len(y))],
                                   _RUN_NOISE, pi_lib.LOSS_PRIOR)


@pytest.fixture(scope="module")
def straight():
  return _backtest(_design(bend=0.0))


@pytest.fixture(scope="module")
def bent():
  return _backtest(_design(bend=0.08))


def _eq4(theta, x):
  e, a, b, eta = theta
  return e + (a * x["M"]**eta + b * x["M"]**-eta) * x["C"]**-eta


def _scipy_fit(x, y):
  """An independent least-squares fit of Eq. 4: (E, a, b) by linear least squares
  on a fine grid of eta, the best polished by scipy's Levenberg-Marquardt."""
  c, m = x["C"], x["M"]

  def linear(eta):
    basis = np.stack([np.ones_like(c), m**eta * c**-eta, m**-eta * c**-eta], axis=1)
    coef = np.linalg.lstsq(basis, y, rcond=None)[0]
    return np.sum((basis @ coef - y) ** 2), np.append(coef, eta)
  start = min((linear(eta) for eta in np.linspace(0.01, 0.99, 981)),
              key=lambda fit: fit[0])[1]

  def residuals(theta):
    return _eq4(theta, x) - y
  return optimize.least_squares(residuals, start, method="lm", xtol=1e-15,
                                ftol=1e-15, max_nfev=20000).x


def test_each_cutoff_predicts_like_a_scipy_fit_on_its_runs_alone(straight):
  # Planted bug: the runs above a cutoff keep their weight (the "backtest" is then
  # the full fit's residuals) or a cutoff's refit uses another cutoff's runs.
  y = _design(bend=0.0)
  by_cutoff = {}
  for row in straight.rows:
    by_cutoff.setdefault(row["cutoff"], []).append(row)
  for cutoff in (0, max(by_cutoff)):
    rows = by_cutoff[cutoff]
    mask = _X["C"] <= rows[0]["cutoff_flops"] * (1 + 1e-9)
    assert mask.sum() == rows[0]["num_fit"]
    x = {k: v[mask] for k, v in _X.items()}

    best = _scipy_fit(x, y[mask])
    held = {f"run{i}": i for i in np.flatnonzero(~mask)}
    assert sorted(r["run"] for r in rows) == sorted(held)
    for row in rows:
      scipy_prediction = _eq4(best, {k: v[held[row["run"]]] for k, v in _X.items()})
      assert row["predicted"] == pytest.approx(scipy_prediction, rel=1e-4)
      assert row["log_error"] == pytest.approx(np.log(row["measured"] / row["predicted"]))


def test_decades_are_counted_from_each_refits_own_runs(straight):
  # Planted bug: the distance measured from the whole design (0 for every run in
  # it), which leaves the backtest nothing to estimate a growth from.
  for row in straight.rows:
    mask = _X["C"] <= row["cutoff_flops"] * (1 + 1e-9)
    i = int(row["run"][3:])
    expected = pi_lib.distance({k: v[mask] for k, v in _X.items()},
                               {k: v[[i]] for k, v in _X.items()})[0]
    assert row["decades"] == pytest.approx(expected)
  assert max(r["decades"] for r in straight.rows) > 1.0


def test_a_misfit_that_grows_with_compute_raises_the_growth(straight, bent):
  assert straight.ran and bent.ran
  # Planted bug: the refits' own looseness (v) left out of the likelihood, which
  # then takes a five-run refit's wide extrapolations for the law's misfit.
  assert straight.growth_estimate < pi_lib.LOSS_PRIOR.growth
  assert bent.growth_estimate > 4 * pi_lib.LOSS_PRIOR.growth
  assert bent.growth > pi_lib.LOSS_PRIOR.growth > 0
  # The largest cutoff's error on the largest run has the misfit's sign (upwards).
  last = max(bent.rows, key=lambda r: (r["cutoff"], r["decades"]))
  assert last["log_error"] > 0


def test_the_growth_pools_the_estimate_with_the_prior_by_its_worth(bent):
  m, g0 = bent.independent_runs, pi_lib.LOSS_PRIOR.growth
  beyond = {r["run"] for r in bent.rows if r["decades"] > 0}
  assert m == len(beyond) > 0
  assert bent.growth**2 == pytest.approx(
      (m * bent.growth_estimate**2 + backtest.PRIOR_GROWTH_WORTH * g0**2)
      / (m + backtest.PRIOR_GROWTH_WORTH))


def test_a_design_too_small_to_refit_keeps_the_prior():
  five = {k: v[[0, 1, 3, 4, 6]] for k, v in _X.items()}  # the paper's size of design
  y = _design(0.0)[[0, 1, 3, 4, 6]]
  result = fit_lib.FitResult(law=LAW, params=np.array([1.7, 0.1, 9.0, 0.12]),
                             objective=0.0, converged=True, x=five, y=y,
                             weights=np.ones(5), starts=fit_lib.default_starts(LAW),
                             settings=fit_lib.FitSettings())
  assert backtest.cutoffs(LAW, five) == []
  kept = backtest.leave_future_out(result, list("abcde"), _RUN_NOISE, pi_lib.LOSS_PRIOR)
  assert not kept.ran and kept.growth == pi_lib.LOSS_PRIOR.growth
  assert "prior" in kept.source and "6 or more" in kept.source


def test_an_unknown_extrapolation_source_is_refused_naming_the_field():
  from scaling_jax import config_lib  # pylint: disable=import-outside-toplevel
  from scaling_jax.fitting import StudyError, settings  # pylint: disable=import-outside-toplevel
  study = config_lib.default_config().study
  study.extrapolation = "conformal"
  with pytest.raises(StudyError, match=r"study\.extrapolation.*prior.*backtest"):
    settings.check(study)


def test_the_misfit_rejects_the_prior_and_the_straight_law_does_not(straight, bent):
  # The warning's test: a likelihood ratio against the prior's growth.
  assert bent.rejects_prior and not straight.rejects_prior


def test_a_design_whose_backtest_rejects_the_prior_is_warned_once(straight, bent):

  def notes(backtest_result, extrapolation):
    return backtest.rejection_notes(backtest_result, extrapolation, pi_lib.LOSS_PRIOR,
                                    "summary: Backtest")
  (warning,) = notes(bent, "prior")
  assert "--config.study.extrapolation=backtest" in warning
  assert f"{bent.growth_estimate:.3g}" in warning
  assert notes(straight, "prior") == [] and notes(bent, "backtest") == []


def test_a_padded_batch_gives_the_same_backtest(straight):
  # A study pads the cutoffs to its bootstrap's batch (one compiled solver): the
  # padding must not leak into the rows.
  padded = backtest.leave_future_out(fit_lib.fit(LAW, _X, _design(bend=0.0)),
                                     [f"run{i}" for i in range(len(_N))], _RUN_NOISE,
                                     pi_lib.LOSS_PRIOR, batch=16)
  key = lambda rows: [(r["cutoff"], r["run"], r["num_fit"]) for r in rows]
  assert key(padded.rows) == key(straight.rows)
  # (The batch changes XLA's vectorisation and so where the solver stops within
  # its 1e-10 step tolerance: the predictions agree to about 1e-9, a leak would not.)
  assert [r["predicted"] for r in padded.rows] == pytest.approx(
      [r["predicted"] for r in straight.rows], rel=1e-7)
  assert padded.growth == pytest.approx(straight.growth, abs=1e-4)
