"""summary.md: the page a person reads first, from a StudyFit.

It answers, in order: how close were the held-out targets (measured beside
predicted, relative errors, whether each fell inside its interval, and a one-line
verdict: verdict.py), what to be wary of (one line per warning: headlines.py),
on which runs and at what cost, what laws were fitted (with intervals), then each
warning in full and the fit's design. Numbers in it are those in fit.json and
predictions.csv; nothing is computed here that those files could contradict.
"""
from __future__ import annotations

import numpy as np

from scaling_jax.fitting import objectives as objectives_lib
from scaling_jax.fitting import study_fit
from scaling_jax.laws import prediction_interval as pi_lib
from scaling_jax.report import caveats as caveats_lib
from scaling_jax.report import headlines
from scaling_jax.report import outputs
from scaling_jax.report import verdict as verdict_lib

# What the verdict says without targets.
NO_TARGETS = ("no targets named (config.study.targets is empty), so no prediction is "
              "checked")
# The Details subsection on what the intervals cover.
INTERVALS = "Intervals"


def format_count(n: float) -> str:
  """15184 -> '15.2k', 1.44e9 -> '1.44B': sizes from tiny to the paper's."""
  for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
    if abs(n) >= scale:
      return f"{n / scale:.3g}{suffix}"
  return f"{n:.3g}"


