"""The report of a curve fit (scaling_jax/fitting/curves.py): fit.json, predictions.csv with
one row per checkpoint, curves.png, and summary.md, in the usual report folder.

As a study's summary.md (summary.py), it opens with the answer: each target's final
loss, measured against predicted, and a verdict line (verdict.py); warnings follow
one line each, in full after the laws (headlines.py)."""
from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from scaling_jax.fitting import curves  # noqa: E402
from scaling_jax.laws import prediction_interval as pi_lib  # noqa: E402
from scaling_jax.report import fit_cache  # noqa: E402
from scaling_jax.report import headlines  # noqa: E402
from scaling_jax.report import outputs  # noqa: E402
from scaling_jax.report import summary  # noqa: E402
from scaling_jax.report import verdict as verdict_lib  # noqa: E402

# loss_lo / loss_hi: the `prediction` interval (one run's checkpoint there);
# loss_mean_lo / loss_mean_hi: the `mean` interval (the law's value).
CHECKPOINT_COLUMNS = ("run", "N", "tokens", "step", "loss", "loss_pred", "loss_lo",
                      "loss_hi", "used_in_fit", "interval", "loss_mean_lo", "loss_mean_hi",
                      "extrapolation_decades")


def fit_summary(fit: curves.CurveFit, extra: dict) -> dict:
  return {
      **extra, "kind": "curve fit", "law": fit.law.name, "formula": fit.law.formula,
      "val_set": fit.val_set, "interval_level": fit.level,
      "fits": {label: {"how": f.how, "runs": f.runs, "num_points": f.num_points,
                       "converged": None if f.result is None else bool(f.result.converged),
                       "bootstrap": {"method": f.replicates.method,
                                     "num_resamples": len(f.replicates.valid),
                                     "num_valid": f.replicates.num_valid},
                       "params": f.param_intervals(fit.level)}
               for label, f in fit.fits.items()},
      "targets": fit.targets, "aggregate": aggregate(fit),
      "compute_optimal": outputs.compute_optimal_summary(fit.compute_optimal),
      "objectives": fit.objectives.as_json() if fit.objectives else None,
      "backtest": None if fit.backtest is None else {
          "growth_estimate": fit.backtest.growth_estimate,
          "growth_pooled": fit.backtest.growth, "growth_used": fit.extrapolation_growth,
          "rejects_prior": fit.backtest.rejects_prior, "source": fit.backtest.source,
          "rows": fit.backtest.rows},
      "seed_spread": fit.seed_spread, "notes": fit.notes,
      "versions": fit_cache.package_versions(),
  }


def write_checkpoints_csv(path, rows) -> None:
  outputs.write_csv(path, CHECKPOINT_COLUMNS, [dict(r, interval="prediction") for r in rows])


# What a curve fit's verdict says without targets.
NO_TARGETS = "no target runs, so no curve prediction is checked"
# Past this many runs a legend covers the plot: runs are coloured by size instead,
# with a colour bar.
MAX_LEGEND_RUNS = 12


def _plot_order(checkpoints) -> list[str]:
  """Runs by size, then length, then name: 160m before 1.4b before 12b."""
  last = {}
  for r in checkpoints:
    last[r["run"]] = r
  return sorted(last, key=lambda run: (last[run]["N"], last[run]["tokens"], run))


def _loss_limits(checkpoints) -> tuple[float, float]:
  """y-limits from measured and predicted losses, not the bands: a band that
  extrapolates far would otherwise flatten every curve onto the axis."""
  values = np.array([v for r in checkpoints for v in (r["loss"], r["loss_pred"])
                     if v is not None and np.isfinite(v)], float)
  lo, hi = float(values.min()), float(values.max())
  pad = 0.05 * (hi - lo) or 0.05 * abs(hi) or 0.1
  return lo - pad, hi + pad


def plot_curves(fit: curves.CurveFit, path) -> None:
  """curves.png: see draw_curves."""
  fig = draw_curves(fit)
  fig.savefig(path, dpi=110)
  plt.close(fig)


