"""The advisor's part of a report: advice.csv, retrospective.csv, their plots and
summary.md sections (scaling_jax/fitting/advice.py makes what they show)."""
from __future__ import annotations

import math

import numpy as np

from scaling_jax.fitting import advice as advice_lib
from scaling_jax.report import outputs
from scaling_jax.report.summary import format_count

RETROSPECTIVE_COLUMNS = ("train", "strategy", "trial", "step", "run_added", "cum_flops",
                         "target", "metric", "pred", "true", "rel_err", "lo", "hi")


def write(fit, stage) -> list[str]:
  """Writes whatever of advice / retrospective the fit holds; returns the file names."""
  from scaling_jax.report import plots  # pylint: disable=g-import-not-at-top
  written = []
  if fit.advice is not None:
    outputs.write_csv(stage / "advice.csv", advice_lib.CSV_COLUMNS, fit.advice.ranked)
    plots.save_figure(_advice_figure(fit.advice), stage / "advice_width_vs_flops.png")
    written += ["advice.csv", "advice_width_vs_flops.png"]
  if fit.retrospective is not None:
    outputs.write_csv(stage / "retrospective.csv", RETROSPECTIVE_COLUMNS,
               fit.retrospective["records"])
    plots.save_figure(_retrospective_figure(fit.retrospective["records"]),
                      stage / "retrospective.png")
    written += ["retrospective.csv", "retrospective.png"]
  return written


def _advice_figure(advice):
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  columns = [(1, "loss")] + ([(2, "error")] if any(
      math.isfinite(p[2]) for c in advice.orders.values() for p in c) else [])
  fig, axes = plt.subplots(1, len(columns), figsize=(5.5 * len(columns), 4), squeeze=False)
  for ax, (j, what) in zip(axes[0], columns):
    for name, curve in advice.orders.items():
      x = [p[0] for p in curve]
      ax.plot(x, [p[j] for p in curve], marker="o", label=name,
              lw=2.5 if name == "advised" else 1.2)
    ax.set_xscale("log")
    ax.set_xlabel("cumulative FLOPs of the added runs")
    ax.set_ylabel(f"expected 95% width of the target's {what}")
    ax.set_title(f"{advice.target}: {what}")
    ax.legend(fontsize=8)
  fig.tight_layout()
  return fig


