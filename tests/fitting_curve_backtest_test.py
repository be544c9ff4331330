"""A curve fit's own backtest: refit on the smaller sizes, predict the larger runs."""
import json

import numpy as np
import pytest

from fitting_curves_test import SIZES, _study, curve_rows
from scaling_jax.fitting import curve_backtest
from scaling_jax.fitting import curves
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms
from scaling_jax.laws import prediction_interval as pi_lib


def _result(n, d):
  x = {"N": np.asarray(n, float), "D": np.asarray(d, float)}
  return fit_lib.FitResult(law=forms.CHINCHILLA, params=np.zeros(5), objective=0.0,
                           converged=True, x=x, y=np.ones(len(n)),
                           weights=np.ones(len(n)), starts=np.zeros((1, 5)),
                           settings=fit_lib.FitSettings())


def test_cutoffs_need_three_sizes_and_three_lengths_below_a_larger_size():
  # Planted bugs: a cutoff with two sizes (Eq. 3 unidentified), or one at the
  # largest size (nothing left to predict).
  n = np.repeat([1e7, 2e7, 4e7, 8e7], 3)
  d = np.tile([1e8, 2e8, 4e8], 4)
  masks = curve_backtest.size_cutoffs(_result(n, d))
  assert [sorted(set(n[m])) for m in masks] == [[1e7, 2e7, 4e7]]
  one_length = curve_backtest.size_cutoffs(_result(n, np.full(12, 1e8)))
  assert one_length == []


def test_each_run_is_scored_at_its_final_checkpoint_only():
  names = ["a", "a", "b", "a", "b"]
  tokens = [1.0, 3.0, 2.0, 2.0, 5.0]
  np.testing.assert_array_equal(curve_backtest.final_checkpoints(names, tokens),
                                [False, True, False, False, True])


@pytest.fixture(scope="module")
def fits():
  rows = curve_rows(noise=0.002, seed=3)
  prior = curves.fit(rows, {}, _study(fit_runs="a,b,c,d", targets="e"))
  study = _study(fit_runs="a,b,c,d", targets="e")
  study.extrapolation = "backtest"
  return rows, prior, curves.fit(rows, {}, study)


@pytest.mark.slow  # curve fits with their cluster bootstraps
def test_the_backtest_refits_the_smaller_sizes_and_predicts_the_larger_final(fits):
  rows, prior, _ = fits
  backtest = prior.backtest
  assert backtest.ran
  (row,) = backtest.rows  # sizes a, b, c predict d's final checkpoint
  assert row["run"] == "d" and row["num_fit"] == 36
  final_d = [r for r in rows if r["run"] == "d" and r["final"]][0]
  assert row["measured"] == pytest.approx(final_d["loss/validation"])
  # The refit equals an independent fit of a, b and c's checkpoints.
  small = [r for r in rows if r["run"] in "abc"]
  alone = fit_lib.fit(forms.CHINCHILLA, {"N": np.array([r["N"] for r in small]),
                                         "D": np.array([r["tokens"] for r in small])},
                      np.array([r["loss/validation"] for r in small]),
                      settings=prior.fits["all checkpoints"].result.settings)
  expected = forms.CHINCHILLA(alone.params, fit_lib.as_inputs(
      {"N": np.array([SIZES["d"]]), "D": np.array([final_d["tokens"]])}))
  assert row["predicted"] == pytest.approx(float(expected[0]), rel=1e-4)
  # Decades of compute beyond c's final checkpoint, the refit's largest (D = 20 N).
  assert row["decades"] == pytest.approx(2 * np.log10(SIZES["d"] / SIZES["c"]), rel=1e-6)


@pytest.mark.slow
def test_study_extrapolation_backtest_sets_the_curve_intervals_growth(fits):
  # Planted bug: the growth computed but the prediction intervals left on the prior's.
  _, prior, pooled = fits
  assert prior.extrapolation_growth == pi_lib.LOSS_PRIOR.growth
  assert pooled.extrapolation_growth == pooled.backtest.growth != prior.extrapolation_growth
  far = lambda fit: [(r["loss_hi"] - r["loss_lo"]) / r["loss_pred"] for r in fit.checkpoints
                     if r["run"] == "e" and r["extrapolation_decades"] > 0.2]
  ratio = np.array(far(pooled)) / np.array(far(prior))
  expected = pooled.extrapolation_growth < prior.extrapolation_growth
  assert np.all(ratio < 1) if expected else np.all(ratio > 1)


@pytest.mark.slow
def test_the_curve_report_shows_the_backtest(fits, tmp_path):
  from scaling_jax.report import curve_report  # pylint: disable=import-outside-toplevel
  _, prior, pooled = fits
  text = curve_report.render(prior, {"workdir": "w"})
  assert "## Backtest: how this design predicts its own largest runs" in text
  assert "(the prior, study.extrapolation='prior')" in text
  assert pooled.backtest.source in curve_report.render(pooled, {"workdir": "w"})
  summary = json.loads(json.dumps(curve_report.fit_summary(prior, {}), default=float))
  assert summary["backtest"]["rows"][0]["run"] == "d"
  assert summary["backtest"]["growth_used"] == pi_lib.LOSS_PRIOR.growth


def test_dense_sizes_give_at_most_eight_cutoffs_the_largest_kept():
  n = np.repeat(np.geomspace(1e7, 1e9, 30), 3)
  d = np.tile([1e8, 2e8, 4e8], 30)
  masks = curve_backtest.size_cutoffs(_result(n, d))
  largest = [n[m].max() for m in masks]
  assert len(masks) == curve_backtest.MAX_CUTOFFS
  assert largest[-1] == np.unique(n)[-2] and largest[0] == np.unique(n)[2]
  assert largest == sorted(largest)
