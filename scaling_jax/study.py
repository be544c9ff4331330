"""The one study flow: `run(config, workdir)`, from the command line or a notebook.

  [train the sweep]   when config.sweep has units (scaling_jax.launch: finished
                      units are skipped, killed ones resume from checkpoints)
  rows = runs.load    config.runs: own runs under WORKDIR/runs, or the released
                      testbed (scaling_jax.runs)
  fit  = fitting       config.study: designs, seed means, task subset, both laws,
                      predictions with intervals, influences, compute-optimal M*
  report.write        WORKDIR/report/: summary.md, fit.json, predictions.csv, plots

A second call with unchanged runs and settings trains nothing and reuses the fit
(config.study.reuse_fit), so it only redraws the report.
"""
from __future__ import annotations

import logging
import os
import pathlib
import tempfile
import time

from scaling_jax import refusals
from scaling_jax import report
from scaling_jax import runs as runs_lib
from scaling_jax.fitting import advice
from scaling_jax.fitting import curves
from scaling_jax.fitting import points
from scaling_jax.fitting import run_selection
from scaling_jax.fitting import settings as fitting_settings
from scaling_jax.fitting import study_fit
from scaling_jax.laws import sanity
from scaling_jax.report import fit_cache
from scaling_jax.report import headlines


def _train(config, workdir) -> bool:
  """Trains what is missing; False when the launcher only listed the units."""
  from scaling_jax import launch  # pylint: disable=g-import-not-at-top
  launch.run(config, workdir)
  return not config.launch.dry_run


def _flag_fits(fit: study_fit.StudyFit) -> None:
  """Notes for every law that did not converge or contradicts its own premise.

  The fit stands (a reader may still want it), but no output presents it plainly.
  """
  for label, law_fit in (("loss law", fit.loss), ("error law", fit.error)):
    if law_fit is None:
      continue
    if not law_fit.result.converged:
      fit.notes.append(f"{label}: the solver did not converge within "
                       f"study.fit.maxiter={law_fit.result.settings.maxiter} iterations; "
                       f"its parameters and intervals are not a least-squares fit")
    if law_fit.boot.calibration:
      fit.notes.append(f"{label}: {law_fit.boot.calibration}")
    share = law_fit.boot.converged_fraction
    if share < 0.95:
      fit.notes.append(f"{label}: only {share:.0%} of the bootstrap resamples converged; "
                       f"the intervals are unreliable (raise study.fit.maxiter)")
    warnings = sanity.premise_warnings(law_fit.result)
    fit.notes += [f"{label}: {w}" for w in warnings]
    if warnings:  # point at the data: the run the law fits worst
      residuals = law_fit.result.residuals()
      worst = int(abs(residuals).argmax())
      fit.notes.append(
          f"{label}: check its design runs; the worst fitted is {law_fit.runs[worst]} "
          f"(measured {law_fit.result.y[worst]:.4g}, fitted "
          f"{law_fit.result.y[worst] + residuals[worst]:.4g})")


def _optional(fit, label: str, fallback, compute, *args):
  """`compute(*args)`, or `fallback` with a note on the fit when it fails with a bug.

  The parts of a report beyond the laws and their predictions are extras: a bug in
  one must not cost the user a finished study. A refusal of their input is still a
  refusal (said before any compute where it can be: settings.check).
  """
  try:
    return compute(*args)
  except Exception as e:  # pylint: disable=broad-except
    if refusals.is_refusal(e):
      raise
    logging.exception("%s failed", label)
    fit.notes.append(f"{label} is left out: it failed with an internal error "
                     f"({type(e).__name__}: {e}); the rest of the report stands. Please "
                     f"report it with the log")
    return fallback


