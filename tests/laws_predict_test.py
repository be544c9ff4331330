"""Predictions with intervals, the chained (C, M) -> L -> Err intervals, and M*, N*, D*.

The fits and bootstraps here are built by hand from known parameters, so every
expected number comes from numpy formulas, not from the code under test.
"""
import dataclasses

import numpy as np
import pytest
from scipy import stats

from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms
from scaling_jax.laws import predict as predict_lib

EQ4 = np.array([1.8, 210.0, 370.0, 0.135])   # E, a, b, eta
EQ5 = np.array([0.86, 2.2, 0.71])            # eps, k, gamma


def _fit(law, params):
  """A FitResult with the given point parameters (predict reads nothing else)."""
  known = dict(law=law, params=np.asarray(params, np.float64))
  return fit_lib.FitResult(**{f.name: known.get(f.name)
                              for f in dataclasses.fields(fit_lib.FitResult)})


def _boot(params):
  """A BootstrapResult with the given replicate parameters [B, P]."""
  params = np.asarray(params, np.float64)
  known = dict(method="residual", params=params, valid=np.all(np.isfinite(params), 1))
  return bootstrap_lib.BootstrapResult(**{
      f.name: known.get(f.name) for f in dataclasses.fields(bootstrap_lib.BootstrapResult)})


def _power(p, x):
  return p[..., 0:1] + p[..., 1:2] * x ** -p[..., 2:3]


def _err(p, loss):
  return p[..., 0:1] - p[..., 1:2] * np.exp(-p[..., 2:3] * loss)


def _eq4(p, c, m):
  e, a, b, eta = p
  return e + (a * m**eta + b * m**-eta) * c**-eta


def test_each_replicate_is_evaluated_at_the_targets_and_the_point_is_the_fit():
  rng = np.random.default_rng(0)
  point = np.array([1.5, 400.0, 0.3])
  reps = point * rng.uniform(0.9, 1.2, (7, 3))  # median away from the point fit
  x = np.array([1e6, 3e8, 1e11])
  pred = predict_lib.predict(_fit(forms.POWER, point), _boot(reps), {"X": x})
  np.testing.assert_allclose(pred.samples, _power(reps, x[None]), rtol=1e-12)
  np.testing.assert_allclose(pred.value, _power(point, x), rtol=1e-12)
  assert pred.samples.shape == (7, 3) and pred.lo.shape == pred.hi.shape == (3,)


@pytest.mark.parametrize("level", [0.95, 0.8])
def test_interval_ends_sit_at_the_requested_quantiles(level):
  # Replicates of E ~ N(mu, s) (A = 0): the interval's ends must sit at the
  # (1 -/+ level) / 2 quantiles of that normal, up to the sampling error of an
  # empirical quantile of B draws: sqrt(q (1 - q) / B) in probability.
  mu, s, num = 2.0, 0.1, 4000
  rng = np.random.default_rng(1)
  reps = np.stack([rng.normal(mu, s, num), np.zeros(num), np.full(num, 0.3)], -1)
  pred = predict_lib.predict(_fit(forms.POWER, [mu, 0.0, 0.3]), _boot(reps),
                             {"X": np.array([1e7])}, level=level)
  tail = (1 - level) / 2
  tol = 4 * np.sqrt(tail * (1 - tail) / num)
  assert stats.norm.cdf(pred.lo[0], mu, s) == pytest.approx(tail, abs=tol)
  assert stats.norm.cdf(pred.hi[0], mu, s) == pytest.approx(1 - tail, abs=tol)
  assert pred.lo[0] <= pred.value[0] <= pred.hi[0]


def test_invalid_replicates_are_left_out_of_the_interval():
  rng = np.random.default_rng(2)
  reps = np.stack([rng.normal(2.0, 0.1, 400), np.full(400, 50.0),
                   np.full(400, 0.3)], -1)
  with_nan = reps.copy()
  with_nan[::10] = np.nan  # every tenth resample failed to fit
  x = {"X": np.array([1e6, 1e9])}
  pred = predict_lib.predict(_fit(forms.POWER, [2.0, 50.0, 0.3]), _boot(with_nan), x)
  clean = predict_lib.predict(_fit(forms.POWER, [2.0, 50.0, 0.3]),
                              _boot(with_nan[~np.isnan(with_nan[:, 0])]), x)
  assert np.all(np.isnan(pred.samples[::10]))
  np.testing.assert_allclose(pred.lo, clean.lo, rtol=1e-12)
  np.testing.assert_allclose(pred.hi, clean.hi, rtol=1e-12)