def _targets_section(study: study_fit.StudyFit) -> list[str]:
  """The answer: each target's measured values beside the predictions, then the
  verdict and the coverage."""
  pct, kind = f"{study.level:.0%}", study.interval
  verdict = verdict_lib.verdict_line(
      verdict_lib.checks(study.targets, kind), study.level, kind, none=NO_TARGETS,
      name=outputs.markdown_cell)
  if not study.targets:
    return ["## Targets", "", f"**{verdict}**", ""]
  lines = ["## Targets", "",
           f"| target | N | M | C (FLOPs) | loss | predicted [{pct} {kind}] | rel. error "
           f"| inside | error | predicted [{pct} {kind}] | rel. error | inside |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
  for t in study.targets:
    cells = [outputs.markdown_cell(t["run"]), format_count(t["N"]), f"{t['M']:g}",
             f"{t['flops']:.3g}", *verdict_lib.target_cells(t, "loss", kind),
             *verdict_lib.target_cells(t, "err", kind)]
    lines.append("| " + " | ".join(cells) + " |")
  lines += ["", f"**{verdict}**", ""]
  for column, label in verdict_lib.METRICS:
    hit, measured = verdict_lib.coverage(study.targets, column, kind)
    rels = [t[f"{column}_rel_err"] for t in study.targets
            if t.get(f"{column}_rel_err") is not None]
    if measured:
      lines.append(f"- {label}: {hit} of {measured} measured targets inside their {pct} "
                   f"{kind} intervals (coverage {hit / measured:.0%}); mean relative "
                   f"error {100 * sum(rels) / len(rels):.2f}%")
  errors = [(t.get(f"{verdict_lib.stem(c, kind)}_end_error"), t["run"])
            for t in study.targets for c in ("loss", "err")
            if t.get(f"{verdict_lib.stem(c, kind)}_end_error") is not None]
  if errors:
    worst, run = max(errors, key=lambda e: e[0])
    lines.append(f"- interval ends are printed to the digits their Monte-Carlo error "
                 f"supports (largest {worst:.2g}, target {outputs.markdown_cell(run)}; "
                 f"fit.json: *_end_error); more study.bootstrap.num_resamples narrows it")
  lines.append(f"- what the intervals cover and what they rest on: {INTERVALS}, under "
               f"{headlines.SECTION}")
  return lines + [""]


def _intervals_section(study: study_fit.StudyFit) -> list[str]:
  """What each interval kind covers, and the run noise and extrapolation error the
  prediction intervals rest on ([] without targets: no interval is shown)."""
  if not study.targets:
    return []
  kind = study.interval
  other = "mean" if kind == "prediction" else "prediction"
  return [f"### {INTERVALS}", "",
          f"Intervals: {pi_lib.WHAT_IT_COVERS[kind]}. The other kind, {other}, is in "
          f"predictions.csv and fit.json ({pi_lib.WHAT_IT_COVERS[other]}; "
          f"--config.study.interval={other} leads with it here).", "",
          f"The prediction intervals' run noise and extrapolation error rest on "
          f"{pi_lib.LOSS_PRIOR.source}: loss {pi_lib.LOSS_PRIOR.line().split(';')[0]}; "
          f"the loss law's run noise here is {study.loss.run_noise.sigma:.3g} "
          f"({study.loss.run_noise.source}), its extrapolation error "
          f"{growth_text(study.loss)}"
          + _error_noise_text(getattr(study, "error", None))
          + ". benchmarks/real_calibration.py measures their coverage on real "
            "held-out runs, benchmarks/calibration.py the mean kind's on simulated "
            "designs.", ""]


def _error_noise_text(error: study_fit.LawFit | None) -> str:
  if error is None:
    return ""
  return f"; the error law's is {error.run_noise.sigma:.3g} ({error.run_noise.source})"


def growth_text(law_fit) -> str:
  """The extrapolation growth a fit's prediction intervals use, and its source; for
  a study_fit.LawFit or a curves.CurveFit (both carry backtest, extrapolation and
  extrapolation_growth)."""
  if law_fit.backtest is not None and law_fit.extrapolation == "backtest":
    return law_fit.backtest.source
  return (f"{law_fit.extrapolation_growth:.3g} per decade (the prior"
          + (", study.extrapolation='prior')" if law_fit.extrapolation == "prior" else ")"))


# The backtest table's length: its largest cutoffs (the longest extrapolations) first.
BACKTEST_ROWS_SHOWN = 12


def _backtest_section(study: study_fit.StudyFit) -> list[str]:
  """How this design would have predicted its own largest runs (laws/backtest.py)."""
  return backtest_section(
      study.loss.backtest,
      "The loss law refitted on the runs up to each compute cutoff, predicting the "
      "runs above it (extrapolation in decades of compute, plus of M, beyond that "
      "refit's runs):", "loss_law.backtest.rows", growth_text(study.loss))


def backtest_section(backtest, intro: str, json_field: str, growth_text: str) -> list[str]:
  """The backtest table (a final-point study's or a curve fit's), largest cutoffs
  first; `json_field`: where fit.json holds every row."""
  if backtest is None or not backtest.ran:
    return []
  rows = sorted(backtest.rows, key=lambda r: (-r["cutoff"], -r["decades"]))
  lines = ["## Backtest: how this design predicts its own largest runs", "", intro, "",
           "| fit points | up to C | run | decades | predicted | measured | error |",
           "|---|---|---|---|---|---|---|"]
  for r in rows[:BACKTEST_ROWS_SHOWN]:
    error = (f"{100 * (np.exp(r['log_error']) - 1):+.2f}%"
             if np.isfinite(r["log_error"]) else "n/a")
    lines.append(f"| {r['num_fit']} | {r['cutoff_flops']:.3g} | "
                 f"{outputs.markdown_cell(r['run'])} | {r['decades']:.2f} | "
                 f"{r['predicted']:.4g} | {r['measured']:.4g} | {error} |")
  if len(rows) > BACKTEST_ROWS_SHOWN:
    lines.append(f"| ... | | {len(rows) - BACKTEST_ROWS_SHOWN} more in fit.json "
                 f"({json_field}) | | | | |")
  lines += ["", f"Extrapolation error used by the prediction intervals: {growth_text}.", ""]
  return lines


def objectives_section(comparison, what: str) -> list[str]:
  """Both objectives' laws side by side where they differ materially; else a line."""
  if comparison is None:
    return []
  used, other = (objectives_lib.LABELS[k] for k in (comparison.used, comparison.other))
  if comparison.skipped:
    return [f"Objective: {used} (study.fit.loss); not compared with {other}: "
            f"{comparison.skipped}.", ""]
  if comparison.failure:
    return [f"Objective: {used} (study.fit.loss); the {other} refit failed: "
            f"{comparison.failure}", ""]
  if not comparison.material:
    return [f"Objective: {used} (study.fit.loss). Refitted by {other}, the "
            f"{what}'s exponents and target predictions stay inside this fit's "
            f"intervals.", ""]
  return (["## Objectives", "",
           f"The {what} refitted by {other} differs by more than its own "
           f"uncertainty: {comparison.brief(shown=10)} (other vs used [used "
           f"interval]). Its parameters"
           + ("" if comparison.converged else " (the solver did not converge)") + ":", "",
           "| parameter | " + " | ".join(comparison.params) + " |",
           "|---|" + "---|" * len(comparison.params),
           "| " + other + " | " + " | ".join(f"{v:.4g}" for v in comparison.params.values())
           + " |", "",
           "Least squares follows every run, outliers included; Huber on log "
           "residuals (Chinchilla's fit) stops a few stray runs from dragging the law. "
           "Pick with --config.study.fit.loss=squares|huber.", ""])


def _law_section(title: str, law_fit: study_fit.LawFit | None, level: float,
                 why_not: str = "") -> list[str]:
  if law_fit is None:
    return [f"### {title}", "", f"Not fitted ({why_not or 'no downstream tasks'}).", ""]
  boot = law_fit.boot
  lines = [f"### {title}: {law_fit.result.law.formula}", "",
           f"| parameter | value | {level:.0%} interval | standard error |",
           "|---|---|---|---|"]
  for name, p in law_fit.param_intervals(level).items():
    lines.append(f"| {name} | {p['value']:.4g} | [{p['lo']:.4g}, {p['hi']:.4g}] | "
                 f"{p['se']:.3g} |")
  converged = ("converged" if law_fit.result.converged else
               "**did not converge** (see Warnings)")
  lines += ["", f"{len(law_fit.runs)} points; fit {converged}; {boot.method} bootstrap, "
            f"{boot.num_valid} of {len(boot.valid)} resamples valid, "
            f"{boot.num_converged} converged."]
  if boot.noise_source:
    lines.append(f"Interval noise: {boot.noise_source}"
                 + (f"; residual degrees of freedom {boot.residual_df}."
                    if boot.residual_df is not None else "."))
  lines.append("")
  return lines


def _design_section(study: study_fit.StudyFit, context: dict) -> list[str]:
  by_run = {p["run"]: p for p in study.predictions}
  lines = ["## Fit design", "", "| run | N | M | C (FLOPs) | loss | error | fits |",
           "|---|---|---|---|---|---|---|"]
  target_runs = {t["run"] for t in study.targets}
  for p in sorted(study.predictions, key=lambda p: (p["N"], p["M"])):
    role = ("loss+error" if p["used_in_err_fit"] and p["used_in_fit"] else
            "loss" if p["used_in_fit"] else "error" if p["used_in_err_fit"] else
            "target" if p["run"] in target_runs else "held out")
    lines.append(f"| {outputs.markdown_cell(p['run'])} | {format_count(p['N'])} | {p['M']:g} | {p['flops']:.3g} "
                 f"| {verdict_lib.value_text(p['loss'])} | {verdict_lib.value_text(p.get('err'))} | {role} |")
  lines += ["", f"Loss: loss/{study.val_set}. Downstream: {study.task_rule}"
            + (f": {', '.join(study.tasks)}." if study.tasks else ".")]
  unfinished = [r for r in context.get("unfinished", []) if r in by_run]
  if unfinished:
    lines.append(f"Unfinished runs, fitted at their latest evaluation: "
                 f"{', '.join(unfinished)}.")
  return lines + [""]


def _checkpoint_section(study: study_fit.StudyFit) -> list[str]:
  """The targets' errors from final losses (Eq. 4) beside every checkpoint (Eq. 3)."""
  curve = study.checkpoint_fit
  if curve is None:
    note = study.checkpoint_fit_note
    return [] if not note or "single checkpoint" in note else [
        "## All checkpoints vs final only", "", f"All-checkpoint fit not made: {note}", ""]
  by_run = {t["run"]: t for t in curve.targets}
  lines = ["## All checkpoints vs final only", "",
           f"Relative error of each measured target's final loss: from the final-loss "
           f"fit (Eq. 4) and from Eq. 3 fitted on every checkpoint of the same runs "
           f"({curve.fits['all checkpoints'].how}); ARE over the target's late "
           f"checkpoints beside it.", "",
           "| target | final only: rel. error | all checkpoints: rel. error | ARE |",
           "|---|---|---|---|"]
  for t in study.targets:
    c = by_run.get(t["run"])
    if c is None or t.get("loss_rel_err") is None:
      continue
    lines.append(f"| {outputs.markdown_cell(t['run'])} | {100 * t['loss_rel_err']:.2f}% | "
                 f"{100 * c['final_rel_err']:.2f}% | {100 * c['are']:.2f}% |")
  if curve.seed_spread:  # beside the fit's intervals: how much a seed alone moves
    lines += ["", "Seeds: the final loss's spread between runs that differ only in seed.",
              "", "| runs (dataset, model, N, tokens) | seeds | mean | sd |",
              "|---|---|---|---|"]
    lines += [f"| {s['cluster']} | {s['seeds']} | {s['final_loss_mean']:.4f} | "
              f"{s['final_loss_sd']:.4f} |" for s in curve.seed_spread]
  return lines + [""]


def _cost_line(context: dict) -> str:
  parts = [f"{context.get('num_runs', '?')} runs ({context.get('num_rows', '?')} "
           f"evaluations) in the runs table"]
  if context.get("train_seconds") is not None:
    parts.append(f"training (this call) {context['train_seconds']:.1f}s")
  parts.append(f"fit and report {context.get('fit_seconds', 0.0):.1f}s")
  if context.get("reused_fit"):
    parts[-1] += " (fit reused: runs, settings and fitting code unchanged since it was made)"
  return "; ".join(parts) + "."


def ladder_lines(rows) -> list[str]:
  """What the WSD ladder's runs cost against separate runs ([] without a ladder):
  rows carry the 6 N D the law uses (`flops`) and what each unit trained
  (`cost_flops`, a branch's cooldown only; scaling_jax/ladder.py)."""
  laddered = [r for r in rows if r.get("cost_flops") is not None]
  if not laddered:
    return []
  cost = sum(r["cost_flops"] for r in laddered)
  alone = sum(r["flops"] for r in laddered)
  branches = sum(1 for r in laddered if r.get("branch_of"))
  return [f"WSD ladder: {len(laddered)} design points ({branches} cooldown branches) "
          f"cost {cost:.3g} FLOPs to train, against {alone:.3g} as separate runs "
          f"({100 * (1 - cost / alone):.0f}% saved).", ""]


def _fitted_line(study: study_fit.StudyFit) -> str:
  """One line of what was fitted, to predict what."""
  error = ("" if study.error is None else
           f" and Eq. 5 (error, {len(study.tasks)} tasks) on {len(study.error.runs)} runs")
  return (f"Fitted: Eq. 4 (loss/{study.val_set}) on {len(study.loss.runs)} runs{error}; "
          f"{len(study.targets)} target(s) predicted with {study.level:.0%} "
          f"{study.interval} intervals.")


def render(study: study_fit.StudyFit, context: dict, extra: list[str] = ()) -> str:
  """The markdown of summary.md. `context`: workdir, source, num_runs, num_rows,
  unfinished (run names), train_seconds, fit_seconds, reused_fit (any may be missing).
  `extra`: lines of further sections (the advisor's), placed after the laws.

  The answer comes first: the targets and the verdict, then each warning on one
  line; their full text, and what the intervals rest on, follow the laws (Details).
  """
  co = study.compute_optimal
  found = caveats_lib.caveats(study)
  lines = [f"# Scaling study: {context.get('workdir', '')}", "", _fitted_line(study), ""]
  lines += _targets_section(study)
  lines += headlines.top_section(study.notes, found)
  if context.get("source"):
    lines += [f"Runs: {context['source']}.", ""]
  lines += [_cost_line(context), ""]
  lines += ladder_lines(study.rows)
  lines += ["## Laws", ""]
  lines += _law_section("Loss (Eq. 4)", study.loss, study.level)
  lines += _law_section("Error (Eq. 5)", study.error, study.level,
                        study.task_rule)
  lines += [f"Compute-optimal at C = {co.flops:.3g} FLOPs: M* = {co.multiplier[0]:.3g} "
            f"[{co.multiplier[1]:.3g}, {co.multiplier[2]:.3g}], N* = "
            f"{format_count(co.params[0])}, D* = {format_count(co.tokens[0])} tokens. "
            f"Eq. 4 takes Eq. 3's two exponents as equal, which fixes M* for every "
            f"budget and narrows its interval; an Eq. 3 fit (configs/curves.py) lets "
            f"them differ.", ""]
  lines += objectives_section(study.objectives, "loss law")
  lines += headlines.details_section(study.notes, found, _intervals_section(study))
  lines += list(extra)
  lines += _backtest_section(study)
  lines += _checkpoint_section(study)
  lines += _design_section(study, context)
  lines += ["Files: fit.json (laws, intervals, influences), predictions.csv (every run), "
            "replicates.npz (each law's bootstrap replicates), "
            "loss_vs_compute.png, error_vs_loss.png, predicted_vs_measured.png, "
            "relative_error_heatmap.png.", ""]
  return "\n".join(lines)


def console_lines(study: study_fit.StudyFit) -> list[str]:
  """What a study prints at its end: the verdict and each target's measured and
  predicted values first, then both laws with intervals, then a line per warning."""
  pct = f"{study.level:.0%}"
  found = verdict_lib.checks(study.targets, study.interval)
  lines = [verdict_lib.verdict_line(found, study.level, study.interval, none=NO_TARGETS)]
  lines += [verdict_lib.check_line(c) for c in found]
  for label, law_fit in (("loss", study.loss), ("error", study.error)):
    if law_fit is None:
      continue
    params = ", ".join(f"{n}={v['value']:.4g} [{v['lo']:.4g}, {v['hi']:.4g}]"
                       for n, v in law_fit.param_intervals(study.level).items())
    lines.append(f"{label} law {law_fit.result.law.formula}: {params} ({pct} intervals)")
  return lines + headlines.console_lines(study.notes, caveats_lib.caveats(study))
