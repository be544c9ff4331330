"""The figures people look at first (after Gadre et al. 2024, Figures 1 and 5).

- loss_vs_compute.png: reducible loss L - E against compute, one fitted line per
  token multiplier M (parallel lines on log-log axes), extrapolated to the targets.
- error_vs_loss.png: average top-1 error against loss with the fitted Eq. 5 and its
  bootstrap band.
- relative_error_heatmap.png: |pred - true| / true over N x M, loss and error.
- predicted_vs_measured.png: predicted loss (and error) with intervals against the
  measured value, on y = x; targets starred. Not in the testbed's default set, whose
  targets are unmeasured.
"""
from __future__ import annotations

import logging
import pathlib

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from scaling_jax.fitting import study_fit  # noqa: E402
from scaling_jax.laws import predict as predict_lib  # noqa: E402
from scaling_jax.report import summary  # noqa: E402


def _number(value) -> float:
  """value as a float; NaN for None, text or infinities, which matplotlib then skips."""
  try:
    value = float(value)
  except (TypeError, ValueError):
    return np.nan
  return value if np.isfinite(value) else np.nan


def _multiplier_colors(multipliers):
  cmap = plt.get_cmap("viridis")
  ms = sorted({m for m in map(_number, multipliers) if np.isfinite(m)})
  return {m: cmap(i / max(len(ms) - 1, 1)) for i, m in enumerate(ms)}


def _color_of(colors, multiplier):
  return colors.get(_number(multiplier), "gray")  # an M that is no number: gray


def _draw_interval(ax, x, value, lo, hi, *, marker, color, ms, zorder=3, mfc=None,
                   mec=None, label=None) -> None:
  """The interval [lo, hi] as a capped bar at x, and the value as a marker.

  Drawn apart rather than with errorbar: a bootstrap percentile interval need not
  contain the point fit (nor the measured value), and errorbar refuses the negative
  bar lengths that then arise. Any non-finite end leaves the bar out, never the plot.
  """
  x, value, lo, hi = map(_number, (x, value, lo, hi))
  if np.isfinite([x, lo, hi]).all():
    ax.plot([x, x], [lo, hi], color=color, lw=1, zorder=zorder)
    ax.plot([x, x], [lo, hi], ls="none", marker="_", ms=6, color=color, zorder=zorder)
  if np.isfinite([x, value]).all():
    ax.plot([x], [value], ls="none", marker=marker, ms=ms, color=color, mfc=mfc,
            mec=mec, zorder=zorder + 1, label=label)


def _legend(ax, **kwargs) -> None:
  if kwargs.get("handles") or ax.get_legend_handles_labels()[0]:
    ax.legend(**kwargs)  # an empty legend only draws a warning


def _marker_key(level: float, color="gray") -> list:
  """Legend entries for what the markers mean, drawn apart from the data."""
  from matplotlib.lines import Line2D  # pylint: disable=g-import-not-at-top
  return [Line2D([], [], ls="none", marker="o", color=color, mec="black",
                 label="measured, fit run"),
          Line2D([], [], ls="none", marker="o", mfc="none", mec=color,
                 label="measured, held out"),
          Line2D([], [], marker="*", ms=10, color=color, mec="black",
                 label=f"target: predicted, {level:.0%} interval")]


def save_figure(fig, path) -> None:
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def draw_loss_vs_compute(ax, study: study_fit.StudyFit) -> None:
  """Figure 1 (left) of the paper on `ax`: reducible loss against compute, per M."""
  preds = [p for p in study.predictions if np.isfinite(_number(p["loss"]))]
  e = _number(study.loss.result.named_params["E"])
  # No usable floor (none, or a negative one, which would put L - E above the loss
  # itself): plot the loss itself and say so on the axis.
  subtract = bool(np.isfinite(e) and e > 0)
  e = e if subtract else 0.0
  colors = _multiplier_colors([p["M"] for p in preds + study.targets])
  c_all = [c for c in (_number(p["flops"]) for p in preds + study.targets) if c > 0]
  if c_all:
    grid = np.geomspace(min(c_all) / 2, max(c_all) * 2, 200)
    for m, color in colors.items():
      line = study.loss.result.predict({"C": grid, "M": np.full_like(grid, m)})
      ax.plot(grid, line - e, color=color, lw=1, label=f"M={m:g}")
  for p in preds:
    if _number(p["loss"]) <= e:  # below the fitted floor: no place on log axes
      continue
    used, color = p["used_in_fit"], _color_of(colors, p["M"])
    ax.scatter(_number(p["flops"]), _number(p["loss"]) - e, s=28, zorder=3,
               edgecolors="black" if used else color, facecolors=color if used else "none")
  for t in study.targets:
    _draw_interval(ax, t["flops"], _number(t["loss_pred"]) - e, _number(t["loss_lo"]) - e,
                   _number(t["loss_hi"]) - e, marker="*", ms=12,
                   color=_color_of(colors, t["M"]), mec="black")
  ylabel = (f"reducible loss L - E ({study.val_set})" if subtract else
            f"loss L ({study.val_set}; fitted E <= 0 is unphysical, not subtracted)")
  ax.set(xscale="log", yscale="log", xlabel="compute C = 6ND (FLOPs)", ylabel=ylabel,
         title="Eq. 4 fit, one line per token multiplier M")
  _legend(ax, handles=ax.get_legend_handles_labels()[0] + _marker_key(study.level),
          fontsize=7, ncol=2)


