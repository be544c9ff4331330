"""The project's own runs: every records.jsonl its trainer wrote below one folder.

Task chance levels come from the ICL evaluators of `config.evals`, the same ones
that scored the runs, so a run's acc/<task> columns and their baselines agree.
"""
from __future__ import annotations

import pathlib

from scaling_jax.runs import common
from scaling_jax.runs import table as runs_table


def task_baselines(evals_config) -> dict[str, float]:
  """Chance accuracy of each ICL task the `config.evals` entries score."""
  # pylint: disable=g-import-not-at-top
  from scaling_jax.evals.icl import generators
  from scaling_jax.evals.icl import suite
  entries = evals_config.values() if hasattr(evals_config, "values") else evals_config
  baselines = {}
  for entry in entries or ():
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


def load(runs_dir, evals_config) -> common.Runs:
  runs_dir = pathlib.Path(runs_dir)
  if not runs_dir.is_dir():
    raise common.RunsError(f"no runs under {runs_dir}: train them first (a config with "
                         f"config.sweep) or point --config.runs.path at a runs folder")
  rows = runs_table.read_rows(runs_dir)
  if not rows:
    raise common.RunsError(f"no runs under {runs_dir} (no records.jsonl with rows): "
                         f"train them first")
  return common.Runs(rows=rows, task_baselines=task_baselines(evals_config),
                   where=str(runs_dir))
