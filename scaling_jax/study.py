"""The project's own scaling study: train the sweep, fit both laws, write the report.

`run(config, workdir)` (job 'study'; notebooks call it too):
  1. trains every unfinished unit of `config.sweep` (scaling_jax.launch; finished
     units are skipped, so a second call trains nothing);
  2. reads the runs table under workdir/runs and keeps one row per 'model@M': each
     run's final row, averaged over seeds;
  3. fits Eq. 4 on config.study.loss_design and, when the runs carry task
     accuracies, Eq. 5 on config.study.err_design (scaling_jax.fit_study);
  4. predicts every run and the held-out targets with intervals and writes
     workdir/report/ (summary.md first; see scaling_jax.report.summary).

`fit(config, workdir)` does steps 2-4 alone, for a runs table that already exists.
"""
from __future__ import annotations

import collections
import hashlib
import io
import json
import logging
import os
import pathlib
import pickle
import time

import ml_collections
import numpy as np

from scaling_jax import fit_study
from scaling_jax import launch
from scaling_jax.runs import table as runs_table
from scaling_jax.evals import task_subset
from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms
from scaling_jax.report import outputs
from scaling_jax.report import plots
from scaling_jax.report import summary as summary_lib

DOWNSTREAM_RULES = ("subset", "all", "none")
FIT_CACHE = ".fit_cache.pkl"  # in workdir/report, written with the report
# The fit depends on these sources besides its inputs; an edit to them refits.
_FIT_SOURCES = ("fit_study.py", "laws/*.py")


class ConfigError(ValueError):
  """A config.study field is missing or wrong; the message names it and the fix."""


def default_study_config() -> ml_collections.ConfigDict:
  """config.study: what to fit on, what to predict, and how.

  Designs and targets name table rows as 'model@M' (model preset, tokens_per_param),
  e.g. 'tiny-0@20'. An empty loss_design means every run that is not a target; an
  empty err_design means the loss design.
  """
  study = ml_collections.ConfigDict()
  study.loss_design = []   # Eq. 4 fit set
  study.err_design = []    # Eq. 5 fit set
  study.targets = []       # held-out runs to predict ('model@M'), or 'N@M' unmeasured
  study.val_set = "validation"  # loss/<val_set> is the fitted loss
  # Which acc/<task> columns enter the average error: 'subset' (the paper's rule,
  # judged on fit-set runs only, so targets never choose their own tasks), 'all'
  # tasks with a known chance level, or 'none' (no error law).
  study.downstream = "subset"
  # Reference: the largest model of the error design ('' -> chosen automatically),
  # the only size with a chance of clearing chance on tiny models. 10 points as in
  # the paper: at 50 examples per task a chance-level accuracy of 0.25 has a
  # binomial standard error of 6 points, so fewer would admit noise.
  study.subset = ml_collections.ConfigDict(dict(reference_model="", threshold_points=10.0))
  study.fit = ml_collections.ConfigDict(dict(maxiter=100, tol=1e-10, robust=False,
                                             huber_delta=1e-3))
  study.bootstrap = ml_collections.ConfigDict(dict(
      method="residual", num_resamples=1000, seed=0, level=0.95, ci_column="loss_ci"))
  study.budget_flops = 0.0  # compute-optimal split at this C; 0: the largest target's
  # Reuse the last fit when the runs, these settings and the fitting code are
  # unchanged: a second call then only redraws the report (seconds, not a minute of
  # tracing and compiling the solver in a fresh process).
  study.reuse_fit = True
  return study


def _check(study) -> None:
  if study.downstream not in DOWNSTREAM_RULES:
    raise ConfigError(f"config field 'study.downstream' is {study.downstream!r}; use one "
                      f"of {DOWNSTREAM_RULES}")
  problem = bootstrap_lib.config_problem(study.bootstrap, "study.bootstrap")
  if problem:
    raise ConfigError(problem)


def study_config(config) -> ml_collections.ConfigDict:
  """config.study over the defaults, so a config may set only what it changes."""
  study = default_study_config()
  given = config.get("study")
  if given is not None:
    unknown = sorted(set(given.keys()) - set(study.keys()))
    if unknown:
      raise ConfigError(f"config.study has unknown field(s) {unknown}; known: "
                        f"{sorted(study.keys())}")
    study.update(given.to_dict() if hasattr(given, "to_dict") else dict(given))
  _check(study)
  return study


