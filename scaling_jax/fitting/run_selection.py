"""Which runs a curve fit fits and predicts: by name, by condition, or by default.

A published table holds hundreds of runs; naming each on the command line is not a
way to select them. `study.curves.targets_where` and `.fit_where` select runs by
conditions on each run's last kept row (its final checkpoint):

  --config.study.curves.targets_where='flops == max'          # the largest budget
  --config.study.curves.fit_where='flops <= 1e20 and N >= 1e8'

A condition is 'FIELD OP VALUE' with FIELD one of FIELDS (loss: the study's
val_set), OP one of == != < <= > >=, and VALUE a count ('1e20', '2.8B') or 'max' /
'min' (that field's extreme over the runs). Conditions join with 'and'. Equality
allows a relative 1e-9, so a budget computed as 6 N D still equals the one written.

The fit runs are the named runs and those fit_where selects; with neither, every run
that is not a target.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Mapping, Sequence

from scaling_jax.fitting import StudyError
from scaling_jax.fitting import points as points_lib
from scaling_jax.runs import csv_mapping
from scaling_jax.runs import table as runs_table

FIELDS = ("N", "tokens", "flops", "M", "step", "loss")
OPERATORS = csv_mapping.OPERATORS
_CONDITION = re.compile(r"^\s*(?P<field>\w+)\s*(?P<op>[=!<>]+)\s*(?P<value>\S+)\s*$")
_REL_TOL = 1e-9  # float rounding of a product, not a tolerance on the user's values


@dataclasses.dataclass(frozen=True)
class Condition:
  text: str
  field: str
  op: str
  value: str  # a count, 'max' or 'min'

  def keeps(self, value: float, extremes: Mapping[str, tuple[float, float]]) -> bool:
    if self.value in ("max", "min"):
      bound = extremes[self.field][self.value == "max"]
    else:
      bound = csv_mapping.parse_count(self.value)
    close = abs(value - bound) <= _REL_TOL * max(abs(value), abs(bound))
    return {"==": close, "!=": not close, "<": value < bound and not close,
            "<=": value <= bound or close, ">": value > bound and not close,
            ">=": value >= bound or close}[self.op]


def parse(text: str, field: str) -> list[Condition]:
  """'flops <= 1e20 and N >= 1e8' -> Conditions; StudyError naming `field` if not."""
  conditions = []
  for part in re.split(r"\s+and\s+", str(text).strip()) if str(text).strip() else []:
    match = _CONDITION.match(part)
    if not match or match["op"] not in OPERATORS:
      raise StudyError(f"config field '{field}': {part!r} is not 'FIELD OP VALUE' with OP "
                       f"one of {' '.join(OPERATORS)} (e.g. 'flops >= 1e21'; join "
                       f"conditions with 'and')")
    if match["field"] not in FIELDS:
      raise StudyError(f"config field '{field}': {part!r} names field {match['field']!r}; "
                       f"fields: {', '.join(FIELDS)} (of each run's final checkpoint)")
    value = match["value"]
    if value not in ("max", "min"):
      try:
        csv_mapping.parse_count(value)
      except ValueError:
        raise StudyError(f"config field '{field}': {part!r}: the value must be a number "
                         f"like 1e21 or 2.8B, or max or min") from None
    conditions.append(Condition(part.strip(), match["field"], match["op"], value))
  return conditions


def _final_values(checkpoints: Sequence[dict], val_set: str) -> dict[str, float]:
  last = checkpoints[-1]
  n, tokens = float(last["N"]), float(last["tokens"])
  return {"N": n, "tokens": tokens,
          "flops": float(last.get("flops") or runs_table.training_flops(n, tokens)),
          "M": float(last.get("M") or tokens / n), "step": float(last.get("step") or 0),
          "loss": float(points_lib.loss_of(last, val_set))}


def matching(runs: Mapping[str, Sequence[dict]], conditions: Sequence[Condition],
             val_set: str, field: str) -> list[str]:
  """The runs (sorted) whose final checkpoint meets every condition; an error if none."""
  values = {name: _final_values(cps, val_set) for name, cps in runs.items()}
  extremes = {f: (min(v[f] for v in values.values()), max(v[f] for v in values.values()))
              for f in FIELDS} if values else {}
  chosen = sorted(n for n, v in values.items()
                  if all(c.keeps(v[c.field], extremes) for c in conditions))
  if not chosen:
    ranges = ", ".join(f"{f} {lo:.4g}..{hi:.4g}" for f, (lo, hi) in extremes.items())
    raise StudyError(f"config field '{field}' ({' and '.join(c.text for c in conditions)}) "
                     f"selects no run; over the {len(values)} runs: {ranges}")
  return chosen


def requested(curves) -> bool:
  """Whether config.study.curves asks for a curve fit at all."""
  return any(str(curves.get(k, "")).strip()
             for k in ("fit_runs", "targets", "fit_where", "targets_where"))


def select(runs: Mapping[str, Sequence[dict]], curves, val_set: str
           ) -> tuple[list[str], list[str]]:
  """(fit run names, target names) of config.study.curves over `runs`."""
  targets = points_lib.names(curves.targets)
  where = parse(curves.targets_where, "study.curves.targets_where")
  if where:
    targets = sorted(set(targets) | set(matching(runs, where, val_set,
                                                  "study.curves.targets_where")))
  fit = points_lib.names(curves.fit_runs)
  where = parse(curves.fit_where, "study.curves.fit_where")
  if where:
    fit = sorted(set(fit) | set(matching(runs, where, val_set, "study.curves.fit_where")))
  elif not fit:
    fit = sorted(set(runs) - set(targets))
    if not fit:
      raise StudyError("study.curves: every run is a target, so none is left to fit; "
                       "name fit runs (study.curves.fit_runs) or narrow the targets")
  return fit, targets
