"""Which downstream tasks to average, and the averages themselves, from the runs table.

The paper's rule (Gadre et al. 2024, Sec. 3): keep the tasks on which at least one
model of a reference size is `threshold` or more points above chance; a task where
even those models sit at chance only adds noise to an error law. Works on any rows
that carry acc/<task> columns, released or trained here.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from scaling_jax.runs import table as runs_table


def common_tasks(rows: Iterable[dict], baselines: Mapping[str, float]) -> list[str]:
  """Tasks with a known chance level that every row reports."""
  rows = list(rows)
  tasks = set(baselines)
  for row in rows:
    tasks &= {k[len(runs_table.ACC_PREFIX):] for k in row if k.startswith(runs_table.ACC_PREFIX)}
  return sorted(tasks)


def select_tasks(rows: Iterable[dict], baselines: Mapping[str, float], *,
                 reference_params: float, threshold_points: float = 10.0,
                 rel_tolerance: float = 0.01) -> list[str]:
  """Tasks where a model with N ~ reference_params beats chance by >= threshold points.

  `baselines` maps task -> chance accuracy in [0, 1]. Models within rel_tolerance of
  reference_params count as the reference size.
  """
  rows = list(rows)
  tasks = common_tasks(rows, baselines)
  reference = [r for r in rows
               if abs(r["N"] - reference_params) <= rel_tolerance * reference_params]
  if not reference:
    sizes = sorted({r["N"] for r in rows})
    raise ValueError(f"no model has N within {rel_tolerance:.0%} of {reference_params:g}; "
                     f"sizes present: {sizes}")
  keep = []
  for task in tasks:
    best = max(r[runs_table.ACC_PREFIX + task] for r in reference)
    if 100 * (best - baselines[task]) >= threshold_points:
      keep.append(task)
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
