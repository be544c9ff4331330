"""The report of a study: fit.json, predictions.csv, plots and summary.md, replaced whole.

  report.write(fit, workdir / "report", context, cache_bytes)

Every source of runs gets the same layout (see summary.py for what summary.md says).
"""
from __future__ import annotations

import pathlib
import time

from scaling_jax.fitting import curves
from scaling_jax.report import advice_report
from scaling_jax.report import curve_report
from scaling_jax.report import fit_cache
from scaling_jax.report import outputs
from scaling_jax.report import plots
from scaling_jax.report import staging
from scaling_jax.report import summary as summary_lib

SUMMARY = "summary.md"


def console_lines(fit) -> list[str]:
  """The few lines a study prints: the verdict and each target measured vs predicted,
  the laws with intervals, then one line per warning."""
  if isinstance(fit, curves.CurveFit):
    return curve_report.console_lines(fit)
  return summary_lib.console_lines(fit)


def write(fit, report_dir, context: dict, cache_bytes: bytes | None = None) -> pathlib.Path:
  """Writes the whole report into `report_dir` (the old one stays until all is written).

  `context` is what summary.md says beyond the fit (see summary.render); its
  'fit_seconds' is measured from context['started'] when given.
  """
  report_dir = pathlib.Path(report_dir)
  with staging.staged_dir(report_dir) as stage:
    if cache_bytes is not None:
      (stage / fit_cache.FILENAME).write_bytes(cache_bytes)
    if "started" in context:
      context = dict(context, fit_seconds=time.time() - context["started"])
    if isinstance(fit, curves.CurveFit):
      curve_report.write(fit, stage, context)
      return report_dir / SUMMARY
    outputs.write_fit_json(stage / "fit.json", outputs.fit_summary(
        fit, {key: context[key] for key in ("workdir", "source") if key in context}))
    outputs.write_predictions_csv(stage / "predictions.csv", fit.predictions)
    outputs.write_replicates(stage / outputs.REPLICATES_FILENAME, {
        label: (law_fit.result.law.param_names, law_fit.result.params, law_fit.boot.params)
        for label, law_fit in (("loss", fit.loss), ("error", fit.error)) if law_fit})
    failed = []
    plots.write_all(fit, stage, names=tuple(plots.PLOTS), failed=failed)
    fit.notes = list(fit.notes) + failed
    advice_report.write(fit, stage)
    extra = (advice_report.advice_section(fit.advice)
             + advice_report.retrospective_section(fit.retrospective))
    (stage / SUMMARY).write_text(summary_lib.render(fit, context, extra), encoding="utf-8")
  return report_dir / SUMMARY
