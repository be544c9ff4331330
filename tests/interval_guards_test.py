"""Guards on intervals, influences and the advisor's widths that a statistics audit
found unguarded: each test fails when its named bug is planted in the package.

Expected values are written out here from first principles (Eq. 4 and Eq. 5's
derivatives by hand, percentiles and t quantiles from numpy and scipy), never by
calling the helper under test.
"""
import numpy as np
import pytest
from scipy import stats

from scaling_jax.fitting import predictions
from scaling_jax.fitting import study_fit
from scaling_jax.laws import advise
from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import cluster
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms
from scaling_jax.laws import predict as predict_lib

EQ4 = np.array([1.84, 212.0, 367.0, 0.136])  # RedPajama's Eq. 4 (paper, Table 6)
EQ5 = np.array([0.857, 2.21, 0.715])          # and its Eq. 5
TARGET = (1.44e9, 20.0)                       # (N, M)

# Six runs of Eq. 4 (as in laws_influence_test.py): two multipliers separate a from b.
C6 = np.array([1e16, 8e16, 7e17, 3e18, 2e19, 2e17])
M6 = np.array([20.0, 20.0, 20.0, 20.0, 20.0, 320.0])
Y6 = np.array([3.93, 3.45, 3.05, 2.86, 2.68, 3.31])


def _eq4(params, C, M):
  e, a, b, eta = params
  return e + (a * M**eta + b * M**-eta) * C**-eta


def _eq4_rows(params, C, M):
  """d L / d (E, a, b, eta) of Eq. 4, by hand -> [n, 4]."""
  _, a, b, eta = params
  up, down = (M / C) ** eta, (M * C) ** -eta
  return np.stack([np.ones_like(C), up, down,
                   a * up * np.log(M / C) - b * down * np.log(M * C)], axis=-1)


def _eq5(params, L):
  eps, k, gamma = params
  return eps - k * np.exp(-gamma * L)


def _eq5_rows(params, L):
  """d Err / d (eps, k, gamma) of Eq. 5, by hand -> [n, 3]."""
  _, k, gamma = params
  decay = np.exp(-gamma * L)
  return np.stack([np.ones_like(L), -decay, k * L * decay], axis=-1)


def _six_n_d(N, M):
  return 6.0 * np.asarray(N, float) ** 2 * np.asarray(M, float)


def _hand_fit(law, params, x, y):
  """A FitResult at given parameters, without running the solver."""
  y = np.asarray(y, float)
  return fit_lib.FitResult(law, np.asarray(params, float), 0.0,
                           {k: np.asarray(v, float) for k, v in x.items()}, y,
                           np.ones(len(y)), None, fit_lib.FitSettings(), True)


def _hand_boot(params):
  params = np.asarray(params, float)
  ok = np.ones(len(params), bool)
  return bootstrap_lib.BootstrapResult("residual_t", params, np.zeros(len(params)), ok,
                                       ok)


def test_the_chained_error_interval_follows_the_requested_level():
  # Guards against: predict_chain taking the error interval at 0.95 whatever `level`
  # asks (an 80% request silently got a 95% error interval).
  rng = np.random.default_rng(0)
  num = 400
  loss_params = EQ4 * (1 + 0.02 * rng.standard_normal((num, 4)))
  err_params = EQ5 * (1 + 0.02 * rng.standard_normal((num, 3)))
  loss_fit = _hand_fit(forms.OVERTRAINING, EQ4, {"C": C6, "M": M6}, Y6)
  err_fit = _hand_fit(forms.DOWNSTREAM, EQ5, {"L": Y6}, _eq5(EQ5, Y6))
  x = {"C": np.array([8e21, 5e22]), "M": np.array([640.0, 20.0])}
  # Replicate b of the loss law feeds replicate b of the error law, by hand.
  chained = np.stack([_eq5(q, _eq4(p, x["C"], x["M"]))
                      for p, q in zip(loss_params, err_params)])
  widths = {}
  for level in (0.8, 0.95):
    loss, err = predict_lib.predict_chain(loss_fit, _hand_boot(loss_params), err_fit,
                                          _hand_boot(err_params), x, level)
    np.testing.assert_allclose(err.samples, chained, rtol=1e-10)
    tail = 100 * (1 - level) / 2
    np.testing.assert_allclose(err.lo, np.percentile(chained, tail, axis=0), rtol=1e-10,
                               err_msg=f"error interval's low end at level {level}")
    np.testing.assert_allclose(err.hi, np.percentile(chained, 100 - tail, axis=0),
                               rtol=1e-10,
                               err_msg=f"error interval's high end at level {level}")
    widths[level] = err.hi - err.lo
    assert np.all(loss.lo < loss.hi)
  assert np.all(widths[0.8] < widths[0.95]), widths


# The error law's design: four runs shared with the loss design (their L is the
# loss they measured, Y6), one measured downstream only.
ERR_RUNS = ["r0", "r1", "r2", "r4", "x"]
ERR_L = np.array([Y6[0], Y6[1], Y6[2], Y6[4], 2.5])
ERR_Y = np.array([0.80, 0.74, 0.68, 0.62, 0.58])
LOSS_RUNS = [f"r{i}" for i in range(6)]