def _retrospective_figure(records):
  """Relative error and interval width against cumulative FLOPs, per target and
  metric: each strategy's trajectory (random: median and 10-90% band), the paper
  design as a star."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  keys = sorted({(r["target"], r["metric"]) for r in records})
  fig, axes = plt.subplots(len(keys), 2, figsize=(11, 3.6 * len(keys)), squeeze=False)
  for row, (target, metric) in enumerate(keys):
    mine = [r for r in records if (r["target"], r["metric"]) == (target, metric)]
    for col, (label, value) in enumerate((("relative error", lambda r: r["rel_err"]),
                                          ("95% interval width", lambda r: r["hi"] - r["lo"]))):
      ax = axes[row][col]
      for strategy in sorted({r["strategy"] for r in mine}):
        _draw_strategy(ax, [r for r in mine if r["strategy"] == strategy], strategy, value)
      ax.set_xscale("log")
      ax.set_yscale("log")
      ax.set_xlabel("cumulative FLOPs of the fitted runs")
      ax.set_ylabel(label)
      ax.set_title(f"{target}: {metric}", fontsize=9)
    axes[row][0].legend(fontsize=7)
  fig.tight_layout()
  return fig


def _draw_strategy(ax, records, strategy, value) -> None:
  finite = [r for r in records if np.isfinite(value(r)) and value(r) > 0]
  if not finite:
    return
  if strategy == "paper":
    ax.plot([r["cum_flops"] for r in finite], [value(r) for r in finite], "k*", ms=12,
            label="paper design", zorder=5)
    return
  trials = sorted({r["trial"] for r in finite})
  if len(trials) == 1:
    finite.sort(key=lambda r: r["cum_flops"])
    ax.plot([r["cum_flops"] for r in finite], [value(r) for r in finite], marker=".",
            label=strategy, lw=2 if strategy.startswith("advisor") else 1.2)
    return
  # Random orders: the median (and spread) of the value at each step's FLOPs.
  steps = sorted({r["step"] for r in finite})
  flops, mid, lo, hi = [], [], [], []
  for step in steps:
    at = [r for r in finite if r["step"] == step]
    vals = np.array([value(r) for r in at])
    flops.append(np.median([r["cum_flops"] for r in at]))
    mid.append(np.median(vals))
    lo.append(np.percentile(vals, 10))
    hi.append(np.percentile(vals, 90))
  ax.plot(flops, mid, color="gray", label=f"{strategy} (median of {len(trials)})")
  ax.fill_between(flops, lo, hi, color="gray", alpha=0.2)


def _cell(value, digits=3) -> str:
  if value in ("", None):
    return ""
  if isinstance(value, float) and not math.isfinite(value):
    return "n/a"
  return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def advice_section(advice) -> list[str]:
  if advice is None:
    return []
  lines = ["## Advice: which runs to train next", "",
           f"Target {advice.target}; budget {advice.budget_flops:.3g} FLOPs; criterion "
           f"{advice.criterion} (the target's prediction variance, delta method at the "
           f"fitted laws; noise: {advice.noise}). Expected widths assume the run lands "
           f"on the current law with that noise. All candidates: advice.csv; widths "
           f"along the advised and two plain orders: advice_width_vs_flops.png.", ""]
  if not advice.batch:
    return lines + ["No candidate fits the budget.", ""]
  lines += ["| order | run | N | M | FLOPs | share of budget | loss 95% width after | "
            "error 95% width after |", "|---|---|---|---|---|---|---|---|"]
  for row in advice.batch:
    lines.append(f"| {row['batch_order']} | {outputs.markdown_cell(row['candidate'])} | {format_count(row['N'])} | "
                 f"{row['M']:g} | {row['flops']:.3g} | {row['budget_share']:.0%} | "
                 f"{_cell(row['loss_width_after'])} | {_cell(row['err_width_after'])} |")
  lines += ["", f"Now, before any of them: the target's loss has a standard error of "
            f"{advice.loss_std_before:.3g} and an expected 95% width of "
            f"{advice.loss_width_before:.3g} (t-corrected for the loss law's residual "
            f"degrees of freedom; each run adds one, which is much of the early gain).", ""]
  return lines + _confirmed_lines(advice.confirmed)


def _confirmed_lines(confirmed) -> list[str]:
  """The first-order ranking checked by simulated outcomes, refitted and bootstrapped."""
  if not confirmed:
    return []
  lines = ["Checked by simulation (each top candidate's outcome drawn from the current "
           "laws with their noise, refitted and bootstrapped; median of 5 outcomes; the "
           f"bootstrap's width now: {confirmed[0]['loss_width_now_sim']:.3g}):", "",
           "| candidate | loss width, expected | loss width, simulated | error width, "
           "expected | error width, simulated |", "|---|---|---|---|---|"]
  for c in confirmed:
    lines.append(f"| {outputs.markdown_cell(c['candidate'])} | {_cell(c['loss_width'])} | "
                 f"{_cell(c['loss_width_sim'])} | {_cell(c['err_width'])} | "
                 f"{_cell(c['err_width_sim'])} |")
  return lines + [""]


def retrospective_section(retro) -> list[str]:
  if retro is None:
    return []
  lines = ["## Retrospective: FLOPs each strategy needs to match the paper design", "",
           "Runs added one at a time in each strategy's order from the two smallest "
           "sizes at M = 20; after each, both laws refitted and bootstrapped. A cell is "
           "the cumulative FLOPs (and their multiple of the paper design's) at which the "
           "strategy's prediction first matches the paper design's relative error and "
           "interval width together, then from which it keeps matching (inf: never, "
           "within the replay's cap); random: medians over its orders. Every step: "
           "retrospective.csv; trajectories: retrospective.png.", ""]
  summary = retro["summary"]
  strategies = sorted({s["strategy"] for s in summary})
  lines += ["| target | metric | paper design FLOPs | " + " | ".join(strategies) + " |",
            "|---|---|---|" + "---|" * len(strategies)]
  for key in sorted({(s["target"], s["metric"]) for s in summary}):
    cells = {s["strategy"]: s for s in summary if (s["target"], s["metric"]) == key}
    paper = next(iter(cells.values()))["paper_flops"]
    lines.append(f"| {outputs.markdown_cell(key[0])} | {key[1]} | {paper:.3g} | " + " | ".join(
        _ratio(cells.get(s), paper) for s in strategies) + " |")
  return lines + [""]


def _ratio(cell, paper) -> str:
  if cell is None:
    return ""
  def one(flops):
    return "inf" if not math.isfinite(flops) else f"{flops:.3g} ({flops / paper:.2f}x)"
  return f"{one(cell['flops_both'])}; stable {one(cell['flops_both_stable'])}"
