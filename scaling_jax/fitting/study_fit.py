"""From the runs table to fitted laws: `fit(rows, task_baselines, config.study)`.

The one fit of every study, whatever the source of its rows:
  1. one row per design point (model, M): each run's final row, averaged over seeds;
  2. the designs ('model@M' strings in the config, parsed once here) and targets;
  3. the downstream tasks averaged into the error (the paper's subset rule);
  4. Eq. 4 on the loss design, Eq. 5 on the error design, both bootstrapped;
  5. predictions with intervals for every point and target (fitting/predictions.py).

`config.study`'s fields are documented in fitting/settings.py and the modules it
names; `fit` expects a config that `settings.check` has passed.
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Sequence

import numpy as np

from scaling_jax.fitting import StudyError
from scaling_jax.fitting import law_settings
from scaling_jax.fitting import noise_sources
from scaling_jax.fitting import objectives as objectives_lib
from scaling_jax.fitting import points as points_lib
from scaling_jax.fitting import predictions as predictions_lib
from scaling_jax.fitting import task_subset
from scaling_jax.laws import backtest as backtest_lib
from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms
from scaling_jax.laws import noise as noise_lib
from scaling_jax.laws import predict as predict_lib
from scaling_jax.laws import prediction_interval as pi_lib
from scaling_jax.runs import table as runs_table

@dataclasses.dataclass
class LawFit:
  result: fit_lib.FitResult
  boot: bootstrap_lib.BootstrapResult  # for the `mean` intervals
  runs: list[str]
  # For the `prediction` intervals (laws/prediction_interval.py): the run-level
  # noise, and the law bootstrapped with it as the noise scale.
  run_noise: pi_lib.RunNoise | None = None
  run_boot: bootstrap_lib.BootstrapResult | None = None
  seed: int = 0
  # The loss law's leave-future-out backtest (laws/backtest.py), whose growth the
  # prediction intervals' extrapolation term uses; None for the error law.
  backtest: backtest_lib.Backtest | None = None
  extrapolation: str = "prior"  # config.study.extrapolation

  @property
  def extrapolation_growth(self) -> float:
    return backtest_lib.growth_used(self.backtest, self.extrapolation, pi_lib.LOSS_PRIOR)

  def param_intervals(self, level: float) -> dict[str, dict[str, float]]:
    """{name: value, lo, hi, se}: se is the replicates' standard deviation."""
    lo, hi = bootstrap_lib.interval(self.boot.params, level)
    se = np.nanstd(self.boot.params, axis=0, ddof=1)
    return {n: {"value": float(self.result.params[i]), "lo": float(lo[i]),
                "hi": float(hi[i]), "se": float(se[i])}
            for i, n in enumerate(self.result.law.param_names)}


@dataclasses.dataclass
class StudyFit:
  rows: list[dict]            # one per design point, with 'err' added where known
  val_set: str
  tasks: list[str]
  task_rule: str              # one line: how the tasks were chosen
  level: float
  loss: LawFit
  error: LawFit | None
  predictions: list[dict]     # one per row (see predictions.py for the columns)
  targets: list[dict]         # predictions for the named targets, with influences
  compute_optimal: predict_lib.ComputeOptimal
  notes: list[str] = dataclasses.field(default_factory=list)  # flags for the reader
  # The loss law refitted by the other objective (fitting/objectives.py).
  objectives: objectives_lib.Comparison | None = None
  # Which interval kind summary.md leads with (config.study.interval).
  interval: str = "prediction"
  # The same design fitted on every checkpoint (scaling_jax/fitting/curves.py), or why not.
  checkpoint_fit: object = None
  checkpoint_fit_note: str = ""
  # Which runs to train next (scaling_jax/fitting/advice.py), and the advisor's replay on
  # released runs; None unless config.study.advise / .retrospective ask for them.
  advice: object = None
  retrospective: object = None


def _budget(study, target_rows, points) -> float:
  """study.budget_flops, else the largest target's compute (else the largest run's)."""
  if study.budget_flops:
    return float(study.budget_flops)
  return max(r["flops"] for r in (target_rows or points))


def _fit_only(law, x, y, runs, study) -> fit_lib.FitResult:
  try:
    return fit_lib.fit(law, x, y, settings=law_settings.fit_settings(study))
  except fit_lib.FitError as e:
    raise StudyError(f"fitting {law.formula} on runs {runs}: {e}") from None