def plot_loss_vs_compute(study: study_fit.StudyFit, path) -> None:
  fig, ax = plt.subplots(figsize=(6.4, 4.8))
  draw_loss_vs_compute(ax, study)
  save_figure(fig, path)


def draw_error_vs_loss(ax, study: study_fit.StudyFit) -> None:
  """Figure 1 (right): average error against loss, the Eq. 5 fit and its band."""
  preds = [p for p in study.predictions
           if np.isfinite(_number(p.get("err"))) and np.isfinite(_number(p["loss"]))]
  losses = np.array([_number(p["loss"]) for p in preds] +
                    [_number(t["loss_pred"]) for t in study.targets])
  losses = losses[np.isfinite(losses)]
  if losses.size:
    grid = np.linspace(losses.min() - 0.1, losses.max() + 0.1, 200)
    band = predict_lib.predict(study.error.result, study.error.boot, {"L": grid}, study.level)
    ax.fill_between(grid, band.lo, band.hi, color="tab:blue", alpha=0.2,
                    label=f"{study.level:.0%} bootstrap band")
    ax.plot(grid, band.value, color="tab:blue", label="Eq. 5 fit")
  used = np.array([bool(p["used_in_err_fit"]) for p in preds], dtype=bool)
  loss = np.array([_number(p["loss"]) for p in preds])
  err = np.array([_number(p["err"]) for p in preds])
  if preds:
    ax.scatter(loss[~used], err[~used], s=20, facecolors="none", edgecolors="gray",
               label="measured, held out")
    ax.scatter(loss[used], err[used], s=28, color="tab:orange", edgecolors="black",
               label="measured, fit run")
  for i, t in enumerate(study.targets):
    _draw_interval(ax, t["loss_pred"], t.get("err_pred"), t.get("err_lo"), t.get("err_hi"),
                   marker="*", ms=12, color="tab:red", mec="black",
                   label=None if i else f"target: predicted, {study.level:.0%} interval")
  ax.set(xlabel=f"loss ({study.val_set})", ylabel=f"average top-1 error ({len(study.tasks)} tasks)",
         title="Eq. 5: error from loss")
  _legend(ax, fontsize=8)


def plot_error_vs_loss(study: study_fit.StudyFit, path) -> None:
  if study.error is None:
    return
  fig, ax = plt.subplots(figsize=(6.4, 4.8))
  draw_error_vs_loss(ax, study)
  save_figure(fig, path)


def figure_1(study: study_fit.StudyFit):
  """The paper's Figure 1 as one matplotlib Figure: loss vs compute, error vs loss."""
  panels = 2 if study.error is not None else 1
  fig, axes = plt.subplots(1, panels, figsize=(6.4 * panels, 4.8), squeeze=False)
  draw_loss_vs_compute(axes[0][0], study)
  if study.error is not None:
    draw_error_vs_loss(axes[0][1], study)
  fig.tight_layout()
  return fig