def _chain(loss_reps, err_reps, x=None, level=0.95):
  x = x or {"C": np.array([1e20, 5e21]), "M": np.array([20.0, 320.0])}
  return predict_lib.predict_chain(_fit(forms.OVERTRAINING, EQ4), _boot(loss_reps),
                                   _fit(forms.DOWNSTREAM, EQ5), _boot(err_reps), x, level)


def _loss_reps(num, seed):
  rng = np.random.default_rng(seed)
  return EQ4 * np.stack([rng.uniform(0.9, 1.1, num), rng.uniform(0.7, 1.3, num),
                         rng.uniform(0.7, 1.3, num), rng.uniform(0.95, 1.05, num)], -1)


def test_chain_feeds_loss_replicate_b_into_error_replicate_b():
  rng = np.random.default_rng(3)
  loss_reps = _loss_reps(9, seed=3)
  err_reps = EQ5 * rng.uniform(0.8, 1.2, (9, 3))
  loss, err = _chain(loss_reps, err_reps)
  c, m = np.array([1e20, 5e21]), np.array([20.0, 320.0])
  want_loss = np.stack([_eq4(p, c, m) for p in loss_reps])
  np.testing.assert_allclose(loss.samples, want_loss, rtol=1e-12)
  np.testing.assert_allclose(err.samples, _err(err_reps, want_loss), rtol=1e-12)
  # The point error is the error law's point fit at the point loss.
  np.testing.assert_allclose(loss.value, _eq4(EQ4, c, m), rtol=1e-12)
  np.testing.assert_allclose(err.value, _err(EQ5, loss.value), rtol=1e-12)


def test_loss_uncertainty_alone_reaches_the_error_interval():
  # With the error law held at its point fit, Err is increasing in L, so the error
  # interval is exactly Err(loss interval) (401 replicates put both 2.5% and 97.5%
  # percentiles on a replicate, so no interpolation blurs it).
  num = 401
  loss, err = _chain(_loss_reps(num, seed=4), np.tile(EQ5, (num, 1)))
  assert np.all(loss.hi > loss.lo)
  np.testing.assert_allclose(err.lo, _err(EQ5, loss.lo), rtol=1e-12)
  np.testing.assert_allclose(err.hi, _err(EQ5, loss.hi), rtol=1e-12)


def test_error_law_uncertainty_alone_reaches_the_error_interval():
  num = 401
  rng = np.random.default_rng(5)
  err_reps = EQ5 * rng.uniform(0.8, 1.2, (num, 3))
  loss, err = _chain(np.tile(EQ4, (num, 1)), err_reps)
  np.testing.assert_allclose(loss.lo, loss.hi, rtol=1e-12)
  np.testing.assert_allclose(err.samples, _err(err_reps, loss.value[None]), rtol=1e-12)
  assert np.all(err.hi - err.lo > 0.01)


def test_chain_refuses_bootstraps_of_different_sizes():
  with pytest.raises(ValueError, match="same number of resamples"):
    _chain(_loss_reps(10, seed=6), np.tile(EQ5, (11, 1)))


def test_a_failed_loss_replicate_makes_its_error_replicate_invalid_too():
  loss_reps = _loss_reps(50, seed=7)
  loss_reps[3] = np.nan
  _, err = _chain(loss_reps, np.tile(EQ5, (50, 1)))
  assert np.all(np.isnan(err.samples[3]))
  assert np.all(np.isfinite(np.delete(err.samples, 3, axis=0)))
  assert np.all(np.isfinite(err.lo)) and np.all(np.isfinite(err.hi))


def test_compute_optimal_point_minimises_the_fitted_loss_at_the_budget():
  flops = 1e21
  reps = np.tile(EQ4, (5, 1)) * [1.0, 1.0, 1.3, 1.0]  # replicates away from the fit
  opt = predict_lib.compute_optimal(_fit(forms.OVERTRAINING, EQ4), _boot(reps), flops)
  m_star, n_star, d_star = opt.multiplier[0], opt.params[0], opt.tokens[0]
  ms = np.geomspace(m_star / 4, m_star * 4, 4001)
  assert ms[np.argmin(_eq4(EQ4, flops, ms))] == pytest.approx(m_star, rel=1e-3)
  assert 6 * n_star * d_star == pytest.approx(flops, rel=1e-12)
  assert d_star / n_star == pytest.approx(m_star, rel=1e-12)
  assert opt.flops == flops