def _spec(row) -> str:
  return f"{row.get('model')}@{row['M']:g}"


def _mean_row(group: list[dict]) -> dict:
  """Seeds of one 'model@M' as one row: metrics averaged, loss intervals combined."""
  if len(group) == 1:
    return dict(group[0], seeds=1)
  row = dict(group[0], run=_spec(group[0]), seeds=len(group),
             final=all(r["final"] for r in group))
  for key in {k for r in group for k in r if k.startswith(
      (runs_table.LOSS_PREFIX, runs_table.ACC_PREFIX, runs_table.LOSS_CI_PREFIX))}:
    values = np.array([r.get(key, np.nan) for r in group], float)
    if key.startswith(runs_table.LOSS_CI_PREFIX):
      row[key] = float(np.sqrt(np.sum(values**2)) / len(values))  # of the mean
    else:
      row[key] = float(np.mean(values))
  return row


def study_rows(rows) -> list[dict]:
  """One row per 'model@M': final rows of its runs, averaged over seeds."""
  groups = collections.defaultdict(list)
  for row in runs_table.final_rows(rows):
    groups[_spec(row)].append(row)
  return [_mean_row(sorted(g, key=lambda r: r["run"])) for _, g in sorted(groups.items())]


def task_baselines(config) -> dict[str, float]:
  """Chance accuracy of each ICL task the config's evaluators score."""
  from scaling_jax.evals.icl import generators  # pylint: disable=g-import-not-at-top
  from scaling_jax.evals.icl import suite  # pylint: disable=g-import-not-at-top
  evals = config.get("evals") or {}
  entries = evals.values() if hasattr(evals, "values") else evals
  baselines = {}
  for entry in entries:
    if entry.get("kind") != "icl":
      continue
    tasks = entry.get("tasks")
    if entry.get("suite", "embedded") == "embedded":
      specs = generators.embedded_specs(tasks)
    else:
      specs = suite.select_tasks(suite.load_icl_tasks(
          entry.suite, entry.get("metadata_csv"), entry.get("data_root")), tasks)
    baselines.update(suite.random_baselines(specs))
  return baselines


def _reference_params(study, fit_rows) -> float:
  """N of study.subset.reference_model, else of the largest error-design model."""
  if not study.subset.reference_model:
    return max(r["N"] for r in fit_rows)
  sizes = [r["N"] for r in fit_rows if r.get("model") == study.subset.reference_model]
  if not sizes:
    raise ConfigError(f"config field 'study.subset.reference_model' is "
                      f"{study.subset.reference_model!r}, but no run of the error design "
                      f"{sorted({_spec(r) for r in fit_rows})} has that model")
  return sizes[0]


def choose_tasks(study, rows, err_design, baselines) -> tuple[list[str], str]:
  """The tasks averaged into the error, and one line saying how they were chosen.

  Only the error design's runs are consulted, so a target never picks its own tasks.
  """
  if study.downstream == "none" or not baselines:
    return [], "no downstream tasks" + ("" if baselines else " in config.evals")
  fit_rows = [r for r in rows if _spec(r) in set(err_design)]
  tasks = task_subset.common_tasks(fit_rows, baselines) if fit_rows else []
  if study.downstream == "all" or not tasks:
    return tasks, f"all {len(tasks)} tasks with a chance level"
  reference = _reference_params(study, fit_rows)
  kept = task_subset.select_tasks(fit_rows, baselines, reference_params=reference,
                                  threshold_points=study.subset.threshold_points)
  return kept, (f"{len(kept)} of {len(tasks)} tasks on which a model of "
                f"N = {reference:,.0f} beats chance by >= "
                f"{study.subset.threshold_points:g} points")


def designs(study, rows) -> tuple[list[str], list[str], list[str]]:
  """(loss design, error design, targets), filling the defaults of empty fields."""
  targets = list(study.targets)
  loss_design = list(study.loss_design) or [_spec(r) for r in rows
                                            if _spec(r) not in targets]
  return loss_design, list(study.err_design) or loss_design, targets


def _budget(study, rows, targets) -> float:
  """study.budget_flops, else the largest target's compute (else the largest run's)."""
  if study.budget_flops:
    return float(study.budget_flops)
  chosen = [r for r in rows if _spec(r) in targets] or rows
  return max(r["flops"] for r in chosen)


