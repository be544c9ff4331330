"""From runs-table rows to fitted laws, predictions with intervals and influences.

Shared by every study: the released testbed and the project's own sweeps both end
here. A design names its runs as 'model@M' (e.g. 'd=96_l=8_h=4@320'); a target that
is not in the table is given as 'N@M' (e.g. '6889410560@20', tokens = M N), and a
held-out run that is, as 'model@M' (its measured loss and error then give the
target's relative errors).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from scaling_jax.runs import table as runs_table
from scaling_jax.evals import task_subset
from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms
from scaling_jax.laws import influence as influence_lib
from scaling_jax.laws import predict as predict_lib


class StudyError(ValueError):
  """The rows cannot support the fit asked for; the message says which and why."""


@dataclasses.dataclass
class LawFit:
  result: fit_lib.FitResult
  boot: bootstrap_lib.BootstrapResult
  runs: list[str]

  def param_intervals(self, level: float) -> dict[str, dict[str, float]]:
    lo, hi = bootstrap_lib.interval(self.boot.params, level)
    return {n: {"value": float(self.result.params[i]), "lo": float(lo[i]), "hi": float(hi[i])}
            for i, n in enumerate(self.result.law.param_names)}


@dataclasses.dataclass
class StudyFit:
  rows: list[dict]            # every row considered, with 'err' added where known
  val_set: str
  tasks: list[str]
  level: float
  loss: LawFit
  error: LawFit | None
  predictions: list[dict]     # one per row (see prediction columns in report.outputs)
  targets: list[dict]         # predictions for the named targets, with influences
  compute_optimal: predict_lib.ComputeOptimal


def _parse_spec(spec: str) -> tuple[str, float]:
  if "@" not in spec:
    raise StudyError(f"design entry {spec!r} must read 'model@M' (e.g. 'd=96_l=8_h=4@20')")
  name, multiplier = spec.rsplit("@", 1)
  try:
    return name, float(multiplier)
  except ValueError:
    raise StudyError(f"design entry {spec!r}: M must be a number") from None


def select_design(rows: Sequence[dict], specs: Sequence[str]) -> list[dict]:
  """The row of each 'model@M' spec (exactly one must match)."""
  chosen = []
  for spec in specs:
    model, multiplier = _parse_spec(spec)
    matches = [r for r in rows if r.get("model") == model and np.isclose(r["M"], multiplier)]
    if len(matches) != 1:
      have = sorted({f"{r.get('model')}@{r['M']:g}" for r in rows})
      raise StudyError(f"design entry {spec!r} matches {len(matches)} runs; "
                       f"available: {have}")
    chosen.append(matches[0])
  return chosen


def _loss_of(row: dict, val_set: str) -> float:
  key = runs_table.LOSS_PREFIX + val_set
  if key not in row:
    sets = runs_table.metric_names([row], runs_table.LOSS_PREFIX)
    raise StudyError(f"{row.get('source', row['run'])}: no loss for eval set {val_set!r} "
                     f"(field {key!r}); sets present: {sets}. Pick one with "
                     f"--config.val_set")
  return row[key]


def _law_inputs(rows: Sequence[dict]) -> dict[str, np.ndarray]:
  return {"C": np.array([r["flops"] for r in rows], float),
          "M": np.array([r["M"] for r in rows], float)}


def _fit_law(law, x, y, runs, fit_settings, boot_cfg, sigma=None) -> LawFit:
  try:
    result = fit_lib.fit(law, x, y, settings=fit_settings)
  except fit_lib.FitError as e:
    raise StudyError(f"fitting {law.formula} on runs {runs}: {e}") from None
  boot = bootstrap_lib.bootstrap(result, method=boot_cfg["method"],
                                 num_resamples=boot_cfg["num_resamples"],
                                 seed=boot_cfg["seed"], sigma=sigma)
  return LawFit(result, boot, list(runs))


def _sigma(rows, val_set, ci_column):
  """Per-run loss noise for the parametric bootstrap (95% half-width / 1.96)."""
  key = f"{ci_column}/{val_set}"
  missing = [r["run"] for r in rows if key not in r]
  if missing:
    raise StudyError(f"parametric bootstrap needs column {key!r}; missing in {missing}")
  return np.array([r[key] for r in rows]) / 1.96


def fit_study(rows: Sequence[dict], *, val_set: str, tasks: Sequence[str],
              loss_design: Sequence[str], err_design: Sequence[str],
              targets: Sequence[str], fit_settings: fit_lib.FitSettings,
              boot_cfg: dict, budget_flops: float) -> StudyFit:
  """Fits Eq. 4 on loss_design and Eq. 5 on err_design; predicts every row and target."""
  rows = [dict(r) for r in rows]
  for r in rows:
    if tasks and all(runs_table.ACC_PREFIX + t in r for t in tasks):
      r["err"] = task_subset.average_error(r, tasks)
  level = boot_cfg["level"]
  loss_rows = select_design(rows, loss_design)
  y = np.array([_loss_of(r, val_set) for r in loss_rows])
  sigma = (_sigma(loss_rows, val_set, boot_cfg["ci_column"])
           if boot_cfg["method"] == "parametric" else None)
  loss = _fit_law(forms.OVERTRAINING, _law_inputs(loss_rows), y,
                  [r["run"] for r in loss_rows], fit_settings, boot_cfg, sigma)
  error = None
  if err_design:
    err_rows = select_design(rows, err_design)
    no_err = [r["run"] for r in err_rows if "err" not in r]
    if no_err:
      raise StudyError(f"error-law design runs {no_err} lack accuracies for tasks {list(tasks)}")
    # Task averages carry no recorded noise: a parametric request falls back to the
    # residual bootstrap for the error law (fit.json records the method used).
    err_boot_cfg = dict(boot_cfg, method="residual" if boot_cfg["method"] == "parametric"
                        else boot_cfg["method"])
    error = _fit_law(forms.DOWNSTREAM, {"L": np.array([_loss_of(r, val_set) for r in err_rows])},
                     np.array([r["err"] for r in err_rows]), [r["run"] for r in err_rows],
                     fit_settings, err_boot_cfg)
  predictions = _predict_rows(rows, val_set, loss, error, level)
  target_rows = [_target_row(spec, rows) for spec in targets]
  return StudyFit(rows=rows, val_set=val_set, tasks=list(tasks), level=level, loss=loss,
                  error=error, predictions=predictions,
                  targets=_predict_targets(target_rows, rows, val_set, loss, error, level),
                  compute_optimal=predict_lib.compute_optimal(loss.result, loss.boot,
                                                              budget_flops, level))


def _target_row(spec: str, rows: Sequence[dict]) -> dict:
  """A measured row for 'model@M', or an unmeasured one for 'N@M'."""
  name, multiplier = _parse_spec(spec)
  try:
    n = float(name)
  except ValueError:
    if not any(r.get("model") == name for r in rows):
      raise StudyError(f"target {spec!r} must read 'N@M' with N a parameter count, or "
                       f"'model@M' naming a run in the table") from None
    return select_design(rows, [spec])[0]
  return {"run": f"N={n:.3g},M={multiplier:g}", "N": n, "M": multiplier,
          "tokens": n * multiplier, "flops": 6.0 * n * n * multiplier}


def _chain(loss, error, x, level):
  if error is None:
    return predict_lib.predict(loss.result, loss.boot, x, level), None
  return predict_lib.predict_chain(loss.result, loss.boot, error.result, error.boot, x, level)


def _relative_error(pred, true):
  return abs(pred - true) / abs(true) if true is not None else None


def _predict_rows(rows, val_set, loss, error, level) -> list[dict]:
  if not rows:
    return []
  loss_pred, err_pred = _chain(loss, error, _law_inputs(rows), level)
  out = []
  for i, r in enumerate(rows):
    true_loss = r.get(runs_table.LOSS_PREFIX + val_set)
    p = {"run": r["run"], "N": r["N"], "M": r["M"], "flops": r["flops"],
         "used_in_fit": r["run"] in loss.runs,
         "used_in_err_fit": error is not None and r["run"] in error.runs,
         "loss": true_loss, "loss_pred": loss_pred.value[i], "loss_lo": loss_pred.lo[i],
         "loss_hi": loss_pred.hi[i], "loss_rel_err": _relative_error(loss_pred.value[i], true_loss),
         "err": r.get("err")}
    if err_pred is not None:
      p.update(err_pred=err_pred.value[i], err_lo=err_pred.lo[i], err_hi=err_pred.hi[i],
               err_rel_err=_relative_error(err_pred.value[i], r.get("err")))
    out.append(p)
  return out


def _predict_targets(targets, rows, val_set, loss, error, level) -> list[dict]:
  if not targets:
    return []
  x = _law_inputs(targets)
  out = _predict_rows(targets, val_set, loss, error, level)
  loss_influence = influence_lib.prediction_influence(loss.result, x)
  chain = influence_lib.chain_influence(loss.result, error.result, x) if error else None
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