@pytest.mark.slow
def test_influence_via_loss_adds_both_fits_for_a_shared_run(monkeypatch):
  # Guards against: predict_targets overwriting a run's loss-fit influence with its
  # error-fit one (by_run[run] = v) instead of adding them, for runs in both fits.
  # The intervals of predict_rows are not under test here: bare rows stand in.
  monkeypatch.setattr(predictions, "predict_rows",
                      lambda rows, *_: [{"run": r["run"]} for r in rows])
  # One start (the paper's values, which reach the multi-start optimum here) for
  # the fits and refits alike: one compile per law.
  loss_fit = fit_lib.fit(forms.OVERTRAINING, {"C": C6, "M": M6}, Y6, starts=EQ4[None])
  err_fit = fit_lib.fit(forms.DOWNSTREAM, {"L": ERR_L}, ERR_Y, starts=EQ5[None])
  boot = lambda r: _hand_boot(np.tile(r.params, (2, 1)))
  loss = study_fit.LawFit(loss_fit, boot(loss_fit), LOSS_RUNS)
  error = study_fit.LawFit(err_fit, boot(err_fit), ERR_RUNS)
  targets = [dict(run=f"t{i}", N=float(np.sqrt(c / (6 * m))), M=m, flops=c)
             for i, (c, m) in enumerate([(8e21, 640.0), (5e22, 20.0)])]
  out = predictions.predict_targets(targets, "validation", loss, error, 0.95)
  x_t = predictions.law_inputs(targets)

  def chained(loss_y, err_l):
    lf = fit_lib.fit(forms.OVERTRAINING, {"C": C6, "M": M6}, loss_y,
                     starts=loss_fit.params[None])
    ef = fit_lib.fit(forms.DOWNSTREAM, {"L": err_l}, ERR_Y, starts=err_fit.params[None])
    return ef.predict({"L": lf.predict(x_t)})

  # d Err* / d (the loss a run measured): a shared run's loss moves both fits.
  step = 1e-5
  for run in sorted(set(LOSS_RUNS) | set(ERR_RUNS)):
    shifted = []
    for sign in (1, -1):
      loss_y, err_l = Y6.copy(), ERR_L.copy()
      if run in LOSS_RUNS:
        loss_y[LOSS_RUNS.index(run)] += sign * step
      if run in ERR_RUNS:
        err_l[ERR_RUNS.index(run)] += sign * step
      shifted.append(chained(loss_y, err_l))
    numeric = (shifted[0] - shifted[1]) / (2 * step)
    reported = [p["influence_on_err"]["via_loss"][run] for p in out]
    np.testing.assert_allclose(reported, numeric, rtol=2e-3, atol=1e-5,
                               err_msg=f"via_loss of run {run}")


# Five Eq. 4 runs for four parameters (the paper's design): one residual df.
SMALL_N = np.array([1e7, 2e7, 4e7, 1e7, 1e7])
SMALL_M = np.array([20.0, 20.0, 20.0, 80.0, 320.0])
CAND = (8e7, 20.0)


def _t975(df):
  return stats.t.ppf(0.975, df)


def _target_var(jac, grad, sigma):
  """sigma^2 g^T (J^T J)^-1 g: the delta-method variance with unit weights."""
  return sigma**2 * grad @ np.linalg.solve(jac.T @ jac, grad)


def test_the_advisor_estimates_sigma_on_the_residual_degrees_of_freedom():
  # Guards against: advise.design_of estimating a fit's noise as RSS / n instead of
  # RSS / (n - p) (sqrt(5) too small here, at one residual df).
  # Fits at the true parameters of noisy data (no solver: sigma is RSS-based at any
  # parameters, and the fit's optimum is not what is checked here).
  x = {"C": _six_n_d(SMALL_N, SMALL_M), "M": SMALL_M}
  y = _eq4(EQ4, x["C"], x["M"]) + 0.01 * np.random.default_rng(1).standard_normal(5)
  loss_fit = _hand_fit(forms.OVERTRAINING, EQ4, x, y)
  l_err = np.array([5.4, 3.9, 3.5, 3.1, 4.6])
  e = _eq5(EQ5, l_err) + 0.005 * np.random.default_rng(2).standard_normal(5)
  err_fit = _hand_fit(forms.DOWNSTREAM, EQ5, {"L": l_err}, e)
  advice = advise.advise(loss_fit, [CAND], TARGET, err_fit=err_fit)
  sigma = np.sqrt(np.sum((y - _eq4(loss_fit.params, x["C"], x["M"])) ** 2) / (5 - 4))
  err_sigma = np.sqrt(np.sum((e - _eq5(err_fit.params, l_err)) ** 2) / (5 - 3))
  assert advice.loss.df == 1 and advice.err.df == 2
  assert advice.loss.sigma == pytest.approx(sigma, rel=1e-6)
  assert advice.err.sigma == pytest.approx(err_sigma, rel=1e-6)
  # And it is the sigma the target's std is made of.
  c_t, m_t = _six_n_d(*TARGET), TARGET[1]
  var = _target_var(_eq4_rows(loss_fit.params, x["C"], x["M"]),
                    _eq4_rows(loss_fit.params, np.float64(c_t), np.float64(m_t)), sigma)
  assert advice.ranked[0].loss_std_before == pytest.approx(np.sqrt(var), rel=1e-6)