@pytest.mark.parametrize("level", [0.95, 0.8])
def test_compute_optimal_intervals_follow_the_replicates(level):
  # Only b varies: M* = (b/a)^(1/(2 eta)) rises with b, N* falls with M*, D* rises.
  # 401 replicates put both percentiles of either level on a replicate.
  num, flops = 401, 1e21
  rng = np.random.default_rng(8)
  reps = np.tile(EQ4, (num, 1))
  reps[:, 2] *= rng.uniform(0.5, 2.0, num)
  opt = predict_lib.compute_optimal(_fit(forms.OVERTRAINING, EQ4), _boot(reps), flops,
                                    level=level)
  tail = 100 * (1 - level) / 2
  b_lo, b_hi = np.percentile(reps[:, 2], [tail, 100 - tail])
  m_lo, m_hi = ((np.array([b_lo, b_hi]) / EQ4[1]) ** (1 / (2 * EQ4[3])))
  np.testing.assert_allclose(opt.multiplier[1:], [m_lo, m_hi], rtol=1e-10)
  np.testing.assert_allclose(opt.params[1:], np.sqrt(flops / (6 * np.array([m_hi, m_lo]))),
                             rtol=1e-10)
  np.testing.assert_allclose(opt.tokens[1:], np.sqrt(flops * np.array([m_lo, m_hi]) / 6),
                             rtol=1e-10)
  for point, lo, hi in (opt.multiplier, opt.params, opt.tokens):
    assert lo < point < hi


def test_compute_optimal_needs_a_loss_law_of_n_and_d():
  with pytest.raises(ValueError, match="Eq. 3 or Eq. 4, not downstream"):
    predict_lib.compute_optimal(_fit(forms.DOWNSTREAM, np.ones(3)),
                                _boot(np.ones((3, 3))), 1e21)


# Chinchilla's published Eq. 3 (Hoffmann et al. 2022, approach 3).
EQ3 = np.array([1.69, 406.4, 410.7, 0.34, 0.28])


def _eq3(p, n, d):
  return p[0] + p[1] * n**-p[3] + p[2] * d**-p[4]


@pytest.mark.parametrize("flops", [1e19, 1e21, 1e24])
def test_eq3_allocation_minimises_the_loss_along_the_budget(flops):
  opt = predict_lib.allocation(forms.CHINCHILLA, EQ3, np.tile(EQ3, (3, 1)), flops)
  n_star, d_star = opt.params[0], opt.tokens[0]
  ns = np.geomspace(n_star / 8, n_star * 8, 20001)
  assert ns[np.argmin(_eq3(EQ3, ns, flops / (6 * ns)))] == pytest.approx(n_star, rel=1e-3)
  assert 6 * n_star * d_star == pytest.approx(flops, rel=1e-12)
  assert opt.multiplier[0] == pytest.approx(d_star / n_star, rel=1e-12)


def test_eq3_allocation_moves_with_the_budget_unless_the_exponents_are_equal():
  co = lambda p, c: predict_lib.allocation(forms.CHINCHILLA, p, p[None], c).multiplier[0]
  # alpha > beta: loss falls faster in N, so larger budgets favour tokens (M* rises).
  assert co(EQ3, 1e24) / co(EQ3, 1e20) == pytest.approx(
      1e4 ** ((EQ3[3] - EQ3[4]) / (EQ3[3] + EQ3[4])), rel=1e-9)
  equal = EQ3 * [1, 1, 1, 1, 0.34 / 0.28]
  assert co(equal, 1e24) == pytest.approx(co(equal, 1e20), rel=1e-9)


def test_eq3_allocation_intervals_are_the_replicates_percentiles_less_invalid_ones():
  rng = np.random.default_rng(3)
  reps = np.tile(EQ3, (401, 1))
  reps[:, 3] += rng.normal(0, 0.02, 401)
  with_nan = np.concatenate([reps, np.full((50, 5), np.nan)])
  flops = 1e22
  opt = predict_lib.allocation(forms.CHINCHILLA, EQ3, with_nan, flops)
  each = np.array([predict_lib.allocation(forms.CHINCHILLA, r, r[None], flops).params[0]
                   for r in reps])
  np.testing.assert_allclose(opt.params[1:], np.percentile(each, [2.5, 97.5]), rtol=1e-9)