class _LawPickler(pickle.Pickler):
  """Stores laws by name: code tests them by identity (`law is forms.OVERTRAINING`)."""

  def persistent_id(self, obj):
    return obj.name if isinstance(obj, forms.Law) else None


class _LawUnpickler(pickle.Unpickler):

  def persistent_load(self, pid):
    return forms.get_law(pid)


def fit_key(rows, study, tasks) -> str:
  """Hash of everything the fit depends on: rows, settings, tasks, fitting code."""
  digest = hashlib.sha256(json.dumps(
      [rows, study.to_dict(), tasks, outputs.package_versions()], sort_keys=True,
      default=str).encode())
  package = pathlib.Path(__file__).parent
  for pattern in _FIT_SOURCES:
    for path in sorted(package.glob(pattern)):
      digest.update(path.read_bytes())
  return digest.hexdigest()


def _cached_fit(path: pathlib.Path, key: str) -> fit_study.StudyFit | None:
  try:
    with path.open("rb") as f:
      cached = _LawUnpickler(f).load()
  except FileNotFoundError:
    return None
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("ignoring unreadable fit cache %s (%s); fitting afresh", path, e)
    return None
  return cached["study"] if cached.get("key") == key else None


def _pickled(key: str, result: fit_study.StudyFit) -> bytes:
  buffer = io.BytesIO()
  _LawPickler(buffer).dump({"key": key, "study": result})
  return buffer.getvalue()


def fit(config, workdir, *, train_seconds: float | None = None) -> fit_study.StudyFit:
  """Fits the runs table under workdir/runs and writes workdir/report/."""
  start = time.time()
  study = study_config(config)
  runs_dir = pathlib.Path(workdir) / "runs"
  all_rows = runs_table.read_rows(runs_dir)
  rows = study_rows(all_rows)
  if not rows:
    raise fit_study.StudyError(f"no runs under {runs_dir}; train them first")
  loss_design, err_design, targets = designs(study, rows)
  tasks, task_rule = choose_tasks(study, rows, err_design, task_baselines(config))
  report_dir = pathlib.Path(workdir) / "report"
  key = fit_key(rows, study, tasks)
  result = _cached_fit(report_dir / FIT_CACHE, key) if study.reuse_fit else None
  context = {"workdir": str(workdir), "num_runs": len({r["run"] for r in all_rows}),
             "num_rows": len(all_rows), "task_rule": task_rule,
             "unfinished": [r["run"] for r in rows if not r["final"]],
             "train_seconds": train_seconds, "reused_fit": result is not None}
  if result is None:
    logging.info("fitting %d runs (%d tasks: %s)", len(rows), len(tasks), task_rule)
    result = fit_study.fit_study(
        rows, val_set=study.val_set, tasks=tasks, loss_design=loss_design,
        err_design=err_design if tasks else [], targets=targets,
        fit_settings=fit_lib.FitSettings(**study.fit.to_dict()),
        boot_cfg=study.bootstrap.to_dict(),
        budget_flops=_budget(study, rows, targets))
  with outputs.staged_outputs(report_dir) as staging:
    (staging / FIT_CACHE).write_bytes(_pickled(key, result))
    outputs.write_fit_json(staging / "fit.json", outputs.fit_summary(
        result, {"workdir": str(workdir), "task_rule": task_rule}))
    outputs.write_predictions_csv(staging / "predictions.csv", result.predictions)
    plots.write_all(result, staging, names=tuple(plots.PLOTS))
    context["fit_seconds"] = time.time() - start  # everything but writing summary.md
    (staging / "summary.md").write_text(summary_lib.render(result, context),
                                        encoding="utf-8")
  print(f"wrote {report_dir}/summary.md ({time.time() - start:.1f}s)")
  return result


def _train(config, workdir) -> bool:
  """Trains what is missing; False when the launcher only listed the units."""
  launch.run(config, workdir)
  return not (config.get("launch") or {}).get("dry_run", False)


def run(config, workdir) -> fit_study.StudyFit | None:
  """Trains the unfinished units, fits, and writes workdir/report/ (None on a dry run)."""
  study_config(config)  # a bad study field fails before any training
  start = time.time()
  if not _train(config, os.fspath(workdir)):
    return None
  return fit(config, workdir, train_seconds=time.time() - start)
