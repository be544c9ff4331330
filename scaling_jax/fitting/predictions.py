"""Predictions of fitted laws for design points and targets, with intervals and influences.

Columns of a prediction (predictions.csv; see report/outputs.py): run, N, M, flops,
used_in_fit, used_in_err_fit, loss, loss_pred, loss_lo, loss_hi, loss_mean_lo,
loss_mean_hi, loss_rel_err, err, err_pred, err_lo, err_hi, err_mean_lo, err_mean_hi,
err_rel_err, extrapolation_decades. `*_lo` / `*_hi` bound the `prediction` interval
(one run trained there), `*_mean_lo` / `*_mean_hi` the `mean` interval (the law's
value); laws/predict.py says what each covers. Targets add influence_on_loss and
influence_on_err (d prediction / d observed value of each fit run).
"""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import influence as influence_lib
from scaling_jax.laws import predict as predict_lib
from scaling_jax.laws import prediction_interval as pi_lib
from scaling_jax.runs import table as runs_table


def law_inputs(rows: Sequence[dict]) -> dict[str, np.ndarray]:
  """Eq. 4's inputs (C, M) of `rows`."""
  return {"C": np.array([r["flops"] for r in rows], float),
          "M": np.array([r["M"] for r in rows], float)}


def _chain(loss, error, x, level):
  if error is None:
    return predict_lib.predict(loss.result, loss.boot, x, level), None
  return predict_lib.predict_chain(loss.result, loss.boot, error.result, error.boot, x, level)


def _run_chain(loss, error, x, level):
  """`prediction` intervals: one run at x (laws/predict.predict_run_chain)."""
  decades = pi_lib.distance(loss.result.x, x)
  loss_spread = predict_lib.RunSpread(loss.run_noise, decades, loss.extrapolation_growth)
  err_spread = error and predict_lib.RunSpread(error.run_noise, None)
  loss_run, err_run = predict_lib.predict_run_chain(
      loss.result, loss.run_boot, loss_spread, error and error.result,
      error and error.run_boot, err_spread, x, level, seed=loss.seed)
  return loss_run, err_run, decades


def _relative_error(pred, true):
  return abs(pred - true) / abs(true) if true is not None else None


def predict_rows(rows, val_set, loss, error, level) -> list[dict]:
  """One prediction per row: the chained (C, M) -> L -> Err with intervals."""
  if not rows:
    return []
  x = law_inputs(rows)
  loss_pred, err_pred = _chain(loss, error, x, level)
  loss_run, err_run, decades = _run_chain(loss, error, x, level)
  loss_ends = bootstrap_lib.end_error(loss_run.samples, level)
  loss_mean_ends = bootstrap_lib.end_error(loss_pred.samples, level)
  if err_pred is not None:
    err_ends = bootstrap_lib.end_error(err_run.samples, level)
    err_mean_ends = bootstrap_lib.end_error(err_pred.samples, level)
  out = []
  for i, r in enumerate(rows):
    true_loss = r.get(runs_table.LOSS_PREFIX + val_set)
    p = {"run": r["run"], "N": r["N"], "M": r["M"], "flops": r["flops"],
         "used_in_fit": r["run"] in loss.runs,
         "used_in_err_fit": error is not None and r["run"] in error.runs,
         "loss": true_loss, "loss_pred": loss_pred.value[i],
         "loss_lo": loss_run.lo[i], "loss_hi": loss_run.hi[i],
         "loss_mean_lo": loss_pred.lo[i], "loss_mean_hi": loss_pred.hi[i],
         "loss_rel_err": _relative_error(loss_pred.value[i], true_loss),
         "err": r.get("err"), "extrapolation_decades": float(decades[i]),
         # Monte-Carlo error of the interval ends (bootstrap.end_error): the ends
         # are worth only the digits this supports.
         "loss_end_error": float(loss_ends[i]),
         "loss_mean_end_error": float(loss_mean_ends[i])}
    if err_pred is not None:
      p.update(err_pred=err_pred.value[i], err_lo=err_run.lo[i], err_hi=err_run.hi[i],
               err_mean_lo=err_pred.lo[i], err_mean_hi=err_pred.hi[i],
               err_end_error=float(err_ends[i]), err_mean_end_error=float(err_mean_ends[i]),
               err_rel_err=_relative_error(err_pred.value[i], r.get("err")))
    out.append(p)
  return out


def predict_targets(targets, val_set, loss, error, level) -> list[dict]:
  """Predictions of the targets, each with the influence of every fit run on it."""
  if not targets:
    return []
  x = law_inputs(targets)
  out = predict_rows(targets, val_set, loss, error, level)
  try:
    loss_influence = influence_lib.prediction_influence(loss.result, x)
    chain = influence_lib.chain_influence(loss.result, error.result, x) if error else None
  except influence_lib.InfluenceError as e:
    # The design does not pin every parameter down: no influence is meaningful.
    for p in out:
      p["influence_unavailable"] = str(e)
    return out
  except Exception as e:  # pylint: disable=broad-except
    # Influences are a diagnostic: a failure in computing them (a bug, or numerics
    # no test has met) must not cost the study its predictions. Said, not hidden.
    logging.exception("influences failed")
    for p in out:
      p["influence_unavailable"] = (f"internal error while computing them "
                                    f"({type(e).__name__}: {e}); please report it")
    return out
  for t, p in enumerate(out):
    p["influence_on_loss"] = dict(zip(loss.runs, loss_influence[t].tolist()))
    if chain is not None:
      by_run = {}
      for run, v in zip(loss.runs, chain["loss_fit_loss"][t]):
        by_run[run] = by_run.get(run, 0.0) + float(v)
      for run, v in zip(error.runs, chain["err_fit_loss"][t]):
        by_run[run] = by_run.get(run, 0.0) + float(v)
      p["influence_on_err"] = {
          "via_loss": by_run,
          "via_err": dict(zip(error.runs, chain["err_fit_err"][t].tolist()))}
  return out