def _run_noise(result: fit_lib.FitResult, eval_floor: float | None = None
               ) -> pi_lib.RunNoise:
  """One run's noise about the law: the fit's residual scale pooled with the prior
  (relative for a loss law, in error-rate units for the error law). The error law's
  is floored at `eval_floor`, its runs' evaluation noise: the prior was measured on
  task suites of thousands of examples, and a small suite's own binomial noise can
  be several times larger."""
  fitted = result.predict(result.x)
  if result.law is forms.DOWNSTREAM:
    sigma, df = pi_lib.absolute_residual_scale(result.y, fitted, result.law.num_params)
    noise = pi_lib.pooled_noise(sigma, df, pi_lib.ERROR_PRIOR, "the error law's residuals")
    return pi_lib.with_eval_floor(noise, eval_floor)
  sigma, df = pi_lib.relative_residual_scale(result.y, fitted, result.law.num_params)
  return pi_lib.pooled_noise(sigma, df, pi_lib.LOSS_PRIOR,
                             "the loss law's relative residuals")


def _run_boot(result, noise: pi_lib.RunNoise, resampling) -> bootstrap_lib.BootstrapResult:
  """The law bootstrapped with the run noise as its scale (parametric draws)."""
  fitted = np.abs(result.predict(result.x))
  sigma = noise.sigma * (fitted if result.law is not forms.DOWNSTREAM else 1.0)
  scale = noise_lib.NoiseScale(np.broadcast_to(sigma, fitted.shape), noise.df,
                               noise.source)
  return bootstrap_lib.bootstrap(result, method="parametric",
                                 num_resamples=resampling.num_resamples,
                                 seed=resampling.seed, noise=scale)


def _fit_law(law, x, y, runs, study, method, noise_of=None, eval_floor=None) -> LawFit:
  """Fit and bootstrap; noise_of(result) gives the bootstrap's NoiseScale (or None);
  `eval_floor`: the error law's evaluation noise (_run_noise)."""
  result = _fit_only(law, x, y, runs, study)
  resampling = law_settings.bootstrap_settings(study)
  try:
    noise = noise_of(result) if noise_of else None
    boot = bootstrap_lib.bootstrap(result, method=method,
                                   num_resamples=resampling.num_resamples,
                                   seed=resampling.seed, noise=noise)
    run_noise = _run_noise(result, eval_floor)
    run_boot = _run_boot(result, run_noise, resampling)
    backtest = (None if result.law is forms.DOWNSTREAM else
                backtest_lib.leave_future_out(result, runs, run_noise.sigma,
                                              pi_lib.LOSS_PRIOR,
                                              batch=resampling.num_resamples))
  except ValueError as e:  # e.g. n = p: no residual scale to draw from
    raise StudyError(f"bootstrapping {law.formula} on runs {runs} "
                     f"(study.bootstrap.method={method!r}, "
                     f"noise={study.bootstrap.noise!r}): {e}") from None
  return LawFit(result, boot, list(runs), run_noise, run_boot, resampling.seed, backtest,
                study.extrapolation)


def _eval_sigma(rows, val_set, ci_column):
  """Per-run evaluation noise of the loss (recorded 95% half-width / 1.96)."""
  key = f"{ci_column}/{val_set}"
  missing = [r["run"] for r in rows if key not in r]
  if missing:
    raise StudyError(f"study.bootstrap.noise='eval' / eval_floor need column {key!r} "
                     f"(the runs' recorded loss intervals); missing in {missing}")
  return np.array([r[key] for r in rows]) / 1.96


def _error_eval_floor(rows, tasks) -> float | None:
  """The median evaluation noise of the error-law runs' task averages (None where a
  run lacks its tasks' example counts)."""
  sds = [task_subset.error_eval_sd(r, tasks) for r in rows]
  return None if not sds or None in sds else float(np.median(sds))


def _seed_groups(rows, chosen, value) -> list[list[float]]:
  """Per chosen design point, `value(row)` of each of its seeds' final rows."""
  by_key = collections.defaultdict(list)
  for r in runs_table.final_rows(rows):
    by_key[runs_table.run_key(r)].append(r)
  return [[value(r) for r in by_key[runs_table.run_key(c)]] for c in chosen]