def _heatmap(ax, preds, column, title):
  used_key = "used_in_fit" if column.startswith("loss") else "used_in_err_fit"
  fit_cells = {(_number(p["N"]), _number(p["M"])) for p in preds if p.get(used_key)}
  cells = [(_number(p["N"]), _number(p["M"]), 100 * _number(p.get(column))) for p in preds]
  cells = [c for c in cells if np.isfinite(c).all()]
  ax.set(xlabel="token multiplier M", ylabel="parameters N", title=title)
  if not cells:  # nothing measured: an empty panel that says so
    ax.text(0.5, 0.5, "no measured values", ha="center", va="center",
            transform=ax.transAxes)
    return
  ns, ms = sorted({c[0] for c in cells}), sorted({c[1] for c in cells})
  grid = np.full((len(ns), len(ms)), np.nan)
  for n, m, value in cells:
    grid[ns.index(n), ms.index(m)] = value
  image = ax.imshow(grid, cmap="Reds", vmin=0, aspect="auto", origin="lower")
  for i in range(len(ns)):
    for j in range(len(ms)):
      if np.isfinite(grid[i, j]):
        dark = grid[i, j] > 0.6 * np.nanmax(grid)  # white on the darkest cells
        ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", fontsize=7,
                color="white" if dark else "black")
      if (ns[i], ms[j]) in fit_cells:  # a fit run: its error is in-sample, not a test
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=1.5,
                                   ec="black"))
  ax.set_title(f"{title}\nboxed = fit runs (in-sample), unboxed = held out",
               fontsize=9)
  ax.set(xticks=range(len(ms)), xticklabels=[f"{m:g}" for m in ms], yticks=range(len(ns)),
         yticklabels=[summary.format_count(n) for n in ns])
  plt.colorbar(image, ax=ax, label="relative error (%)")


def plot_relative_error_heatmap(study: study_fit.StudyFit, path) -> None:
  preds = [p for p in study.predictions if p["loss"] is not None]
  panels = [("loss_rel_err", "loss: |pred - true| / true")]
  if study.error is not None:
    panels.append(("err_rel_err", "error: |pred - true| / true"))
  fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
  for ax, (column, title) in zip(axes[0], panels):
    _heatmap(ax, preds, column, title)
  save_figure(fig, path)


def _predicted_vs_measured(ax, preds, targets, column, label):
  target_runs = {t["run"] for t in targets}
  for p in preds:
    is_target = p["run"] in target_runs
    used = p["used_in_fit"] if column == "loss" else p["used_in_err_fit"]
    _draw_interval(ax, p[column], p.get(f"{column}_pred"), p.get(f"{column}_lo"),
                   p.get(f"{column}_hi"), marker="*" if is_target else "o",
                   ms=11 if is_target else 5,
                   color="tab:red" if is_target else "tab:blue" if used else "gray",
                   mfc=None if is_target or used else "none", zorder=3 if is_target else 2)
  values = [_number(p.get(f"{column}{suffix}")) for p in preds
            for suffix in ("", "_pred", "_lo", "_hi")]
  values = [v for v in values if np.isfinite(v)]
  if values:
    lo, hi = min(values), max(values)
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="black", lw=0.8, ls="--")
  ax.set(xlabel=f"measured {label}", ylabel=f"predicted {label}", title=label)


def plot_predicted_vs_measured(study: study_fit.StudyFit, path) -> None:
  panels = [("loss", f"loss ({study.val_set})")]
  if study.error is not None:
    panels.append(("err", "average error"))
  fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.8), squeeze=False)
  for ax, (column, label) in zip(axes[0], panels):
    preds = [p for p in study.predictions if p.get(column) is not None]
    if preds:
      _predicted_vs_measured(ax, preds, study.targets, column, label)
  fig.suptitle(f"predicted ({study.level:.0%} intervals) vs measured, y = x dashed\n"
               "blue = fit runs, hollow = held out, * = targets", fontsize=10)
  save_figure(fig, path)


PLOTS = {"loss_vs_compute.png": plot_loss_vs_compute,
         "error_vs_loss.png": plot_error_vs_loss,
         "relative_error_heatmap.png": plot_relative_error_heatmap,
         "predicted_vs_measured.png": plot_predicted_vs_measured}
FIGURE_1_AND_5 = ("loss_vs_compute.png", "error_vs_loss.png", "relative_error_heatmap.png")


def write_all(study: study_fit.StudyFit, directory, names=FIGURE_1_AND_5,
              failed: list[str] | None = None) -> list[str]:
  """Writes the named plots (error_vs_loss only with an error law); returns names.

  With a `failed` list, a plot that fails is left out and said there instead of
  ending the report: a picture is never worth a study's results.
  """
  directory = pathlib.Path(directory)
  written = []
  for name in names:
    if name == "error_vs_loss.png" and study.error is None:
      continue
    try:
      PLOTS[name](study, directory / name)
    except Exception as e:  # pylint: disable=broad-except
      if failed is None:
        raise
      logging.exception("plot %s failed", name)
      plt.close("all")
      failed.append(f"plot {name} is left out: drawing it failed ({type(e).__name__}: "
                    f"{e}); the numbers are in predictions.csv and fit.json")
      continue
    written.append(name)
  return written