def fit_and_report(config, workdir, *, train_seconds: float | None = None
                   ) -> study_fit.StudyFit:
  """Reads the runs, fits config.study and writes WORKDIR/report/."""
  started = time.time()
  report_dir = pathlib.Path(workdir) / "report"
  # A report killed mid-swap is made whole first, so its fit cache is found.
  report.staging.recover(report_dir)
  source = runs_lib.load(config, workdir)
  for note in source.notes:  # said now: a refusal below may follow from them
    print(f"WARNING: {note}")
  advice.check_models(config.study.advise, {str(r.get("model")) for r in source.rows},
                      f"the runs of {source.where}")
  key = fit_cache.key(source.rows, source.task_baselines, config.study)
  fit = (fit_cache.load(report_dir / fit_cache.FILENAME, key)
         if config.study.reuse_fit else None)
  reused = fit is not None
  if fit is None:
    logging.info("fitting %d rows from %s", len(source.rows), source.where)
    # Curve fits when the study names or selects runs in study.curves.
    fit_rows = (curves.fit if run_selection.requested(config.study.curves)
                else study_fit.fit)
    fit = fit_rows(source.rows, source.task_baselines, config.study)
    fit.notes = list(source.notes) + fit.notes
    if isinstance(fit, study_fit.StudyFit):
      _flag_fits(fit)
      loss_design, _, targets = points.designs(config.study, fit.rows)
      fit.checkpoint_fit, fit.checkpoint_fit_note = _optional(
          fit, "the all-checkpoint comparison", (None, "it failed"), curves.beside_final,
          source.rows, config.study, loss_design, targets)
      if config.study.advise.budget_flops:
        fit.advice = _optional(fit, "the advice", None, advice.advise, config.study, fit)
      if config.study.retrospective.enabled:
        fit.retrospective = _optional(fit, "the retrospective", None, advice.retrospect,
                                      config.study, fit)
  context = {"workdir": str(workdir), "source": f"{config.runs.source} ({source.where})",
             "num_runs": len({r["run"] for r in source.rows}),
             "num_rows": len(source.rows),
             "unfinished": [r["run"] for r in getattr(fit, "rows", []) if not r["final"]],
             "train_seconds": train_seconds, "reused_fit": reused, "started": started}
  path = report.write(fit, report_dir, context, fit_cache.dumps(key, fit))
  # The answer first (each target's measured and predicted values), then a line per
  # warning; the source's were printed in full above.
  said = {headlines.warning_line(note) for note in source.notes}
  for line in report.console_lines(fit):
    if line not in said:
      print(line)
  print(f"wrote {path} ({time.time() - started:.1f}s)")
  return fit


def check_workdir(workdir: str) -> None:
  """Checks, before any compute, that `workdir` can take files; creates nothing.

  Otherwise a workdir that is a file, or sits on a read-only disk, fails only
  when the first unit or the report is written: after the training or the fit.
  A missing workdir is not created here: whatever first writes in it does (a
  unit's folder, the report), so input refused later leaves no empty folder behind.
  """
  fix = "pass a --workdir that is a directory you can write (it is created if missing)"
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ValueError(f"workdir {workdir} is an existing file, not a directory; {fix}")
  existing = os.path.abspath(workdir)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise ValueError(f"workdir {workdir} cannot be created: {existing} is a file, not "
                     f"a directory; {fix}")
  try:
    if existing == os.path.abspath(workdir):
      with tempfile.TemporaryFile(dir=workdir):
        pass
    else:  # a folder made and removed where the workdir would be created
      os.rmdir(tempfile.mkdtemp(prefix=".scaling_jax_check-", dir=existing))
  except OSError as e:
    raise ValueError(f"workdir {workdir} cannot be written ({e.strerror}: "
                     f"{e.filename or workdir}); {fix}") from None


def run(config, workdir) -> study_fit.StudyFit | None:
  """Trains the sweep's missing units, fits and reports (None on a dry run)."""
  fitting_settings.check(config.study)  # a bad study field fails before any training
  if config.sweep:
    advice.check_models(config.study.advise,
                        {o.get("model", config.model.name) for o in config.sweep},
                        "config.sweep")
  workdir = os.fspath(workdir)
  check_workdir(workdir)
  start = time.time()
  train_seconds = None
  if config.sweep:
    if not _train(config, workdir):
      return None
    train_seconds = time.time() - start
  fit = fit_and_report(config, workdir, train_seconds=train_seconds)
  if config.study.advise.train_next and getattr(fit, "advice", None) is not None:
    fit = _train_advised(config, workdir, fit, start)
  return fit


def _train_advised(config, workdir, fit, start):
  """Trains the advised batch (config.study.advise.train_next), then refits."""
  # Seeds already used: the sweep's, and each fitted point's (seeds 0..k-1).
  taken = [(u.get("model"), u.get("tokens_per_param", config.train.tokens_per_param),
            u.get("seed", 0)) for u in config.sweep]
  taken += [(r.get("model"), r["M"], s) for r in fit.rows for s in range(r.get("seeds", 1))]
  todo, skipped = advice.units(fit.advice, taken)
  if skipped:
    print(f"advice: {skipped} are named by size, not by a model preset; not trained")
  if not todo:
    return fit
  labels = ", ".join(f"{u['model']}@{u['tokens_per_param']:g}" for u in todo)
  print(f"advice: training the advised run(s) {labels} next, then refitting")
  config.sweep = list(config.sweep) + todo
  if not _train(config, workdir):
    return fit
  return fit_and_report(config, workdir, train_seconds=time.time() - start)
