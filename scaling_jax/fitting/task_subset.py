"""Which downstream tasks to average, and the averages themselves, from the runs table.

The paper's rule (Gadre et al. 2024, Sec. 3): keep the tasks on which at least one
model of a reference size is `threshold` or more points above chance; a task where
even those models sit at chance only adds noise to an error law. Works on any rows
that carry acc/<task> columns, released or trained here.

Only tasks every row reports are averaged, so a run lacking a task removes it for
all: `task_coverage` names such tasks with the runs lacking them (for the console
and the report), and `common_tasks` logs a warning, so the set never shrinks
silently. Pass the rows you fit (not a whole directory), so gaps elsewhere do not
count.
"""
from __future__ import annotations

import logging
from typing import Iterable, Mapping, Sequence

import numpy as np

from scaling_jax import config_fields
from scaling_jax.fitting import StudyError
from scaling_jax.runs import table as runs_table


def _reported(row: dict) -> set[str]:
  return {k[len(runs_table.ACC_PREFIX):] for k in row if k.startswith(runs_table.ACC_PREFIX)}


def task_coverage(rows: Iterable[dict], tasks: Iterable[str]) -> dict[str, list[str]]:
  """{task: runs lacking it} for each of `tasks` that some row lacks.

  `tasks` are those every row should report: for own runs the configured tasks
  (the baselines' keys); for a released directory, the baselines' tasks that some
  run of the whole directory reports, so a task one training set lacks throughout
  is named too: set(baselines) & set(runs_table.metric_names(all_rows, ACC_PREFIX)).
  """
  reported = [(str(r.get("run")), _reported(r)) for r in rows]
  return {task: lacking for task in sorted(set(tasks))
          if (lacking := [run for run, have in reported if task not in have])}


def _first(names: Sequence[str], limit: int) -> str:
  more = f" and {len(names) - limit} more" if len(names) > limit else ""
  return ", ".join(names[:limit]) + more


def format_coverage(coverage: Mapping[str, Sequence[str]], limit: int = 8) -> str:
  """One line naming the dropped tasks and the runs lacking them; '' when none.

  Tasks lacked by the same runs share one clause; each list names at most `limit`.
  """
  if not coverage:
    return ""
  groups: dict[tuple[str, ...], list[str]] = {}
  for task, runs in coverage.items():
    groups.setdefault(tuple(runs), []).append(task)
  parts = [f"{_first(tasks, limit)} (missing in {_first(runs, limit)})"
           for runs, tasks in groups.items()]
  return (f"dropped {len(coverage)} task(s) that some fit runs lack: "
          + "; ".join(parts))


def common_tasks(rows: Iterable[dict], baselines: Mapping[str, float]) -> list[str]:
  """Tasks with a known chance level that every row reports (a warning names the rest)."""
  rows = list(rows)
  tasks = set(baselines)
  for row in rows:
    tasks &= _reported(row)
  # Tasks some but not all rows report; the caller can name more with task_coverage.
  dropped = task_coverage(rows, set(baselines) & set().union(*map(_reported, rows)))
  if dropped:
    logging.warning("%s", format_coverage(dropped))
  return sorted(tasks)


def tasks_above_chance(rows: Iterable[dict], baselines: Mapping[str, float], *,
                 reference_params: float, threshold_points: float = 10.0,
                 rel_tolerance: float = 0.01,
                 reference_rows: Iterable[dict] | None = None) -> list[str]:
  """Tasks where a model with N ~ reference_params beats chance by >= threshold points.

  `baselines` maps task -> chance accuracy in [0, 1]. Candidates are the tasks every
  row of `rows` (the fit rows) reports. The reference models, those within
  rel_tolerance of reference_params, are sought in `reference_rows` (default: `rows`),
  e.g. every training set's, as the paper does; for each task the best of those
  that report it counts, and a task none of them reports is dropped with a warning.
  """
  rows = list(rows)
  candidates = list(rows) if reference_rows is None else list(reference_rows)
  tasks = common_tasks(rows, baselines)
  reference = [r for r in candidates
               if abs(r["N"] - reference_params) <= rel_tolerance * reference_params]
  if not reference:
    sizes = sorted({r["N"] for r in candidates})
    raise ValueError(f"no model has N within {rel_tolerance:.0%} of {reference_params:g}; "
                     f"sizes present: {sizes}")
  keep, unjudged = [], []
  for task in tasks:
    accs = [r[runs_table.ACC_PREFIX + task] for r in reference
            if runs_table.ACC_PREFIX + task in r]
    if not accs:
      unjudged.append(task)
    elif 100 * (max(accs) - baselines[task]) >= threshold_points:
      keep.append(task)
  if unjudged:
    logging.warning("dropped task(s) %s: no model with N ~ %g reports them",
                    unjudged, reference_params)
  return keep


