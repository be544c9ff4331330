"""Design points: the runs table's final rows as one row per (model, M), and the
'model@M' / 'N@M' names a study's designs and targets are written in.

A design point is every seed of one (model, M) averaged: a fit sees the mean of the
seeds (with the loss interval of that mean), never the seeds as separate points.
"""
from __future__ import annotations

import collections
from typing import Sequence

import numpy as np

from scaling_jax.fitting import StudyError
from scaling_jax.runs import table as runs_table


def default_config() -> dict:
  """The final-point fit's designs and targets, top-level fields of config.study.

  Comma-separated strings (so a flag can set them, e.g.
  --config.study.targets=tiny-3@20,tiny-2@80) naming design points as 'model@M'
  (the runs' model name and tokens per parameter); a target not in the table is
  'N@M' (parameters and multiplier, e.g. '6889410560@20'). An empty loss_design
  means every point that is not a target; an empty err_design means the loss
  design. Curve fits name runs instead, in config.study.curves.
  """
  return dict(loss_design="",  # Eq. 4 fit set
              err_design="",   # Eq. 5 fit set
              targets="")      # points to predict


def check(study) -> None:
  """Every design and target name parses ('model@M' or 'N@M')."""
  for spec in names(study.loss_design) + names(study.err_design) + names(study.targets):
    parse_point(spec)


def of_dataset(rows: Sequence[dict], dataset: str) -> list[dict]:
  """The rows of `dataset` (config.study.dataset; '' -> every row)."""
  return [r for r in rows if not dataset or r.get("dataset") == dataset]


def names(value) -> list[str]:
  """A comma-separated string (or a list, from Python) as a list of names."""
  if isinstance(value, str):
    return [v.strip() for v in value.split(",") if v.strip()]
  return [str(v) for v in value or ()]


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


def designs(study, points) -> tuple[list[str], list[str], list[str]]:
  """(loss design, error design, targets), filling the defaults of empty fields."""
  targets = names(study.targets)
  target_keys = {parse_point(t) for t in targets}
  loss_design = names(study.loss_design) or [
      point_label(runs_table.run_key(r)) for r in points
      if runs_table.run_key(r) not in target_keys]
  return loss_design, names(study.err_design) or loss_design, targets