def _other_datasets(rows, source_rows) -> dict[str, list[dict]]:
  """Point rows of every dataset of the source that the fitted rows do not hold."""
  fitted = {r.get("dataset") for r in rows}
  others = collections.defaultdict(list)
  for r in source_rows:
    if r.get("dataset") not in fitted:
      others[str(r.get("dataset"))].append(r)
  return {d: points_lib.point_rows(rs) for d, rs in sorted(others.items())}


def _pooled_fits(law, study, others, design, x_and_y) -> dict[str, fit_lib.FitResult]:
  """The same design fitted on each other dataset that has all of its points."""
  fits = {}
  for dataset, points in others.items():
    keys = {runs_table.run_key(p) for p in points}
    if all(points_lib.parse_point(spec) in keys for spec in design):
      chosen = points_lib.select_points(points, design)
      x, y = x_and_y(chosen)
      if y is not None:
        fits[dataset] = _fit_only(law, x, y, [r["run"] for r in chosen], study)
  return fits


def _with_err(xy, tasks):
  """xy over rows with their task-average error added where all tasks are measured
  (other datasets' points, for pooling, have not had it computed)."""
  def with_err(chosen):
    return xy([dict(r, err=task_subset.average_error(r, tasks))
               if "err" not in r and all(runs_table.ACC_PREFIX + t in r for t in tasks)
               else r for r in chosen])
  return with_err


def _noise_of(study, rows, source_rows, law, design, chosen, x_and_y, value,
              recorded: bool):
  """A noise_of(result) for _fit_law, per config.study.bootstrap (noise_sources.choose).
  `recorded`: the chosen rows carry recorded evaluation noise (losses do; task
  averages do not)."""
  boot_cfg = study.bootstrap

  def noise_of(result):
    try:
      return noise_sources.choose(
          boot_cfg, result,
          seeds=lambda: noise_sources.seed_scale(_seed_groups(rows, chosen, value),
                                             [r["run"] for r in chosen]),
          pooled=lambda: noise_sources.pooled_scale(
              result, _pooled_fits(law, study, _other_datasets(rows, source_rows),
                                   design, x_and_y), study.dataset),
          eval_sigma=lambda: (_eval_sigma(chosen, study.val_set, boot_cfg.ci_column)
                              if recorded else None),
          eval_key=f"{boot_cfg.ci_column}/{study.val_set}")
    except noise_sources.NoiseSourceError as e:
      raise StudyError(str(e)) from None
  return noise_of


def _in_sample_notes(targets, loss_design, err_design) -> list[str]:
  """A target that is also a design point is scored on a run the law was fitted to:
  its error says how well the law fits, not how well it predicts."""
  notes = []
  keys = {name: {points_lib.parse_point(p) for p in design}
          for name, design in (("loss", loss_design), ("error", err_design))}
  for spec in targets:
    designs = [name for name, design in keys.items()
               if points_lib.parse_point(spec) in design]
    if designs:
      notes.append(f"target {spec} is also in the {' and '.join(designs)} design: the law "
                   f"was fitted to it, so its error is a fit residual, not a prediction; "
                   f"leave it out of study.loss_design / study.err_design to test a "
                   f"prediction")
  return notes


def _interval_notes(targets, num_resamples: int, level: float) -> list[str]:
  """Intervals too coarse to read: few resamples beyond each end (their ends are
  then mostly resampling noise), or a point prediction outside its own interval."""
  notes = []
  beyond = num_resamples * (1 - level) / 2
  if beyond < 5:
    notes.append(f"study.bootstrap.num_resamples={num_resamples} leaves {beyond:.2g} "
                 f"resample(s) beyond each end of a {level:.0%} interval, so its ends are "
                 f"mostly resampling noise; use {int(np.ceil(10 / (1 - level)))} or more")
  for t in targets:
    for column in ("loss", "err"):
      pred, lo, hi = (t.get(f"{column}_{k}") for k in ("pred", "lo", "hi"))
      if None not in (pred, lo, hi) and not lo <= pred <= hi:
        notes.append(f"target {t['run']}: the predicted {column} {pred:.4g} lies outside "
                     f"its own interval [{lo:.4g}, {hi:.4g}], which is too coarse to "
                     f"read (raise study.bootstrap.num_resamples)")
  return notes