def draw_curves(fit: curves.CurveFit):
  """Each run's measured curve (dots; filled = fitted) and the fitted law (line)."""
  fig, ax = plt.subplots(figsize=(7, 4.5))
  runs = _plot_order(fit.checkpoints)
  sizes = {r["run"]: r["N"] for r in fit.checkpoints}
  by_size = len(runs) > MAX_LEGEND_RUNS
  if by_size:
    norm = matplotlib.colors.LogNorm(min(sizes.values()), max(sizes.values()))
    colors = [plt.cm.viridis(0.9 * norm(sizes[run])) for run in runs]
  else:
    colors = plt.cm.viridis(np.linspace(0, 0.9, max(len(runs), 1)))
  for color, run in zip(colors, runs):
    rows = [r for r in fit.checkpoints if r["run"] == run]
    tokens = np.array([r["tokens"] for r in rows], float)
    used = np.array([r["used_in_fit"] for r in rows])
    loss = np.array([r["loss"] for r in rows], float)
    ax.scatter(tokens[used], loss[used], s=10, color=color)
    ax.scatter(tokens[~used], loss[~used], s=10, facecolors="none", edgecolors=color)
    ax.plot(tokens, [r["loss_pred"] for r in rows], color=color, label=run)
    ax.fill_between(tokens, [r["loss_lo"] for r in rows], [r["loss_hi"] for r in rows],
                    color=color, alpha=0.15, linewidth=0)
  ax.set_xscale("log")
  ax.set_xlabel("tokens D")
  ax.set_ylabel(f"loss ({fit.val_set})")
  if fit.checkpoints:
    ax.set_ylim(*_loss_limits(fit.checkpoints))
  ax.set_title("Curve fit: filled = fitted checkpoints, hollow = held out; band = "
               f"{fit.level:.0%} prediction interval", fontsize=9)
  if by_size:
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=plt.cm.viridis), ax=ax)
    bar.set_label(f"parameters N ({len(runs)} runs)")
  elif runs:
    ax.legend(fontsize=7)
  fig.tight_layout()
  return fig


def _pct(v) -> str:
  return "n/a" if v is None or not np.isfinite(v) else f"{100 * v:.2f}%"


def _coverage_lines(fit: curves.CurveFit) -> list[str]:
  """How many held-out checkpoints fell inside each kind of interval."""
  held = [r for r in fit.checkpoints if not r["used_in_fit"] and r["loss"] is not None]
  if not held:
    return []
  pct, lines = f"{fit.level:.0%}", []
  for kind in pi_lib.KINDS:
    inside, _ = verdict_lib.coverage(held, "loss", kind)
    lines.append(f"- {inside} of {len(held)} held-out checkpoints inside their {pct} "
                 f"{kind} intervals: {pi_lib.WHAT_IT_COVERS[kind]}.")
  return lines


def _main_fit(fit: curves.CurveFit) -> str | None:
  return next(iter(fit.fits), None)


def final_rows(fit: curves.CurveFit) -> dict[str, dict]:
  """Each target run's final checkpoint (the main fit's prediction and interval),
  with its relative error as `loss_rel_err` (None when unmeasured)."""
  names = {t["run"] for t in fit.targets if t["fit"] == _main_fit(fit)}
  last = {}
  for r in fit.checkpoints:
    if r["run"] in names:
      last[r["run"]] = r
  return {run: dict(r, loss_rel_err=None if r["loss"] is None else
                    float(abs(r["loss_pred"] - r["loss"]) / r["loss"]))
          for run, r in last.items()}


def aggregate(fit: curves.CurveFit) -> dict | None:
  """All targets of the main fit in one line: mean ARE, mean final relative error,
  and how many final checkpoints fell inside their prediction intervals."""
  main = _main_fit(fit)
  rows = [t for t in fit.targets if t["fit"] == main]
  if not rows:
    return None
  inside = sum(bool(verdict_lib.inside(r, "loss")) for r in final_rows(fit).values())
  return {"fit": main, "targets": len(rows),
          "mean_are": float(np.mean([t["are"] for t in rows])),
          "mean_final_rel_err": float(np.mean([t["final_rel_err"] for t in rows])),
          "final_inside_prediction_interval": int(inside)}


