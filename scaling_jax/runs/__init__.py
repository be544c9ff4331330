"""The runs table and its sources: what every study fits, wherever the runs came from.

  runs = runs.load(config, workdir)   # rows + task chance levels + notes

`config.runs.source` picks the source:
  own             this project's training: every records.jsonl under `path`
                  ('' -> WORKDIR/runs, where the study's sweep trains)
  openlm_testbed  the released over-training testbed (Gadre et al. 2024) in
                  `path` (models/, evals/, eval_metadata.csv)
  csv             a training log of any framework (.csv or .jsonl, one row per
                  run and checkpoint) at `path`, read through the column mapping
                  of config.runs.csv (runs/csv_logs.py)
  wandb           a Weights & Biases project, `path` 'entity/project' (or its
                  export, a .json file), each run's config and history read
                  through the same mapping (runs/wandb_runs.py)

Every source yields rows of the runs table (see runs/table.py) and the chance
accuracy of each downstream task it measured, so the fit never asks where rows
came from. Sources are imported only when chosen, and this file imports nothing
at module level, so `from scaling_jax.runs import table` stays light.
"""
from __future__ import annotations

import os

from scaling_jax.runs.common import Runs, RunsError  # noqa: F401

SOURCES = ("own", "openlm_testbed", "csv", "wandb")


def default_runs_config():
  """`config.runs`: where the study's rows come from."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from scaling_jax.runs import csv_logs  # pylint: disable=g-import-not-at-top
  from scaling_jax.runs import wandb_runs  # pylint: disable=g-import-not-at-top
  return ml_collections.ConfigDict(dict(
      source="own",  # one of SOURCES
      # own: '' -> WORKDIR/runs; openlm_testbed: the released folder; csv: the log;
      # wandb: 'entity/project' or an export .json
      path="",
      csv=csv_logs.default_csv_config(),  # sources 'csv', 'wandb': the column mapping
      wandb=wandb_runs.default_wandb_config(),  # source 'wandb': what to download
  ))


def load(config, workdir) -> Runs:
  """The rows of `config.runs.source` (see the module docstring)."""
  from scaling_jax import config_fields  # pylint: disable=g-import-not-at-top
  source, path = config.runs.source, config.runs.path
  config_fields.require_choice("runs.source", source, SOURCES, RunsError)
  if source == "own":
    from scaling_jax.runs import own_runs  # pylint: disable=g-import-not-at-top
    return own_runs.load(path or os.path.join(os.fspath(workdir), "runs"), config.evals)
  if source == "openlm_testbed":
    if not path:
      raise RunsError("config field 'runs.path' is empty: pass --config.runs.path=DIR "
                      "(e.g. ../shared/data/openlm_testbed)")
    if not os.path.isdir(path):
      raise RunsError(f"config field 'runs.path' is {path!r}, which is not a directory; "
                      f"pass the released testbed folder (exp_data/ of "
                      f"github.com/mlfoundations/scaling, with models/, evals/ and "
                      f"eval_metadata.csv), e.g. ../shared/data/openlm_testbed")
    return _testbed(path, config.study.dataset)
  if source == "csv":
    if not path:
      raise RunsError("config field 'runs.path' is empty: pass --config.runs.path=FILE "
                      "(a .csv or .jsonl training log)")
    from scaling_jax.runs import csv_logs  # pylint: disable=g-import-not-at-top
    return csv_logs.load(path, config.runs.csv)
  if source == "wandb":
    if not path:
      raise RunsError("config field 'runs.path' is empty: pass --config.runs.path="
                      "ENTITY/PROJECT (a W&B project) or an export .json file")
    from scaling_jax.runs import wandb_runs  # pylint: disable=g-import-not-at-top
    return wandb_runs.load(path, config.runs)
  raise AssertionError(f"runs.source {source!r} is checked above")


def _testbed(path, dataset: str) -> Runs:
  """The released folder; notes name the eval files and tasks the chosen training
  set's models lack (gaps in other training sets change nothing and go unsaid)."""
  # pylint: disable=g-import-not-at-top
  from scaling_jax.runs import openlm_testbed
  from scaling_jax.runs import table as runs_table
  info = openlm_testbed.load_task_info(path)
  rows = openlm_testbed.load_rows(path)
  measured = set(info) & set(runs_table.metric_names(rows, runs_table.ACC_PREFIX))
  chosen = [r for r in rows if not dataset or r.get("dataset") == dataset]
  return Runs(rows=rows, task_baselines={n: t.random_baseline for n, t in info.items()},
              where=str(path),
              notes=openlm_testbed.eval_coverage(chosen, measured).lines())
