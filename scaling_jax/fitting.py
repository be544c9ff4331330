"""From the runs table to fitted laws: `fit(rows, task_baselines, config.study)`.

The one fit of every study, whatever the source of its rows:
  1. one row per design point (model, M): each run's final row, averaged over seeds;
  2. the designs ('model@M' strings in the config, parsed once here) and targets;
  3. the downstream tasks averaged into the error (the paper's subset rule);
  4. Eq. 4 on the loss design, Eq. 5 on the error design, both bootstrapped;
  5. predictions with intervals for every point and target (scaling_jax.predictions).

`config.study` fields are documented in `default_study_config()`.
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Sequence

import ml_collections
import numpy as np

from scaling_jax import fit_noise
from scaling_jax import predictions as predictions_lib
from scaling_jax.evals import task_subset
from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms
from scaling_jax.laws import predict as predict_lib
from scaling_jax.runs import table as runs_table

DOWNSTREAM_RULES = ("subset", "all", "none")
TASK_POOLS = ("err_design", "source")


class StudyError(ValueError):
  """The config or the rows cannot support the fit asked for; says which and why."""


def default_study_config() -> ml_collections.ConfigDict:
  """config.study: what to fit on, what to predict, and how.

  Designs and targets are comma-separated strings (so a flag can set them, e.g.
  --config.study.targets=tiny-3@20,tiny-2@80) naming design points as 'model@M'
  (the runs' model name and tokens per parameter); a target not in the table is
  'N@M' (parameters and multiplier, e.g. '6889410560@20'). An empty loss_design
  means every point that is not a target; an empty err_design means the loss
  design. (Curve fits, scaling_jax/curves.py, read targets as run names.)
  """
  study = ml_collections.ConfigDict()
  study.dataset = ""  # fit the rows of this dataset column only ('' -> all rows)
  study.loss_design = ""   # Eq. 4 fit set
  study.err_design = ""    # Eq. 5 fit set
  study.targets = ""       # points to predict
  study.val_set = "validation"  # loss/<val_set> is the fitted loss
  # Which acc/<task> columns enter the average error: 'subset' (the paper's rule),
  # 'all' tasks with a known chance level, or 'none' (no error law).
  study.downstream = "subset"
  # The subset rule keeps tasks on which a run of the reference model beats chance
  # by threshold_points. reference_model '' -> the largest model of the error
  # design. pool: the runs consulted, 'err_design' (so a target never picks its own
  # tasks) or 'source' (every run the source holds, all datasets: the paper's rule
  # on its released testbed). 10 points as in the paper: at 50 examples per task a
  # chance accuracy of 0.25 has a binomial standard error of 6 points.
  study.subset = ml_collections.ConfigDict(dict(
      reference_model="", threshold_points=10.0, pool="err_design"))
  # bounds: 'none', or 'physical' (E >= 0, coefficients >= 0, exponents and Eq. 5's
  # eps in a range: forms.Law.physical_bounds), or from Python a tuple of (name, lo,
  # hi) triples. Influences are not reported where a bound holds a parameter.
  study.fit = ml_collections.ConfigDict(dict(
      maxiter=fit_lib.DEFAULT_MAXITER, tol=fit_lib.DEFAULT_TOL, robust=False,
      huber_delta=fit_lib.DEFAULT_HUBER_DELTA, bounds="none"))
  # noise: where the residual_t / parametric bootstrap's noise scale comes from,
  # one of fit_noise.NOISE_SOURCES (see scaling_jax/fit_noise.py); eval_floor: floor
  # each loss-law point's scale at its recorded evaluation noise (<ci_column>/<val_set>).
  study.bootstrap = ml_collections.ConfigDict(dict(
      method=bootstrap_lib.DEFAULT_METHOD, num_resamples=bootstrap_lib.DEFAULT_RESAMPLES,
      seed=0, level=0.95, noise="residuals", eval_floor=False, ci_column="loss_ci"))
  study.budget_flops = 0.0  # compute-optimal split at this C; 0: the largest target's
  # Reuse the last fit when its inputs and the package are unchanged: a second call
  # then only redraws the report (seconds, not a minute of compiling the solver).
  study.reuse_fit = True
  return study


def names(value) -> list[str]:
  """A comma-separated string (or a list, from Python) as a list of names."""
  if isinstance(value, str):
    return [v.strip() for v in value.split(",") if v.strip()]
  return [str(v) for v in value or ()]


def check_study(study) -> None:
  """Value checks of config.study, before any training or fitting."""
  if study.downstream not in DOWNSTREAM_RULES:
    raise StudyError(f"config field 'study.downstream' is {study.downstream!r}; use one "
                     f"of {DOWNSTREAM_RULES}")
  if study.subset.pool not in TASK_POOLS:
    raise StudyError(f"config field 'study.subset.pool' is {study.subset.pool!r}; use "
                     f"one of {TASK_POOLS}")
  for problem in (fit_lib.config_problem(study.fit, "study.fit"),
                  bootstrap_lib.config_problem(study.bootstrap, "study.bootstrap"),
                  fit_noise.config_problem(study.bootstrap, "study.bootstrap")):
    if problem:
      raise StudyError(problem)
  if not study.get("fit_runs"):  # curve fits name runs, not points
    for spec in names(study.loss_design) + names(study.err_design) + names(study.targets):
      parse_point(spec)


@dataclasses.dataclass
class LawFit:
  result: fit_lib.FitResult
  boot: bootstrap_lib.BootstrapResult
  runs: list[str]

  def param_intervals(self, level: float) -> dict[str, dict[str, float]]:
    lo, hi = bootstrap_lib.interval(self.boot.params, level)
    return {n: {"value": float(self.result.params[i]), "lo": float(lo[i]), "hi": float(hi[i])}
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
  # The same design fitted on every checkpoint (scaling_jax/curves.py), or why not.
  checkpoint_fit: object = None
  checkpoint_fit_note: str = ""
  # Which runs to train next (scaling_jax/advice.py), and the advisor's replay on
  # released runs; None unless config.study.advise / .retrospective ask for them.
  advice: object = None
  retrospective: object = None


def parse_point(spec: str) -> tuple[str, float]:
  """'model@M' -> (model, M): the one parser of the config's point names."""
  name, at, multiplier = str(spec).rpartition("@")
  if not at or not name:
    raise StudyError(f"design entry {spec!r} must read 'model@M' (e.g. 'tiny-0@20')")
  try:
    return name, float(multiplier)
  except ValueError:
    raise StudyError(f"design entry {spec!r}: M must be a number") from None


def point_label(key: tuple[str, float]) -> str:
  """(model, M) -> 'model@M', for messages and the report."""
  return f"{key[0]}@{key[1]:g}"


def _mean_row(group: list[dict]) -> dict:
  """Seeds of one design point as one row: metrics averaged, loss intervals combined."""
  if len(group) == 1:
    return dict(group[0], seeds=1)
  row = dict(group[0], run=point_label(runs_table.run_key(group[0])), seeds=len(group),
             final=all(r["final"] for r in group))
  for key in {k for r in group for k in r if k.startswith(
      (runs_table.LOSS_PREFIX, runs_table.ACC_PREFIX, runs_table.LOSS_CI_PREFIX))}:
    values = np.array([r.get(key, np.nan) for r in group], float)
    if key.startswith(runs_table.LOSS_CI_PREFIX):
      row[key] = float(np.sqrt(np.sum(values**2)) / len(values))  # of the mean
    else:
      row[key] = float(np.mean(values))
  return row


def point_rows(rows: Sequence[dict]) -> list[dict]:
  """One row per design point: the final rows of its runs, averaged over seeds."""
  groups = collections.defaultdict(list)
  for row in runs_table.final_rows(rows):
    groups[runs_table.run_key(row)].append(row)
  return [_mean_row(sorted(g, key=lambda r: r["run"])) for _, g in sorted(groups.items())]


def select_points(rows: Sequence[dict], specs: Sequence[str]) -> list[dict]:
  """The row of each 'model@M' spec."""
  by_key = {runs_table.run_key(r): r for r in rows}
  chosen = []
  for spec in specs:
    key = parse_point(spec)
    if key not in by_key:
      raise StudyError(f"design entry {spec!r} matches no run; available: "
                       f"{sorted(point_label(k) for k in by_key)}")
    chosen.append(by_key[key])
  return chosen


def loss_of(row: dict, val_set: str) -> float:
  """The row's loss on `val_set`, or an error naming the sets it has."""
  key = runs_table.LOSS_PREFIX + val_set
  if key not in row:
    sets = runs_table.metric_names([row], runs_table.LOSS_PREFIX)
    raise StudyError(
        f"{row.get('source', row['run'])}: no loss for eval set {val_set!r} (field "
        f"{key!r}); sets present: {sets}. Pick one with --config.study.val_set")
  return row[key]


def target_row(spec: str, points: Sequence[dict]) -> dict:
  """A measured point for 'model@M', or an unmeasured one for 'N@M'."""
  name, _, multiplier = spec.rpartition("@")
  try:
    n = float(name)
  except ValueError:
    return select_points(points, [spec])[0]
  multiplier = float(multiplier)
  tokens = n * multiplier
  return {"run": f"N={n:.3g},M={multiplier:g}", "N": n, "M": multiplier,
          "tokens": tokens, "flops": runs_table.training_flops(n, tokens)}


def _reference_params(study, pool_rows) -> float:
  """N of study.subset.reference_model, else of the largest model in the pool."""
  if not study.subset.reference_model:
    return max(r["N"] for r in pool_rows)
  sizes = [r["N"] for r in pool_rows if r.get("model") == study.subset.reference_model]
  if not sizes:
    raise StudyError(f"config field 'study.subset.reference_model' is "
                     f"{study.subset.reference_model!r}, but no run it consults (pool "
                     f"{study.subset.pool!r}) has that model; models there: "
                     f"{sorted({str(r.get('model')) for r in pool_rows})}")
  return sizes[0]


def choose_tasks(study, source_rows, err_rows, baselines) -> tuple[list[str], str]:
  """The tasks averaged into the error, and one line saying how they were chosen."""
  if study.downstream == "none" or not baselines:
    return [], "no downstream tasks" + ("" if baselines else " measured")
  tasks = task_subset.common_tasks(err_rows, baselines) if err_rows else []
  if study.downstream == "all" or not tasks:
    return tasks, f"all {len(tasks)} tasks with a chance level"
  pool = err_rows if study.subset.pool == "err_design" else runs_table.final_rows(source_rows)
  reference = _reference_params(study, pool)
  kept = task_subset.select_tasks(err_rows, baselines, reference_params=reference,
                                  threshold_points=study.subset.threshold_points,
                                  reference_rows=pool)
  where = "" if study.subset.pool == "err_design" else " (any run of the source)"
  return kept, (f"{len(kept)} of {len(tasks)} tasks on which a model of "
                f"N = {reference:,.0f}{where} beats chance by >= "
                f"{study.subset.threshold_points:g} points")


def _task_gaps(rows, err_rows, baselines) -> list[str]:
  """Notes naming the tasks some error-design run lacks: they leave the average."""
  measured = set(baselines) & set(runs_table.metric_names(rows, runs_table.ACC_PREFIX))
  line = task_subset.format_coverage(task_subset.task_coverage(err_rows, measured))
  return [f"task set shrunk: {line}"] if line else []


def designs(study, points) -> tuple[list[str], list[str], list[str]]:
  """(loss design, error design, targets), filling the defaults of empty fields."""
  targets = names(study.targets)
  target_keys = {parse_point(t) for t in targets}
  loss_design = names(study.loss_design) or [
      point_label(runs_table.run_key(r)) for r in points
      if runs_table.run_key(r) not in target_keys]
  return loss_design, names(study.err_design) or loss_design, targets


def _budget(study, target_rows, points) -> float:
  """study.budget_flops, else the largest target's compute (else the largest run's)."""
  if study.budget_flops:
    return float(study.budget_flops)
  return max(r["flops"] for r in (target_rows or points))


def _settings(study) -> fit_lib.FitSettings:
  settings = study.fit.to_dict()
  if isinstance(settings["bounds"], list):  # a ConfigDict may hand tuples back as lists
    settings["bounds"] = tuple(tuple(b) for b in settings["bounds"])
  return fit_lib.FitSettings(**settings)


def _fit_only(law, x, y, runs, study) -> fit_lib.FitResult:
  try:
    return fit_lib.fit(law, x, y, settings=_settings(study))
  except fit_lib.FitError as e:
    raise StudyError(f"fitting {law.formula} on runs {runs}: {e}") from None


def _fit_law(law, x, y, runs, study, method, noise_of=None) -> LawFit:
  """Fit and bootstrap; noise_of(result) gives the bootstrap's NoiseScale (or None)."""
  result = _fit_only(law, x, y, runs, study)
  try:
    noise = noise_of(result) if noise_of else None
    boot = bootstrap_lib.bootstrap(result, method=method,
                                   num_resamples=study.bootstrap.num_resamples,
                                   seed=study.bootstrap.seed, noise=noise)
  except ValueError as e:  # e.g. n = p: no residual scale to draw from
    raise StudyError(f"bootstrapping {law.formula} on runs {runs} "
                     f"(study.bootstrap.method={method!r}, "
                     f"noise={study.bootstrap.noise!r}): {e}") from None
  return LawFit(result, boot, list(runs))


def _eval_sigma(rows, val_set, ci_column):
  """Per-run evaluation noise of the loss (recorded 95% half-width / 1.96)."""
  key = f"{ci_column}/{val_set}"
  missing = [r["run"] for r in rows if key not in r]
  if missing:
    raise StudyError(f"study.bootstrap.noise='eval' / eval_floor need column {key!r} "
                     f"(the runs' recorded loss intervals); missing in {missing}")
  return np.array([r[key] for r in rows]) / 1.96


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
  return {d: point_rows(rs) for d, rs in sorted(others.items())}


def _pooled_fits(law, study, others, design, x_and_y) -> dict[str, fit_lib.FitResult]:
  """The same design fitted on each other dataset that has all of its points."""
  fits = {}
  for dataset, points in others.items():
    keys = {runs_table.run_key(p) for p in points}
    if all(parse_point(spec) in keys for spec in design):
      chosen = select_points(points, design)
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
  """A noise_of(result) for _fit_law, per config.study.bootstrap (fit_noise.choose).
  `recorded`: the chosen rows carry recorded evaluation noise (losses do; task
  averages do not)."""
  boot_cfg = study.bootstrap

  def noise_of(result):
    try:
      return fit_noise.choose(
          boot_cfg, result,
          seeds=lambda: fit_noise.seed_scale(_seed_groups(rows, chosen, value),
                                             [r["run"] for r in chosen]),
          pooled=lambda: fit_noise.pooled_scale(
              result, _pooled_fits(law, study, _other_datasets(rows, source_rows),
                                   design, x_and_y), study.dataset),
          eval_sigma=lambda: (_eval_sigma(chosen, study.val_set, boot_cfg.ci_column)
                              if recorded else None),
          eval_key=f"{boot_cfg.ci_column}/{study.val_set}")
    except fit_noise.NoiseSourceError as e:
      raise StudyError(str(e)) from None
  return noise_of


def fit(source_rows: Sequence[dict], task_baselines: dict, study) -> StudyFit:
  """Fits config.study's laws on the runs table's rows; see the module docstring."""
  check_study(study)
  rows = [r for r in source_rows if not study.dataset or r.get("dataset") == study.dataset]
  if not rows:
    raise StudyError(f"config field 'study.dataset' is {study.dataset!r}, but no run has "
                     f"that dataset; present: "
                     f"{sorted({str(r.get('dataset')) for r in source_rows})}")
  points = point_rows(rows)
  loss_design, err_design, targets = designs(study, points)
  loss_rows = select_points(points, loss_design)
  err_rows = select_points(points, err_design) if study.downstream != "none" else []
  tasks, task_rule = choose_tasks(study, source_rows, err_rows, task_baselines)
  notes = _task_gaps(rows, err_rows, task_baselines)
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
                            [loss_of(r, val_set) for r in chosen])
  loss = _fit_law(forms.OVERTRAINING, *loss_xy(loss_rows), [r["run"] for r in loss_rows],
                  study, boot_cfg.method,
                  _noise_of(study, rows, source_rows, forms.OVERTRAINING, loss_design,
                            loss_rows, loss_xy, lambda r: loss_of(r, val_set), True))
  error = None
  if tasks:
    no_err = [r["run"] for r in err_rows if "err" not in r]
    if no_err:
      raise StudyError(f"error-law design runs {no_err} lack accuracies for tasks {tasks}")
    err_xy = lambda chosen: (
        ({"L": [loss_of(r, val_set) for r in chosen]}, [r["err"] for r in chosen])
        if all("err" in r for r in chosen) else (None, None))
    error = _fit_law(forms.DOWNSTREAM, *err_xy(err_rows), [r["run"] for r in err_rows],
                     study, boot_cfg.method,
                     _noise_of(study, rows, source_rows, forms.DOWNSTREAM, err_design,
                               err_rows, _with_err(err_xy, tasks),
                               lambda r: task_subset.average_error(r, tasks), False))
  target_rows = [target_row(spec, points) for spec in targets]
  level = boot_cfg.level
  predicted_targets = predictions_lib.predict_targets(target_rows, val_set, loss, error,
                                                      level)
  notes += sorted({f"influences not computed: {t['influence_unavailable']}"
                   for t in predicted_targets if "influence_unavailable" in t})
  return StudyFit(
      rows=points, val_set=val_set, tasks=list(tasks), task_rule=task_rule, level=level,
      loss=loss, error=error,
      predictions=predictions_lib.predict_rows(points, val_set, loss, error, level),
      targets=predicted_targets,
      compute_optimal=predict_lib.compute_optimal(
          loss.result, loss.boot, _budget(study, target_rows, points), level),
      notes=notes)