def _checks(fit: curves.CurveFit) -> list[verdict_lib.Check]:
  """Each target's final loss, measured against predicted (main fit)."""
  return verdict_lib.checks(list(final_rows(fit).values()), "prediction",
                            metrics=(("loss", "final loss"),))


def _verdict(fit: curves.CurveFit, name=str) -> str:
  return verdict_lib.verdict_line(_checks(fit), fit.level, "prediction",
                                  none=NO_TARGETS, name=name)


def _aggregate_line(fit: curves.CurveFit) -> list[str]:
  agg = aggregate(fit)
  if agg is None:
    return []
  return [f"**All {agg['targets']} targets ({agg['fit']} fit): mean ARE "
          f"{_pct(agg['mean_are'])}, mean final relative error "
          f"{_pct(agg['mean_final_rel_err'])}; {agg['final_inside_prediction_interval']} "
          f"of {agg['targets']} final checkpoints inside their {fit.level:.0%} "
          f"prediction intervals.**", ""]


def _compute_optimal_lines(fit: curves.CurveFit) -> list[str]:
  co = fit.compute_optimal
  if co is None:
    return []
  triple = lambda t, fmt: f"{fmt(t[0])} [{fmt(t[1])}, {fmt(t[2])}]"  # noqa: E731
  return [f"Compute-optimal at C = {co.flops:.3g} FLOPs (study.budget_flops; default "
          f"the largest target's), from the {next(iter(fit.fits))} fit with "
          f"{fit.level:.0%} intervals from its replicates: N* = "
          f"{triple(co.params, summary.format_count)}, D* = "
          f"{triple(co.tokens, summary.format_count)} tokens, D/N = "
          f"{triple(co.multiplier, lambda v: f'{v:.3g}')}.", ""]


def _fitted_line(fit: curves.CurveFit) -> str:
  """One line of what was fitted, to predict what."""
  fits = "; ".join(f"{label}: {f.num_points} checkpoints of {len(f.runs)} runs"
                   for label, f in fit.fits.items())
  targets = len({t["run"] for t in fit.targets})
  return (f"Fitted: {fit.law.formula} on loss/{fit.val_set} ({fits}); {targets} target "
          f"curve(s) predicted with {fit.level:.0%} intervals.")


def _targets_section(fit: curves.CurveFit) -> list[str]:
  """The answer: each target's final loss beside its prediction, the ARE over its
  late checkpoints, the verdict, then coverage."""
  pct, main, finals = f"{fit.level:.0%}", _main_fit(fit), final_rows(fit)
  lines = ["## Targets", "",
           f"ARE: mean absolute relative error over the target's late checkpoints; "
           f"{pct} cluster-bootstrap interval. Final loss: the last checkpoint, "
           f"predicted by the {main} fit with its {pct} prediction interval.", "",
           f"| target | N | fit | late checkpoints | ARE [interval] | final rel. error "
           f"| final loss | predicted [{pct} prediction] | inside |",
           "|---|---|---|---|---|---|---|---|---|"]
  for t in fit.targets:
    final = finals.get(t["run"]) if t["fit"] == main else None
    measured, predicted, _, flag = (verdict_lib.target_cells(final, "loss", "prediction")
                                    if final else ["n/a"] * 4)
    lines.append(f"| {outputs.markdown_cell(t['run'])} | {t['N']:.3g} | {t['fit']} | "
                 f"{t['late_checkpoints']} | {_pct(t['are'])} [{_pct(t['are_lo'])}, "
                 f"{_pct(t['are_hi'])}] | {_pct(t['final_rel_err'])} | {measured} | "
                 f"{predicted} | {flag} |")
  lines += ["", f"**{_verdict(fit, outputs.markdown_cell)}**", ""]
  return lines + _aggregate_line(fit) + _coverage_lines(fit) + [""]


