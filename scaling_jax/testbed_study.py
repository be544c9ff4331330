"""The released-testbed study: import, fit both laws, predict, write the report.

`run(config, workdir)` writes workdir/fit.json, workdir/predictions.csv and the plots
(see scaling_jax.report.plots); configs/testbed.py documents the fields.
"""
from __future__ import annotations

import logging
import pathlib
import time

from scaling_jax import fit_study
from scaling_jax.evals import task_subset
from scaling_jax.runs import openlm_testbed
from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import fit as fit_lib
from scaling_jax.report import outputs
from scaling_jax.report import plots


class ConfigError(ValueError):
  """A config field is missing or wrong; the message names it and the fix."""


def _check_config(config) -> None:
  if not config.testbed_dir:
    raise ConfigError("config field 'testbed_dir' is empty: pass "
                      "--config.testbed_dir=PATH (e.g. ../shared/data/openlm_testbed)")
  if config.downstream not in ("subset", "all"):
    raise ConfigError(f"config field 'downstream' is {config.downstream!r}; "
                      "use 'subset' or 'all'")
  problem = bootstrap_lib.config_problem(config.bootstrap, "bootstrap")
  if problem:
    raise ConfigError(problem)


def choose_tasks(config, rows, task_info) -> list[str]:
  baselines = {name: info.random_baseline for name, info in task_info.items()}
  if config.downstream == "all":
    return task_subset.common_tasks(rows, baselines)
  return task_subset.select_tasks(rows, baselines,
                                  reference_params=config.subset.reference_params,
                                  threshold_points=config.subset.threshold_points)


def run(config, workdir) -> fit_study.StudyFit:
  """Fits the testbed as `config` says and writes the report into `workdir`."""
  _check_config(config)
  start = time.time()
  rows = openlm_testbed.load_rows(config.testbed_dir)
  tasks = choose_tasks(config, rows, openlm_testbed.load_task_info(config.testbed_dir))
  train_rows = [r for r in rows if r["dataset"] == config.train]
  if not train_rows:
    raise ConfigError(f"config field 'train' is {config.train!r}, but no model in "
                      f"{config.testbed_dir} has that dataset_name; present: "
                      f"{sorted({r['dataset'] for r in rows})}")
  logging.info("fitting %d %s models (%d downstream tasks)", len(train_rows), config.train,
               len(tasks))
  study = fit_study.fit_study(
      train_rows, val_set=config.val_set, tasks=tasks, loss_design=list(config.loss_design),
      err_design=list(config.err_design), targets=list(config.targets),
      fit_settings=fit_lib.FitSettings(**config.fit.to_dict()),
      boot_cfg=config.bootstrap.to_dict(), budget_flops=config.budget_flops)
  summary = outputs.fit_summary(study, {"train": config.train,
                                        "testbed_dir": str(pathlib.Path(config.testbed_dir)),
                                        "downstream": config.downstream})
  with outputs.staged_outputs(workdir) as staging:
    outputs.write_fit_json(staging / "fit.json", summary)
    outputs.write_predictions_csv(staging / "predictions.csv", study.predictions)
    plots.write_all(study, staging)
  print(format_summary(study, workdir, time.time() - start))
  return study


def format_summary(study: fit_study.StudyFit, workdir, seconds: float) -> str:
  """A few lines for the console: both laws with intervals and the targets."""
  pct = f"{study.level:.0%}"
  lines = [f"wrote {workdir}/fit.json, predictions.csv and plots in {seconds:.1f}s"]
  for label, law_fit in (("loss", study.loss), ("error", study.error)):
    if law_fit is None:
      continue
    params = ", ".join(f"{n}={v['value']:.4g} [{v['lo']:.4g}, {v['hi']:.4g}]"
                       for n, v in law_fit.param_intervals(study.level).items())
    lines.append(f"{label} law {law_fit.result.law.formula}: {params} ({pct} intervals)")
  for t in study.targets:
    line = (f"target {t['run']}: loss {t['loss_pred']:.4f} "
            f"[{t['loss_lo']:.4f}, {t['loss_hi']:.4f}]")
    if "err_pred" in t:
      line += f", error {t['err_pred']:.4f} [{t['err_lo']:.4f}, {t['err_hi']:.4f}]"
    lines.append(line)
  return "\n".join(lines)