def average_error(row: dict, tasks: Iterable[str]) -> float:
  """Mean top-1 error (1 - accuracy) of one row over `tasks`."""
  tasks = list(tasks)
  if not tasks:
    raise ValueError("cannot average the error over an empty task list")
  missing = [t for t in tasks if runs_table.ACC_PREFIX + t not in row]
  if missing:
    raise ValueError(f"run {row.get('run')!r} has no accuracy for task(s) {missing}")
  return float(np.mean([1.0 - row[runs_table.ACC_PREFIX + t] for t in tasks]))


def error_eval_sd(row: dict, tasks: Iterable[str]) -> float | None:
  """The evaluation noise of `average_error(row, tasks)`: the binomial sd of each
  task's accuracy on its acc_n/<task> examples, averaged over the tasks,
  sqrt(sum_t a_t (1 - a_t) / n_t) / T. None when some task's count is not recorded
  (released tables carry accuracies only)."""
  tasks = list(tasks)
  counts = [row.get(runs_table.ACC_COUNT_PREFIX + t) for t in tasks]
  if not tasks or any(not n for n in counts):
    return None
  accs = np.array([row[runs_table.ACC_PREFIX + t] for t in tasks], np.float64)
  variance = np.sum(accs * (1.0 - accs) / np.asarray(counts, np.float64))
  return float(np.sqrt(variance) / len(tasks))


DOWNSTREAM_RULES = ("subset", "all", "none")
TASK_POOLS = ("err_design", "source")


def default_config() -> dict:
  """config.study.downstream and config.study.subset."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  return dict(
      # Which acc/<task> columns enter the average error: 'subset' (the paper's
      # rule), 'all' tasks with a known chance level, or 'none' (no error law).
      downstream="subset",
      # The subset rule keeps tasks on which a run of the reference model beats
      # chance by threshold_points. reference_model '' -> the largest model of the
      # error design. pool: the runs consulted, 'err_design' (so a target never
      # picks its own tasks) or 'source' (every run the source holds, all datasets:
      # the paper's rule on its released testbed). 10 points as in the paper: at 50
      # examples per task a chance accuracy of 0.25 has a binomial standard error
      # of 6 points.
      subset=ml_collections.ConfigDict(dict(
          reference_model="", threshold_points=10.0, pool="err_design")))


def check(study) -> None:
  config_fields.require_choice("study.downstream", study.downstream, DOWNSTREAM_RULES,
                               StudyError)
  config_fields.require_choice("study.subset.pool", study.subset.pool, TASK_POOLS,
                               StudyError)


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
  tasks = common_tasks(err_rows, baselines) if err_rows else []
  if study.downstream == "all" or not tasks:
    return tasks, f"all {len(tasks)} tasks with a chance level"
  pool = err_rows if study.subset.pool == "err_design" else runs_table.final_rows(source_rows)
  reference = _reference_params(study, pool)
  kept = tasks_above_chance(err_rows, baselines, reference_params=reference,
                                  threshold_points=study.subset.threshold_points,
                                  reference_rows=pool)
  where = "" if study.subset.pool == "err_design" else " (any run of the source)"
  return kept, (f"{len(kept)} of {len(tasks)} tasks on which a model of "
                f"N = {reference:,.0f}{where} beats chance by >= "
                f"{study.subset.threshold_points:g} points")


def task_gaps(rows, err_rows, baselines) -> list[str]:
  """Notes naming the tasks some error-design run lacks: they leave the average."""
  measured = set(baselines) & set(runs_table.metric_names(rows, runs_table.ACC_PREFIX))
  line = format_coverage(task_coverage(err_rows, measured))
  return [f"task set shrunk: {line}"] if line else []