def test_the_advisors_expected_widths_use_t_on_one_more_df_at_one_df():
  # Guards against: the advisor's expected widths taking t on the fit's df instead
  # of df + 1 (the candidate run adds a residual df): at df = 1 that is t_1 = 12.7
  # instead of t_2 = 4.3, widths x2.95. A run not measured downstream adds no df to
  # the error law, whose part keeps t_1.
  sigma, err_sigma = 0.01, 0.005
  loss = advise.Design(forms.OVERTRAINING, EQ4,
                       {"C": _six_n_d(SMALL_N, SMALL_M), "M": SMALL_M}, np.ones(5),
                       sigma, 1.0)
  l_err = np.array([5.4, 3.9, 3.5, 3.1])  # four runs, three parameters: one df
  err = advise.Design(forms.DOWNSTREAM, EQ5, {"L": l_err}, np.ones(4), err_sigma, 1.0)
  # By hand: the loss law with the candidate's row added, at the target.
  c_t, m_t = np.float64(_six_n_d(*TARGET)), np.float64(TARGET[1])
  c_c, m_c = np.float64(_six_n_d(*CAND)), np.float64(CAND[1])
  jac = np.vstack([_eq4_rows(EQ4, _six_n_d(SMALL_N, SMALL_M), SMALL_M),
                   _eq4_rows(EQ4, c_c, m_c)[None]])
  loss_var = _target_var(jac, _eq4_rows(EQ4, c_t, m_t), sigma)
  l_star, l_cand = _eq4(EQ4, c_t, m_t), _eq4(EQ4, c_c, m_c)
  slope = EQ5[1] * EQ5[2] * np.exp(-EQ5[2] * l_star)
  g_err = _eq5_rows(EQ5, np.float64(l_star))
  err_jac = _eq5_rows(EQ5, l_err)
  own = {True: _target_var(np.vstack([err_jac, _eq5_rows(EQ5, l_cand)[None]]), g_err,
                           err_sigma),
         False: _target_var(err_jac, g_err, err_sigma)}
  t_loss = _t975(2)  # one df, plus the candidate's
  t_err = {True: _t975(2), False: _t975(1)}
  for measured in (True, False):
    c = advise.advise(loss, [CAND], TARGET, err_fit=err, err_measured=measured).ranked[0]
    assert c.loss_std == pytest.approx(np.sqrt(loss_var), rel=1e-6)
    assert c.loss_width == pytest.approx(2 * t_loss * np.sqrt(loss_var), rel=1e-6)
    expected = 2 * np.sqrt(t_loss**2 * slope**2 * loss_var
                           + t_err[measured]**2 * own[measured])
    assert c.err_width == pytest.approx(expected, rel=1e-6), f"err_measured={measured}"


def test_the_cluster_bootstrap_drops_resamples_that_cannot_identify_the_law():
  # Guards against: cluster_bootstrap keeping resamples that drew fewer than three
  # distinct runs (model sizes), which cannot pin Eq. 3's E, A and alpha down.
  truth = np.array([1.7, 400.0, 1200.0, 0.34, 0.28])
  sizes = np.array([2e7, 6e7, 1.8e8, 5.4e8])  # four runs: a third of resamples draw <3
  n = np.repeat(sizes, 4)
  d = np.concatenate([np.geomspace(20 * s / 30, 20 * s, 4) for s in sizes])
  y = truth[0] + truth[1] * n**-truth[3] + truth[2] * d**-truth[4]
  # Exact data: the truth is the fit (no solver run for it); resamples warm-start there.
  result = _hand_fit(forms.CHINCHILLA, truth, {"N": n, "D": d}, y)
  runs = [f"run{int(s):d}" for s in n]
  num = 32
  reps = cluster.cluster_bootstrap(result, runs, num_resamples=num, seed=0)
  # The same draws, counted here: distinct runs (each one model size) per resample.
  draws = np.random.default_rng(0).integers(0, len(sizes), size=(num, len(sizes)))
  distinct = np.array([len(np.unique(row)) for row in draws])
  too_few = distinct < 3
  assert 0 < too_few.sum() < num
  kept = reps.valid & too_few
  assert not np.any(kept), (f"{kept.sum()} of the {too_few.sum()} resamples that drew "
                            f"fewer than 3 runs were kept as valid")
  assert np.all(np.isnan(reps.params[~reps.valid]))
  assert np.all(np.isfinite(reps.params[reps.valid]))
  # Every identifiable resample of this clean design is fitted and kept, so the
  # count of valid ones reports exactly the dropped.
  assert np.array_equal(reps.valid, ~too_few)
  assert reps.num_valid == num - too_few.sum()
