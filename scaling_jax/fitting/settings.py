"""config.study: every section from the module that reads it, checked once.

  study.dataset, .val_set          which rows, and which loss is fitted (all fits)
  study.loss_design, .err_design,  the final-point fit's design points and targets
    .targets, .budget_flops          ('model@M' / 'N@M'; points.py, study_fit.py)
  study.downstream, .subset        which tasks enter the error (task_subset.py)
  study.fit                        the solver (laws.fit.FitSettings)
  study.bootstrap                  the intervals: resampling (laws.bootstrap.
                                     BootstrapSettings) and its noise source
                                     (noise_sources.py)
  study.curves                     fits on every checkpoint of named runs (curves.py)
  study.advise, .retrospective     which runs to train next, and its replay
  study.reuse_fit                  redraw the report from the last fit (report/fit_cache)

`check(study)` runs every section's check, before any training or fitting; the
fit functions trust a checked config and do not check it again.

"""
from __future__ import annotations

import ml_collections

from scaling_jax.fitting import advice
from scaling_jax.fitting import curves
from scaling_jax.fitting import law_settings
from scaling_jax.fitting import noise_sources
from scaling_jax.fitting import points
from scaling_jax.fitting import retrospective
from scaling_jax.fitting import task_subset
from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import backtest as backtest_lib
from scaling_jax.laws import prediction_interval as pi_lib
from scaling_jax import config_fields
from scaling_jax.fitting import StudyError


def default_study_config() -> ml_collections.ConfigDict:
  """config.study, documented field by field where each section is built."""
  study = ml_collections.ConfigDict()
  study.dataset = ""  # fit the rows of this dataset column only ('' -> all rows)
  study.val_set = "validation"  # loss/<val_set> is the fitted loss
  study.update(points.default_config())
  study.budget_flops = 0.0  # compute-optimal split at this C; 0: the largest target's
  study.update(task_subset.default_config())
  # bounds: 'none', or 'physical' (E >= 0, coefficients >= 0, exponents and Eq. 5's
  # eps in a range: forms.Law.physical_bounds), or from Python a tuple of (name, lo,
  # hi) triples. Influences are not reported where a bound holds a parameter.
  # loss: the objective, 'squares' (least squares on the metric, the papers' fits)
  # or 'huber' (Huber on log residuals, turning linear past huber_delta: the
  # Chinchilla fits', which an outlier run cannot drag); 'auto' picks by study
  # kind (law_settings.OBJECTIVE_BY_KIND, measured: benchmarks/objective_choice.py).
  # Whichever is used, the other is fitted too, and the report shows both where
  # they differ by more than the fit's own uncertainty (fitting/objectives.py).
  # maxiter: the solver's iteration limit; 0: 100 for least squares, 1000 for Huber
  # (laws/fit.py says why).
  study.fit = ml_collections.ConfigDict(dict(
      maxiter=0, tol=fit_lib.DEFAULT_TOL, loss="auto",
      huber_delta=fit_lib.DEFAULT_HUBER_DELTA, bounds="none"))
  # method, num_resamples, seed, level: laws/bootstrap.py; noise (where the
  # residual_t / parametric bootstrap's noise scale comes from), eval_floor (floor
  # each loss-law point's scale at its recorded evaluation noise,
  # <ci_column>/<val_set>): fitting/noise_sources.py.
  study.bootstrap = ml_collections.ConfigDict(dict(
      method=bootstrap_lib.DEFAULT_METHOD, num_resamples=bootstrap_lib.DEFAULT_RESAMPLES,
      seed=0, level=0.95, **noise_sources.default_config()))
  # Which interval summary.md leads with: 'prediction' (one run trained at the
  # target: fit, run noise and extrapolation error) or 'mean' (the law's value,
  # fit uncertainty only). predictions.csv and fit.json always hold both.
  study.interval = "prediction"
  # Where the prediction interval's extrapolation growth comes from: 'prior' (the
  # measured prior alone) or 'backtest' (the loss design's leave-future-out backtest
  # pooled with the prior, where the design has six or more runs). The backtest is
  # reported either way; laws/backtest.py says why 'prior' is the default.
  study.extrapolation = "prior"
  study.curves = curves.default_config()
  study.advise = advice.default_config()
  study.retrospective = retrospective.default_config()
  # Reuse the last fit when its inputs and the package are unchanged: a second call
  # then only redraws the report (seconds, not a minute of compiling the solver).
  study.reuse_fit = True
  return study


def check(study) -> None:
  """Every section's value checks, before any training or fitting."""
  points.check(study)
  config_fields.require_choice("study.interval", study.interval, pi_lib.KINDS, StudyError)
  config_fields.require_choice("study.extrapolation", study.extrapolation,
                               backtest_lib.SOURCES, StudyError)
  task_subset.check(study)
  law_settings.fit_settings(study)
  law_settings.bootstrap_settings(study)
  noise_sources.check(study.bootstrap, "study.bootstrap")
  curves.check(study)
  advice.check(study)
  retrospective.check(study.retrospective)