def fit(source_rows: Sequence[dict], task_baselines: dict, study) -> StudyFit:
  """Fits config.study's laws on the runs table's rows; see the module docstring."""
  rows = points_lib.of_dataset(source_rows, study.dataset)
  if not rows:
    raise StudyError(f"config field 'study.dataset' is {study.dataset!r}, but no run has "
                     f"that dataset; present: "
                     f"{sorted({str(r.get('dataset')) for r in source_rows})}")
  points = points_lib.point_rows(rows)
  loss_design, err_design, targets = points_lib.designs(study, points)
  loss_rows = points_lib.select_points(points, loss_design)
  err_rows = points_lib.select_points(points, err_design) if study.downstream != "none" else []
  tasks, task_rule = task_subset.choose_tasks(study, source_rows, err_rows, task_baselines)
  notes = task_subset.task_gaps(rows, err_rows, task_baselines)
  if err_rows and task_baselines and not tasks:
    raise StudyError("no downstream task is measured on every error-design run, so the "
                     "error law cannot be fitted: " + "; ".join(notes or ["no acc/ columns"])
                     + ". Fix the runs, drop runs from config.study.err_design, or set "
                     "config.study.downstream=none")
  for r in points:
    if tasks and all(runs_table.ACC_PREFIX + t in r for t in tasks):
      r["err"] = task_subset.average_error(r, tasks)
  val_set, boot_cfg = study.val_set, study.bootstrap
  loss_xy = lambda chosen: (predictions_lib.law_inputs(chosen),
                            [points_lib.loss_of(r, val_set) for r in chosen])
  loss = _fit_law(forms.OVERTRAINING, *loss_xy(loss_rows), [r["run"] for r in loss_rows],
                  study, boot_cfg.method,
                  _noise_of(study, rows, source_rows, forms.OVERTRAINING, loss_design,
                            loss_rows, loss_xy, lambda r: points_lib.loss_of(r, val_set), True))
  error = None
  if tasks:
    no_err = [r["run"] for r in err_rows if "err" not in r]
    if no_err:
      raise StudyError(f"error-law design runs {no_err} lack accuracies for tasks {tasks}")
    err_xy = lambda chosen: (
        ({"L": [points_lib.loss_of(r, val_set) for r in chosen]}, [r["err"] for r in chosen])
        if all("err" in r for r in chosen) else (None, None))
    error = _fit_law(forms.DOWNSTREAM, *err_xy(err_rows), [r["run"] for r in err_rows],
                     study, boot_cfg.method,
                     _noise_of(study, rows, source_rows, forms.DOWNSTREAM, err_design,
                               err_rows, _with_err(err_xy, tasks),
                               lambda r: task_subset.average_error(r, tasks), False),
                     _error_eval_floor(err_rows, tasks))
  target_rows = [points_lib.target_row(spec, points) for spec in targets]
  level = boot_cfg.level
  predicted_targets = predictions_lib.predict_targets(target_rows, val_set, loss, error,
                                                      level)
  notes += sorted({f"influences not computed: {t['influence_unavailable']}"
                   for t in predicted_targets if "influence_unavailable" in t})
  notes += _in_sample_notes(targets, loss_design, err_design if tasks else [])
  notes += _interval_notes(predicted_targets, int(boot_cfg.num_resamples), level)
  notes += backtest_lib.rejection_notes(loss.backtest, loss.extrapolation,
                                        pi_lib.LOSS_PRIOR, "summary: Backtest")
  comparison = objectives_lib.compare(
      loss.result, loss.boot.params, level, study, "final",
      {t["run"]: predictions_lib.law_inputs([t]) for t in target_rows})
  notes += [n for n in [comparison.note("loss law")] if n]
  return StudyFit(
      rows=points, val_set=val_set, tasks=list(tasks), task_rule=task_rule, level=level,
      loss=loss, error=error,
      predictions=predictions_lib.predict_rows(points, val_set, loss, error, level),
      targets=predicted_targets, interval=study.interval,
      compute_optimal=predict_lib.compute_optimal(
          loss.result, loss.boot, _budget(study, target_rows, points), level),
      notes=notes, objectives=comparison)
