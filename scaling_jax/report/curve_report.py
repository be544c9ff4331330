"""The report of a curve fit (scaling_jax/fitting/curves.py): fit.json, predictions.csv with
one row per checkpoint, curves.png, and summary.md, in the usual report folder."""
from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from scaling_jax.fitting import curves  # noqa: E402
from scaling_jax.laws import prediction_interval as pi_lib  # noqa: E402
from scaling_jax.report import fit_cache  # noqa: E402
from scaling_jax.report import outputs  # noqa: E402
from scaling_jax.report import summary  # noqa: E402

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
      "targets": fit.targets, "seed_spread": fit.seed_spread, "notes": fit.notes,
      "versions": fit_cache.package_versions(),
  }


def write_checkpoints_csv(path, rows) -> None:
  outputs.write_csv(path, CHECKPOINT_COLUMNS, [dict(r, interval="prediction") for r in rows])


def plot_curves(fit: curves.CurveFit, path) -> None:
  """Each run's measured curve (dots; filled = fitted) and the fitted law (line)."""
  fig, ax = plt.subplots(figsize=(7, 4.5))
  runs = sorted({r["run"] for r in fit.checkpoints})
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
  ax.set_title("Curve fit: filled = fitted checkpoints, hollow = held out; band = "
               f"{fit.level:.0%} prediction interval", fontsize=9)
  if runs:
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _pct(v) -> str:
  return "n/a" if v is None or not np.isfinite(v) else f"{100 * v:.2f}%"


def _coverage_lines(fit: curves.CurveFit) -> list[str]:
  """How many held-out checkpoints fell inside each kind of interval."""
  held = [r for r in fit.checkpoints if not r["used_in_fit"] and r["loss"] is not None]
  if not held:
    return []
  pct, lines = f"{fit.level:.0%}", []
  for kind in pi_lib.KINDS:
    inside, _ = summary.coverage(held, "loss", kind)
    lines.append(f"- {inside} of {len(held)} held-out checkpoints inside their {pct} "
                 f"{kind} intervals: {pi_lib.WHAT_IT_COVERS[kind]}.")
  return lines


def render(fit: curves.CurveFit, context: dict) -> str:
  pct = f"{fit.level:.0%}"
  lines = [f"# Curve fit: {context.get('workdir', '')}", ""]
  if context.get("source"):
    lines += [f"Runs: {context['source']}.", ""]
  if fit.notes:
    lines += ["## Warnings", "", *[f"- **{n}**" for n in fit.notes], ""]
  lines += ["## Targets", "",
            f"ARE: mean absolute relative error over the target's late checkpoints; "
            f"{pct} cluster-bootstrap interval.", "",
            "| target | N | fit | late checkpoints | ARE [interval] | final rel. error |",
            "|---|---|---|---|---|---|"]
  for t in fit.targets:
    lines.append(f"| {outputs.markdown_cell(t['run'])} | {t['N']:.3g} | {t['fit']} | {t['late_checkpoints']} | "
                 f"{_pct(t['are'])} [{_pct(t['are_lo'])}, {_pct(t['are_hi'])}] | "
                 f"{_pct(t['final_rel_err'])} |")
  lines += [""] + _coverage_lines(fit) + ["", "## Laws", ""]
  for label, f in fit.fits.items():
    lines += [f"### {label}: {fit.law.formula}", "", f.how + ".", "",
              f"| parameter | value | {pct} interval |", "|---|---|---|"]
    for name, p in f.param_intervals(fit.level).items():
      lines.append(f"| {name} | {p['value']:.4g} | [{p['lo']:.4g}, {p['hi']:.4g}] |")
    lines += ["", f"{f.replicates.method} bootstrap over runs: {f.replicates.num_valid} "
              f"of {len(f.replicates.valid)} resamples identify the law.", ""]
  if fit.seed_spread:
    lines += ["## Seeds", "", "| runs (dataset, model, N, tokens) | seeds | final loss mean "
              "| seed-to-seed sd |", "|---|---|---|---|"]
    lines += [f"| {outputs.markdown_cell(s['cluster'])} | {s['seeds']} | {s['final_loss_mean']:.4f} | "
              f"{s['final_loss_sd']:.4f} |" for s in fit.seed_spread]
    lines.append("")
  lines += ["Files: fit.json, predictions.csv (one row per checkpoint), curves.png.", ""]
  return "\n".join(lines)


def write(fit: curves.CurveFit, stage: pathlib.Path, context: dict) -> None:
  outputs.write_fit_json(stage / "fit.json", fit_summary(
      fit, {k: context[k] for k in ("workdir", "source") if k in context}))
  write_checkpoints_csv(stage / "predictions.csv", fit.checkpoints)
  plot_curves(fit, stage / "curves.png")
  (stage / "summary.md").write_text(render(fit, context), encoding="utf-8")


def console_lines(fit: curves.CurveFit) -> list[str]:
  lines = [f"WARNING: {n}" for n in fit.notes]
  for label, f in fit.fits.items():
    params = ", ".join(f"{n}={v['value']:.4g} [{v['lo']:.4g}, {v['hi']:.4g}]"
                       for n, v in f.param_intervals(fit.level).items())
    lines.append(f"{label}: {params}")
  for t in fit.targets:
    lines.append(f"target {t['run']} ({t['fit']}): ARE {_pct(t['are'])} "
                 f"[{_pct(t['are_lo'])}, {_pct(t['are_hi'])}], final {_pct(t['final_rel_err'])}")
  return lines
