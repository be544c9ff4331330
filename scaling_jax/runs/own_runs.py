"""The project's own runs: every records.jsonl its trainer wrote below one folder.

Runs that diverged (runs/table.py) are left out, with a note for the report.

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
  rows, diverged = runs_table.split_diverged(runs_table.read_rows(runs_dir))
  notes = [diverged_note(diverged, runs_dir)] if diverged else []
  if not rows:
    raise common.RunsError(f"no runs under {runs_dir} (no records.jsonl with rows "
                           f"of a run that did not diverge): train them first"
                           + "".join(f"; {n}" for n in notes))
  return common.Runs(rows=rows, task_baselines=task_baselines(evals_config),
                     where=str(runs_dir), notes=notes)


def diverged_note(diverged: dict[str, dict], runs_dir) -> str:
  """One line naming each diverged run and where it diverged."""
  runs = ", ".join(f"{run} (at step {r['step']}, {r['tokens']:.3g} tokens)"
                   for run, r in sorted(diverged.items()))
  return (f"{len(diverged)} run(s) diverged (non-finite training loss) and are left "
          f"out of the fits: {runs}. They count as finished: to retrain one (e.g. "
          f"with a lower config.optim.peak_lr), move its folder out of {runs_dir}")