def render(fit: curves.CurveFit, context: dict) -> str:
  """The markdown of summary.md: the targets and the verdict first, then a line per
  warning; each warning in full follows the laws (Details)."""
  pct = f"{fit.level:.0%}"
  lines = [f"# Curve fit: {context.get('workdir', '')}", "", _fitted_line(fit), ""]
  lines += _targets_section(fit)
  lines += headlines.top_section(fit.notes, [])
  if context.get("source"):
    lines += [f"Runs: {context['source']}.", ""]
  lines += ["## Laws", ""]
  for label, f in fit.fits.items():
    converged = ("" if f.result is None or f.result.converged else
                 " **The solver did not converge** (see Warnings).")
    lines += [f"### {label}: {fit.law.formula}", "", f.how + "." + converged, "",
              f"| parameter | value | {pct} interval | standard error |",
              "|---|---|---|---|"]
    for name, p in f.param_intervals(fit.level).items():
      lines.append(f"| {name} | {p['value']:.4g} | [{p['lo']:.4g}, {p['hi']:.4g}] | "
                   f"{p['se']:.3g} |")
    lines += ["", f"{f.replicates.method} bootstrap over runs: {f.replicates.num_valid} "
              f"of {len(f.replicates.valid)} resamples identify the law; standard "
              f"errors are their standard deviations.", ""]
  lines += _compute_optimal_lines(fit)
  lines += summary.objectives_section(fit.objectives, f"{next(iter(fit.fits), '')} fit")
  lines += headlines.details_section(fit.notes, [])
  lines += summary.backtest_section(
      fit.backtest, "Eq. 3 refitted on the checkpoints of the fit runs up to each model "
      "size, predicting the final checkpoint of each larger fit run (decades of "
      "compute beyond that refit's checkpoints):", "backtest.rows", summary.growth_text(fit))
  if fit.seed_spread:
    lines += ["## Seeds", "", "| runs (dataset, model, N, tokens) | seeds | final loss mean "
              "| seed-to-seed sd |", "|---|---|---|---|"]
    lines += [f"| {outputs.markdown_cell(s['cluster'])} | {s['seeds']} | {s['final_loss_mean']:.4f} | "
              f"{s['final_loss_sd']:.4f} |" for s in fit.seed_spread]
    lines.append("")
  lines += ["Files: fit.json, predictions.csv (one row per checkpoint), curves.png, "
            "replicates.npz (each fit's bootstrap replicates).", ""]
  return "\n".join(lines)


def write(fit: curves.CurveFit, stage: pathlib.Path, context: dict) -> None:
  outputs.write_fit_json(stage / "fit.json", fit_summary(
      fit, {k: context[k] for k in ("workdir", "source") if k in context}))
  write_checkpoints_csv(stage / "predictions.csv", fit.checkpoints)
  plot_curves(fit, stage / "curves.png")
  outputs.write_replicates(stage / outputs.REPLICATES_FILENAME, {
      label: (fit.law.param_names, f.params, f.replicates.params)  # invalid rows: NaN
      for label, f in fit.fits.items()})
  (stage / "summary.md").write_text(render(fit, context), encoding="utf-8")


def console_lines(fit: curves.CurveFit) -> list[str]:
  """What a curve fit prints at its end: the verdict and each target's final loss,
  measured against predicted, first; then each fit's ARE and laws; then a line per
  warning."""
  found = _checks(fit)
  lines = [_verdict(fit)]
  shown = len(fit.targets) <= MAX_LEGEND_RUNS
  if shown:
    lines += [verdict_lib.check_line(c) for c in found]
    lines += [f"target {t['run']} ({t['fit']}): ARE {_pct(t['are'])} [{_pct(t['are_lo'])}, "
              f"{_pct(t['are_hi'])}], final {_pct(t['final_rel_err'])}" for t in fit.targets]
  else:
    lines.append(f"{len(found)} targets: each in summary.md, under Targets")
  lines += [line.strip("*") for line in _aggregate_line(fit)[:1]]
  for label, f in fit.fits.items():
    params = ", ".join(f"{n}={v['value']:.4g} [{v['lo']:.4g}, {v['hi']:.4g}]"
                       for n, v in f.param_intervals(fit.level).items())
    lines.append(f"{label}: {params}")
  lines += _compute_optimal_lines(fit)[:1]
  return lines + headlines.console_lines(fit.notes, [])
