"""Work units: one trained run of a sweep, with its directory and planned size.

A unit is named after its sweep overrides (sweep.unit_name), so its directory
`workdir/runs/<name>` is the same on every launch: that is what makes a re-run
skip finished units and resume interrupted ones from their checkpoints.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys

from scaling_jax import config_lib
from scaling_jax import optim
from scaling_jax.launch import sweep
from scaling_jax.runs import table as runs_table

UNIT_CONFIG_FILENAME = "unit_config.json"


@dataclasses.dataclass(frozen=True)
class WorkUnit:
  """One run of the sweep: its config, directory and planned size."""
  name: str
  config: object  # ml_collections.ConfigDict of this unit alone
  workdir: str  # workdir/runs/<name>
  N: int  # parameters, as the trained tree counts them  # pylint: disable=invalid-name
  M: float  # planned tokens per parameter  # pylint: disable=invalid-name
  tokens: int  # training tokens (the plan rounded to whole steps)
  flops: float  # 6 N tokens, as the runs table counts them

  @property
  def label(self) -> str:
    """'preset@M', the form config.study's designs use."""
    return f"{self.config.model.name}@{self.M:g}"

  def finished(self) -> bool:
    return runs_table.is_finished(self.workdir)

  def write_config(self) -> str:
    """Writes the unit's config as JSON into its directory (atomically)."""
    os.makedirs(self.workdir, exist_ok=True)
    path = os.path.join(self.workdir, UNIT_CONFIG_FILENAME)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
      f.write(self.config.to_json(sort_keys=True, indent=1))
    os.replace(tmp, path)
    return path


def _plan(unit_config, name: str) -> config_lib.RunPlan:
  try:
    plan = config_lib.plan(unit_config)
    optim.schedule(unit_config.optim.peak_lr, unit_config.optim.final_lr,
                   plan.warmup_steps, plan.steps)
  except (ValueError, TypeError) as e:
    raise ValueError(f"sweep unit {name!r}: {e}") from e
  return plan


def build_units(config, workdir: str) -> list[WorkUnit]:
  """The sweep's work units, each planned (config errors fail here, by field)."""
  units = []
  for unit_config in sweep.expand(config):
    name = unit_config.get("name") or "run"
    plan = _plan(unit_config, name)
    units.append(WorkUnit(
        name=name, config=unit_config,
        workdir=os.path.join(os.fspath(workdir), "runs", name),
        N=plan.num_params, M=plan.tokens_per_param, tokens=plan.tokens,
        flops=plan.flops))
  return units


def validate_data(units: list[WorkUnit]) -> None:
  """Prepares each distinct dataset once and checks that every unit fits it.

  Runs before the first unit trains, so that a too-large M or a too-small
  vocabulary fails the sweep at once rather than hours in.
  """
  from scaling_jax import data  # pylint: disable=g-import-not-at-top
  prepared = {}
  for unit in units:
    key = json.dumps(unit.config.data.to_dict(), sort_keys=True, default=str)
    where = f"sweep unit {unit.name!r}: "
    if key not in prepared:
      try:
        prepared[key] = data.prepare_dataset(unit.config.data, None)
      except (ValueError, OSError) as e:
        raise ValueError(f"{where}config.data: {e}") from e
    ds = prepared[key]
    vocab = unit.config.model.vocab_size
    if ds.tokenizer.vocab_size > vocab:
      raise ValueError(f"{where}config.model.vocab_size ({vocab}) is smaller "
                       f"than the tokenizer's vocabulary "
                       f"({ds.tokenizer.vocab_size}); raise it")
    config_lib.check_data_fits(config_lib.plan(unit.config),
                               ds.num_tokens("train"), where=where)


def _leaves(tree, prefix: str = "") -> dict:
  if not hasattr(tree, "items"):
    return {prefix: tree}
  out = {}
  for key, value in tree.items():
    out.update(_leaves(value, f"{prefix}.{key}" if prefix else str(key)))
  return out


def differing_fields(units: list[WorkUnit]) -> dict[str, list]:
  """Config leaves whose value is not the same in every unit -> their distinct values."""
  leaves = [_leaves(u.config.to_dict()) for u in units]
  keys = sorted(set().union(*leaves)) if leaves else []
  out = {}
  for key in keys:
    if key in ("name", "sweep"):
      continue
    values = [repr(leaf.get(key)) for leaf in leaves]
    if len(set(values)) > 1:
      out[key] = sorted(set(values))
  return out


def format_differences(units: list[WorkUnit]) -> str:
  """One line per config field on which units differ (the rest they share)."""
  diff = differing_fields(units)
  if not diff:
    return "units share every config field but their name"
  lines = ["config fields that differ between units:"]
  for key, values in diff.items():
    shown = ", ".join(values[:6]) + (f", ... ({len(values)} values)" if len(values) > 6 else "")
    lines.append(f"  {key}: {shown}")
  return "\n".join(lines)


def _si(x: float) -> str:
  return f"{x:.3g}" if x < 1e3 else f"{x:.3e}".replace("e+0", "e").replace("e+", "e")


def format_table(units: list[WorkUnit]) -> str:
  """One line per unit (name, N, M, tokens, FLOPs, state) and a total."""
  width = max([len(u.name) for u in units] + [4])
  lines = [f"{'unit':<{width}}  {'N':>10}  {'M':>6}  {'tokens':>10}  "
           f"{'FLOPs':>10}  state"]
  for u in units:
    state = "finished" if u.finished() else "to train"
    lines.append(f"{u.name:<{width}}  {_si(u.N):>10}  {u.M:>6g}  "
                 f"{_si(u.tokens):>10}  {_si(u.flops):>10}  {state}")
  total = sum(u.flops for u in units)
  lines.append(f"{len(units)} units, {_si(total)} FLOPs in all (6 N D)")
  return "\n".join(lines)


def print_table(units: list[WorkUnit], stream=None) -> None:
  print(format_table(units), file=stream or sys.stdout, flush=True)
