"""Do curve fits' 95% intervals cover 95%? Seeded coverage of the cluster bootstrap.

The design is benchmarks/calibration_curves.py's `curves`: Eq. 3 (Hoffmann et al.'s fit)
on 10 checkpoints of each of 8 runs, every run offset by its own noise (shared by
its checkpoints) plus each checkpoint's evaluation noise. The intervals are the
study's own (curves.fit), for the law's loss at two far targets and for alpha and
beta. Resampling checkpoints instead of whole runs makes them far too narrow (the
checkpoints of a run share its noise); this test catches that.
"""
import pytest
import numpy as np

from scaling_jax import config_lib
from scaling_jax.fitting import curve_backtest
from scaling_jax.fitting import curves

pytestmark = pytest.mark.slow  # every test here is of the full tier

TRUTH = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
RUNS = ((3e7, 20.0), (6e7, 20.0), (1.2e8, 20.0), (2.5e8, 20.0), (5e8, 20.0), (1e9, 20.0),
        (6e7, 320.0), (2.5e8, 80.0))  # (N, M): 6 sizes at M = 20, 2 over-trained
TARGETS = {"far_m640": (1.4e9, 640.0), "far_m20": (6.9e9, 20.0)}
RUN_SIGMA, CHECKPOINT_SIGMA = 0.015, 0.0057
TRIALS, RESAMPLES = 200, 100  # 100 resamples: coarse tails, but a test under a minute


def _loss(n, d):
  return TRUTH["E"] + TRUTH["A"] * n ** -TRUTH["alpha"] + TRUTH["B"] * d ** -TRUTH["beta"]


def _rows(rng):
  """10 checkpoints per run past a 25% cut; the targets as one exact point each."""
  rows = []
  for i, (n, m) in enumerate(RUNS):
    offset = RUN_SIGMA * rng.standard_normal()
    for step, d in enumerate(n * m * np.linspace(0.25, 1.0, 10)):
      loss = _loss(n, d) + offset + CHECKPOINT_SIGMA * rng.standard_normal()
      rows.append(dict(run=f"r{i}", model=f"r{i}", N=n, tokens=d, step=step + 1,
                       **{"loss/validation": loss}))
  for name, (n, m) in TARGETS.items():
    rows.append(dict(run=name, model=name, N=n, tokens=n * m, step=1,
                     **{"loss/validation": _loss(n, n * m)}))
  return rows


def _study():
  study = config_lib.default_config().study
  study.bootstrap.num_resamples = RESAMPLES
  # The objective benchmarks/calibration.py measured these intervals with; the
  # Huber default for curve fits (study.fit.loss='auto') is not yet measured here.
  study.fit.loss = "squares"
  study.curves.fit_runs = ",".join(f"r{i}" for i in range(len(RUNS)))
  study.curves.targets = ",".join(TARGETS)
  return study


def test_cluster_intervals_cover_on_a_claimed_design(monkeypatch):
  # 200 seeded trials: a binomial standard error of 0.015 at 0.95. The benchmark
  # measured 0.96-0.98 here (1000 trials, 400 resamples); resampling checkpoints
  # instead of runs covers far less. Over-coverage is measured, not tested: at 8
  # runs the intervals are conservative, and a one-sided bound says what matters.
  rng = np.random.default_rng(0)
  study = _study()
  # Under the default extrapolation='prior' the intervals never read the fit's own
  # backtest (laws/backtest.growth_used), so the 200 fits skip it: it doubled this
  # test's time (tests/fitting_curve_backtest_test.py covers it).
  assert study.extrapolation == "prior"
  monkeypatch.setattr(curve_backtest, "backtest", lambda *args: None)
  covered = []
  for _ in range(TRIALS):
    fit = curves.fit(_rows(rng), {}, study)
    assert not any("resample only" in n for n in fit.notes), fit.notes
    params = fit.fits["all checkpoints"].param_intervals(0.95)
    hits = [params[k]["lo"] <= TRUTH[k] <= params[k]["hi"] for k in ("alpha", "beta")]
    for row in fit.checkpoints:
      if row["run"] in TARGETS:
        hits.append(row["loss_lo"] <= row["loss"] <= row["loss_hi"])
    covered.append(hits)
  coverage = np.mean(covered, axis=0)
  assert len(coverage) == 4
  tolerance = 3 * np.sqrt(0.95 * 0.05 / TRIALS)
  assert np.all(coverage >= 0.95 - tolerance), coverage

