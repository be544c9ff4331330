"""A curve fit's report rows: each target's ARE, each checkpoint's prediction with
both interval kinds, the run-level noise they use, and the seeds' spread."""
from __future__ import annotations

import collections

import numpy as np

from scaling_jax.fitting import curve_points
from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import forms
from scaling_jax.laws import predict as predict_lib
from scaling_jax.laws import prediction_interval as pi_lib


def target_rows(name, checkpoints, fits, study, level) -> list[dict]:
  x = {"N": np.array([r["N"] for r in checkpoints], float),
       "D": np.array([r["tokens"] for r in checkpoints], float)}
  true = np.array([curve_points.loss(r, study.val_set) for r in checkpoints])
  late_from = (1 - study.curves.late_fraction) * checkpoints[-1]["tokens"]
  late = np.array([r["tokens"] >= late_from for r in checkpoints])
  out = []
  for label, law_fit in fits.items():
    point = predict_lib.law_samples(forms.CHINCHILLA, law_fit.params[None], x)[0]
    reps = predict_lib.law_samples(forms.CHINCHILLA, law_fit.replicates.params, x)
    are_reps = np.mean(np.abs(reps[:, late] - true[late]) / true[late], axis=1)
    valid = are_reps[law_fit.replicates.valid]
    # No valid resample (a law its resamples cannot identify): no interval, not a crash.
    lo, hi = (bootstrap_lib.interval(valid, level) if len(valid)
              else (float("nan"), float("nan")))
    out.append({"run": name, "fit": label, "N": checkpoints[-1]["N"],
                "final_tokens": checkpoints[-1]["tokens"], "late_checkpoints": int(late.sum()),
                "are": float(np.mean(np.abs(point[late] - true[late]) / true[late])),
                "are_lo": float(lo), "are_hi": float(hi),
                "final_rel_err": float(abs(point[-1] - true[-1]) / true[-1])})
  return out


def run_noise(fit_runs, main, study) -> pi_lib.RunNoise:
  """One run's noise about the curve law: the spread of the fit runs' mean relative
  offsets (a run's checkpoints share its luck), pooled with the prior. E, A and
  alpha absorb up to three sizes' offsets, so the offsets carry clusters - 3 df."""
  offsets = {}
  for name, checkpoints in fit_runs.items():
    kept = curve_points.cut(checkpoints, study)
    x = {"N": np.array([r["N"] for r in kept], float),
         "D": np.array([r["tokens"] for r in kept], float)}
    point = predict_lib.law_samples(forms.CHINCHILLA, main.params[None], x)[0]
    true = np.array([curve_points.loss(r, study.val_set) for r in kept])
    offsets.setdefault(curve_points.cluster_key(checkpoints), []).append(
        np.mean(np.log(true / point)))
  per_cluster = np.array([np.mean(v) for v in offsets.values()])
  df = len(per_cluster) - 3
  sigma = float(np.sqrt(np.sum(per_cluster**2) / df)) if df >= 1 else 0.0
  return pi_lib.pooled_noise(sigma, max(df, 0), pi_lib.LOSS_PRIOR,
                             f"the offsets of {len(per_cluster)} fit runs' curves")


def checkpoint_rows(runs, fit_runs, main, study, level, noise: pi_lib.RunNoise, fit_x,
                    growth: float) -> list[dict]:
  """One row per checkpoint: the law's prediction with its `prediction` interval
  (loss_lo, loss_hi: one run's checkpoint there, run noise `noise`, extrapolation
  error `growth` per decade beyond the fit's inputs `fit_x`) and its `mean` interval."""
  rows = []
  rng = np.random.default_rng([study.bootstrap.seed, 0x4355])  # 'CU'
  for name, checkpoints in runs.items():
    x = {"N": np.array([r["N"] for r in checkpoints], float),
         "D": np.array([r["tokens"] for r in checkpoints], float)}
    point = predict_lib.law_samples(forms.CHINCHILLA, main.params[None], x)[0]
    reps = predict_lib.law_samples(forms.CHINCHILLA, main.replicates.params, x)
    lo, hi = bootstrap_lib.interval(reps, level)
    decades = pi_lib.distance(fit_x, x)
    run_lo, run_hi = bootstrap_lib.interval(
        pi_lib.spread_loss(reps, noise, decades, growth, rng), level)
    kept = {id(r) for r in curve_points.cut(checkpoints, study)} if name in fit_runs else set()
    for i, r in enumerate(checkpoints):
      rows.append({"run": name, "N": r["N"], "tokens": r["tokens"], "step": r["step"],
                   "loss": curve_points.loss(r, study.val_set), "loss_pred": float(point[i]),
                   "loss_lo": float(run_lo[i]), "loss_hi": float(run_hi[i]),
                   "loss_mean_lo": float(lo[i]), "loss_mean_hi": float(hi[i]),
                   "extrapolation_decades": float(decades[i]),
                   "used_in_fit": id(r) in kept})
  return rows


def seed_spread(runs_by_name, val_set) -> list[dict]:
  clusters = collections.defaultdict(list)
  for name, checkpoints in runs_by_name.items():
    clusters[curve_points.cluster_key(checkpoints)].append(
        curve_points.loss(checkpoints[-1], val_set))
  return [{"cluster": key.replace("|", " "), "seeds": len(v),
           "final_loss_mean": float(np.mean(v)), "final_loss_sd": float(np.std(v, ddof=1))}
          for key, v in sorted(clusters.items()) if len(v) > 1]
