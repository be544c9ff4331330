"""fit.json and predictions.csv from a StudyFit.

fit.json is strict JSON (no NaN or Infinity tokens: a value that is not a finite
number is written as null), so any parser reads it.
"""
from __future__ import annotations

import csv
import json
import math
import pathlib

import numpy as np

from scaling_jax.fitting import study_fit
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import prediction_interval as pi_lib
from scaling_jax.report import fit_cache

# loss_lo / loss_hi (err_lo / err_hi) bound the `prediction` interval, the column
# `interval` says so on every row; the `mean` interval has its own columns.
PREDICTION_COLUMNS = ("run", "N", "M", "flops", "used_in_fit", "used_in_err_fit", "loss",
                      "loss_pred", "loss_lo", "loss_hi", "loss_rel_err", "err", "err_pred",
                      "err_lo", "err_hi", "err_rel_err", "interval", "loss_mean_lo",
                      "loss_mean_hi", "err_mean_lo", "err_mean_hi",
                      "extrapolation_decades")


def _noise_df(noise) -> float | None:
  return None if noise is None or noise.known else float(noise.df)


def _law_summary(law_fit: study_fit.LawFit, level: float) -> dict:
  result = law_fit.result
  return {
      "law": result.law.name, "formula": result.law.formula,
      "params": law_fit.param_intervals(level),
      "objective_half_sse": result.objective,
      "converged": bool(result.converged),
      "design": law_fit.runs, "num_points": len(law_fit.runs),
      "bootstrap": {"method": law_fit.boot.method,
                    "num_resamples": len(law_fit.boot.valid),
                    "num_valid": law_fit.boot.num_valid,
                    "num_converged": law_fit.boot.num_converged,
                    "noise_source": law_fit.boot.noise_source,
                    "residual_df": law_fit.boot.residual_df,
                    # df behind the noise scale drawn from (null: taken as known or
                    # no scale drawn); calibrated: the design supports a coverage claim
                    "noise_df": _noise_df(law_fit.boot.noise),
                    "calibrated": law_fit.boot.calibration is None,
                    "calibration": law_fit.boot.calibration},
      "run_noise": None if law_fit.run_noise is None else {
          "sigma": law_fit.run_noise.sigma, "df": law_fit.run_noise.df,
          "source": law_fit.run_noise.source},
      # laws/backtest.py: each row one held-out run predicted from a compute cutoff
      "backtest": None if law_fit.backtest is None else {
          "used_by_intervals": law_fit.extrapolation == "backtest",
          "extrapolation_growth": law_fit.backtest.growth,
          "growth_estimate": law_fit.backtest.growth_estimate,
          "independent_runs": law_fit.backtest.independent_runs,
          "source": law_fit.backtest.source, "rows": law_fit.backtest.rows},
  }


def _solver_summary(settings: fit_lib.FitSettings, starts) -> dict:
  return {"algorithm": "jaxopt.LevenbergMarquardt, variable projection over exponents",
          "num_starts": int(len(starts)), "maxiter": settings.maxiter, "tol": settings.tol,
          "objective": "huber(log residual)" if settings.robust else "least squares",
          "huber_delta": settings.huber_delta if settings.robust else None}


def fit_summary(study: study_fit.StudyFit, extra: dict) -> dict:
  """Everything fit.json holds: both laws with intervals, design, solver, versions."""
  co = study.compute_optimal
  summary = {
      **extra,
      "val_set": study.val_set,
      "interval_level": study.level,
      # *_lo / *_hi of targets are `prediction` intervals, *_mean_lo / *_mean_hi
      # `mean` ones; `lead` is the kind summary.md shows.
      "interval": {"lead": study.interval, **pi_lib.WHAT_IT_COVERS,
                   "loss_prior": pi_lib.LOSS_PRIOR.line(),
                   "error_prior": pi_lib.ERROR_PRIOR.line()},
      "downstream_tasks": study.tasks,
      "task_rule": study.task_rule,
      "notes": study.notes,
      "loss_law": _law_summary(study.loss, study.level),
      "error_law": _law_summary(study.error, study.level) if study.error else None,
      "solver": _solver_summary(study.loss.result.settings, study.loss.result.starts),
      "targets": study.targets,
      "compute_optimal": compute_optimal_summary(co),
      "objectives": study.objectives.as_json() if study.objectives else None,
      "versions": fit_cache.package_versions(),
  }
  return summary


def compute_optimal_summary(co) -> dict | None:
  """fit.json's compute_optimal: flops, and value/lo/hi of M* (D/N), N* and D*."""
  if co is None:
    return None
  return {"flops": co.flops, **{k: dict(zip(("value", "lo", "hi"), getattr(co, k)))
                                for k in ("multiplier", "params", "tokens")}}


REPLICATES_FILENAME = "replicates.npz"


def write_replicates(path, laws: dict) -> None:
  """replicates.npz: per law `label`, `<label>/params` [P] (the point fit),
  `<label>/replicates` [B, P] (NaN: a resample that failed) and
  `<label>/param_names`, so standard errors, covariances or any function of the
  parameters can be recomputed (np.load(path)['loss/replicates'])."""
  arrays = {}
  for label, (names, params, replicates) in laws.items():
    arrays[f"{label}/param_names"] = np.array(names)
    arrays[f"{label}/params"] = np.asarray(params, float)
    arrays[f"{label}/replicates"] = np.asarray(replicates, float)
  with open(path, "wb") as f:
    np.savez(f, **arrays)


def _plain(value):
  """numpy scalars -> Python numbers so json and csv print them plainly."""
  if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
    return value.item()
  return value


def _strict(value):
  """`value` with numpy scalars made plain and non-finite floats made None."""
  value = _plain(value)
  if isinstance(value, float) and not math.isfinite(value):
    return None
  if isinstance(value, dict):
    return {k: _strict(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_strict(v) for v in value]
  if hasattr(value, "tolist"):
    return _strict(value.tolist())
  return value


def write_fit_json(path, summary: dict) -> None:
  path = pathlib.Path(path)
  path.write_text(json.dumps(_strict(summary), indent=2, allow_nan=False) + "\n",
                  encoding="utf-8")


# A spreadsheet runs a cell that starts with one of these as a formula
# ('=1+2*cmd|A0', '@SUM(A1)'); run names come from users' logs and configs.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
  """A text cell that a spreadsheet shows as text, never evaluates: a leading
  apostrophe (the convention spreadsheets read as 'text') before a formula start."""
  if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
    return "'" + value
  return value


def markdown_cell(value) -> str:
  """Text for a cell of a Markdown table: a '|' would split the row, a newline end
  it, and '<' open HTML in a rendered summary."""
  text = " ".join(str(value).split())
  return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")


def write_csv(path, columns, rows) -> None:
  """`rows` (dicts) as CSV with `columns`: missing or None cells empty, numpy
  scalars plain, text that a spreadsheet would evaluate quoted (csv_cell), other
  keys left out. Every table of a report goes through here."""
  with pathlib.Path(path).open("w", newline="", encoding="utf-8") as f:
    writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
      writer.writerow({k: "" if row.get(k) is None else csv_cell(_plain(row.get(k)))
                       for k in columns})


def write_predictions_csv(path, predictions) -> None:
  write_csv(path, PREDICTION_COLUMNS, [dict(p, interval="prediction") for p in predictions])
