"""The answer first: did the held-out targets land where the laws said they would?

A study exists to predict runs it did not fit, so summary.md and the console open
with that answer, before any warning: each target's measured value beside its
prediction and interval, and one verdict line saying how many came true. The
helpers that read a prediction's interval (bound_keys, inside, coverage,
end_digits, width_digits) live here too; the study's report (summary.py) and the
curve fit's (curve_report.py) share them.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

# The columns a target may carry, with the words the report uses for them.
METRICS = (("loss", "loss"), ("err", "error"))
# Targets a verdict names as outside their intervals, before "and k more".
OUTSIDE_NAMED = 3


def bound_keys(column: str, kind: str = "prediction") -> tuple[str, str]:
  """The keys of `column`'s interval ends of one kind: ('loss_lo', 'loss_hi') for a
  `prediction` interval, ('loss_mean_lo', 'loss_mean_hi') for a `mean` one."""
  return f"{stem(column, kind)}_lo", f"{stem(column, kind)}_hi"


def stem(column: str, kind: str) -> str:
  """'loss' for a `prediction` interval's keys, 'loss_mean' for a `mean` one's."""
  return column if kind == "prediction" else f"{column}_{kind}"


def inside(prediction: dict, column: str, kind: str = "prediction") -> bool | None:
  """Whether the measured value lies in the predicted interval (None: unmeasured)."""
  true = prediction.get(column)
  lo, hi = bound_keys(column, kind)
  if true is None or lo not in prediction:
    return None
  return bool(prediction[lo] <= true <= prediction[hi])


def coverage(predictions, column: str, kind: str = "prediction") -> tuple[int, int]:
  """(inside their intervals, measured) over `predictions` for 'loss' or 'err'."""
  flags = [inside(p, column, kind) for p in predictions]
  return sum(1 for f in flags if f), sum(1 for f in flags if f is not None)


def value_text(v, digits=4) -> str:
  return "n/a" if v is None else f"{v:.{digits}f}"


def end_digits(error) -> int:
  """Decimals an interval end is worth, given its Monte-Carlo error: the last one
  printed is at least twice the error, so a rerun with another seed keeps it."""
  if error is None or not np.isfinite(error) or error <= 0:
    return 4
  return int(np.clip(np.floor(-np.log10(2 * error)), 0, 4))


def width_digits(lo, hi) -> int:
  """Decimals that show one significant digit of an interval's width: fewer would
  print an error interval [0.13, 0.47] as '[0, 0]', which reads as no interval."""
  width = hi - lo
  if not np.isfinite(width) or width <= 0:
    return 0
  return int(np.clip(np.ceil(-np.log10(width)), 0, 4))


def interval_text(t: dict, column: str, kind: str) -> str:
  """'2.5198 [2.28, 2.75]': the prediction, and the ends to their supported digits
  (never so few that the interval's width vanishes from the text)."""
  lo, hi = bound_keys(column, kind)
  d = max(end_digits(t.get(f"{stem(column, kind)}_end_error")), width_digits(t[lo], t[hi]))
  return f"{t[column + '_pred']:.4f} [{t[lo]:.{d}f}, {t[hi]:.{d}f}]"


def percent(rel_err) -> str:
  return "n/a" if rel_err is None else f"{100 * rel_err:.2f}%"


def target_cells(t: dict, column: str, kind: str) -> list[str]:
  """A targets table's cells for one column: measured, predicted [interval],
  relative error, inside."""
  if f"{column}_pred" not in t:
    return ["n/a"] * 4
  flag = inside(t, column, kind)
  return [value_text(t.get(column)), interval_text(t, column, kind),
          percent(t.get(f"{column}_rel_err")),
          "n/a" if flag is None else ("yes" if flag else "**no**")]


@dataclasses.dataclass(frozen=True)
class Check:
  """One predicted value of one target, beside its measurement where there is one."""
  run: str
  metric: str            # the column's word: 'loss', 'error', 'final loss'
  predicted: str         # '2.5198 [2.30, 2.71]': the prediction and its interval
  measured: float | None
  rel_err: float | None
  inside: bool | None    # None: not measured


def checks(targets, kind: str, metrics=METRICS) -> list[Check]:
  """A Check per target and predicted column of `metrics` ((column, word) pairs)."""
  return [Check(t["run"], word, interval_text(t, column, kind), t.get(column),
                t.get(f"{column}_rel_err"), inside(t, column, kind))
          for t in targets for column, word in metrics if f"{column}_pred" in t]


def _plural(n: int, word: str) -> str:
  return f"{n} {word}" + ("" if n == 1 else "s")


def verdict_line(found: list[Check], level: float, kind: str, *, none: str,
                 name: Callable[[str], str] = str) -> str:
  """One line: how many measured targets fell inside their intervals (a target
  counts as inside when each of its measured values is), the largest relative
  error, and how many wait to be measured. `none`: what to say without targets;
  `name`: how a run's name is written (escaped for markdown)."""
  intervals = f"{level:.0%} {kind} intervals"
  runs = list(dict.fromkeys(c.run for c in found))
  if not runs:
    return f"Verdict: {none}."
  measured = [c for c in found if c.measured is not None]
  done = list(dict.fromkeys(c.run for c in measured))
  waiting = len(runs) - len(done)
  if not done:
    return (f"Verdict: {_plural(len(runs), 'target')} predicted with {intervals}, "
            f"not yet measured: no prediction is checked yet.")
  outside = {}
  for c in measured:
    if c.inside is False:
      outside.setdefault(c.run, []).append(c.metric)
  metrics = " and ".join(dict.fromkeys(c.metric for c in measured))
  which = "targets" if not waiting else "measured targets"
  parts = [f"{len(done) - len(outside)} of {len(done)} {which} inside their "
           f"{intervals} ({metrics})"]
  if outside:
    named = [f"{name(run)} ({', '.join(words)})"
             for run, words in list(outside.items())[:OUTSIDE_NAMED]]
    more = len(outside) - len(named)
    parts.append("outside: " + ", ".join(named) + (f" and {more} more" if more else ""))
  errors = [c for c in measured if c.rel_err is not None and np.isfinite(c.rel_err)]
  if errors:
    worst = max(errors, key=lambda c: c.rel_err)
    parts.append(f"largest relative error {percent(worst.rel_err)} "
                 f"({name(worst.run)}, {worst.metric})")
  if waiting:
    parts.append(f"{waiting} more predicted, not yet measured")
  return "Verdict: " + "; ".join(parts) + "."


def check_line(c: Check) -> str:
  """'target X: loss measured 1.0920, predicted 1.1190 [0.90, 1.30], relative error
  2.47%, inside': one predicted value for the console."""
  if c.measured is None:
    return f"target {c.run}: {c.metric} predicted {c.predicted}, not yet measured"
  where = {True: "inside", False: "OUTSIDE its interval", None: "no interval"}[c.inside]
  return (f"target {c.run}: {c.metric} measured {value_text(c.measured)}, predicted "
          f"{c.predicted}, relative error {percent(c.rel_err)}, {where}")
