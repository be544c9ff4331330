"""Work units: one trained run of a sweep, with its directory and planned size.

A unit is named after its sweep overrides (sweep.unit_name), so its directory
`workdir/runs/<name>` is the same on every launch: that is what makes a re-run
skip finished units and resume interrupted ones from their checkpoints.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys

from scaling_jax import ladder
from scaling_jax import plan as plan_lib
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
  plan: plan_lib.RunPlan  # derived from config once, when the sweep is expanded

  @property
  def N(self) -> int:  # pylint: disable=invalid-name
    """Parameters, as the trained tree counts them."""
    return self.plan.num_params

  @property
  def M(self) -> float:  # pylint: disable=invalid-name
    """Planned tokens per parameter."""
    return self.plan.tokens_per_param

  @property
  def tokens(self) -> int:
    """Training tokens (the plan rounded to whole steps)."""
    return self.plan.tokens

  @property
  def flops(self) -> float:
    """Training FLOPs of the whole run, as the runs table counts them."""
    return self.plan.flops

  @property
  def label(self) -> str:
    """'preset@M', the form config.study's designs use."""
    return f"{self.config.model.name}@{self.M:g}"

  def finished(self) -> bool:
    return runs_table.is_finished(self.workdir)

  def write_config(self) -> str:
    """Writes the unit's config as JSON into its directory (atomically)."""
    return self.write_file(UNIT_CONFIG_FILENAME, self.config.to_json(sort_keys=True,
                                                                     indent=1))

  def write_file(self, filename: str, text: str) -> str:
    """Writes `text` to `filename` in the unit's directory, atomically; its path."""
    os.makedirs(self.workdir, exist_ok=True)
    path = os.path.join(self.workdir, filename)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
      f.write(text)
    os.replace(tmp, path)
    return path


def _plan(unit_config, where: str) -> plan_lib.RunPlan:
  try:
    plan = plan_lib.plan(unit_config)
    optim.schedule_of(unit_config.optim, plan.warmup_steps, plan.steps)
  except (ValueError, TypeError) as e:
    raise ValueError(f"{where}: {e}") from e
  return plan


def build_units(config, workdir: str) -> list[WorkUnit]:
  """The sweep's work units, each planned (config errors fail here, by field).

  With a sweep, the top-level config is planned too: a field the sweep sets in
  every unit would otherwise hide an invalid value the user gave it.
  """
  if config.get("sweep"):
    # The ladder is checked in each unit: the top level's M need not be a rung.
    top = config.copy_and_resolve_references()
    top.train.branch_multipliers = ""
    _plan(top, "top-level config (under config.sweep)")
  units = []
  for unit_config in sweep.expand(config):
    name = unit_config.get("name") or "run"
    plan = _plan(unit_config, f"sweep unit {name!r}")
    if not unit_config.train.compilation_cache_dir:  # shared by the sweep's units
      unit_config.train.compilation_cache_dir = os.path.join(
          os.path.abspath(workdir), ".jax_cache")
    units.append(WorkUnit(
        name=name, config=unit_config,
        workdir=os.path.join(os.fspath(workdir), "runs", name), plan=plan))
  return _link_ladders(units)


def _ladder_key(unit: WorkUnit) -> str:
  """What a trunk and its branches share: the whole config but M and the name."""
  config = unit.config.to_dict()
  config.pop("name", None)
  for field in ("tokens_per_param", "branch_dir"):
    config["train"].pop(field, None)
  return json.dumps(config, sort_keys=True, default=str)


def _link_ladders(units: list[WorkUnit]) -> list[WorkUnit]:
  """Points each ladder unit at its trunk's branch points (train.branch_dir), and
  puts trunks first, so that a pool never fills with branches waiting on a trunk
  that has not started. Units outside a ladder keep their order."""
  ladders: dict[str, list[WorkUnit]] = {}
  for unit in units:
    if unit.plan.in_ladder:
      ladders.setdefault(_ladder_key(unit), []).append(unit)
  if not ladders:
    return units
  trunks = set()
  for members in ladders.values():
    trunk = [u for u in members if not u.plan.branch_from_step]
    if not trunk:
      top = plan_lib.ladder_multipliers(members[0].config)
      raise ValueError(
          f"sweep units {[u.name for u in members]} branch from a trunk at M="
          f"{max(top):g} (the largest of config.train.branch_multipliers) that the "
          f"sweep does not train; add that unit, or drop the multiplier")
    if len(trunk) > 1:  # two units alike but for M: not possible; guards the key
      raise ValueError(f"sweep units {[u.name for u in trunk]} are all trunks of one "
                       f"ladder; give them distinct seeds or configs")
    trunks.add(trunk[0].name)
    for unit in members:
      if not unit.config.train.branch_dir:
        unit.config.train.branch_dir = os.path.join(trunk[0].workdir,
                                                    ladder.BRANCH_POINTS_DIRNAME)
  return sorted(units, key=lambda u: u.name not in trunks)


def _leaf(config, field: str):
  node = config
  for part in field.split("."):
    node = node[part]
  return node


def shadowed_fields(config, fields) -> dict[str, list[str]]:
  """Of the dotted `fields` (e.g. a user's overrides), those the sweep replaces ->
  the units in which it does.

  A unit replaces a field when its overrides set it (a preset sets model.name, a
  dataset the data fields, M, the seed), or when the unit ends with another value:
  a model field equal to the top-level preset's own value is not explicit, so
  each unit's preset replaces it. A model field that differs from that preset
  survives every preset and is not shadowed.
  """
  overrides = list(config.get("sweep") or [])
  if not overrides:
    return {}
  units = sweep.expand(config)
  out = {}
  for field in fields:
    top = _leaf(config, field)
    replaced = [u.name for u, o in zip(units, overrides)
                if field in sweep.fields_set(config, o) or _leaf(u, field) != top]
    if replaced:
      out[field] = replaced
  return out


def check_devices(units: list[WorkUnit], given: tuple[int, str] | None) -> None:
  """Checks each unit's mesh and global batch against the devices it will get.

  `given`: (devices per unit, where that number comes from), as
  devices.unit_devices says, or None where only the cluster knows; then only what
  the config alone decides is checked. Run before any unit starts: otherwise a
  mesh too large for the unit's slice, or a batch that the mesh's batch axes
  (data x fsdp) do not divide, fails only inside the worker, after it has
  prepared data and compiled.
  """
  from scaling_jax import sharding  # pylint: disable=g-import-not-at-top
  for unit in units:
    where = f"unit {unit.name!r}: "
    mesh, batch = unit.config.mesh, unit.config.train.global_batch
    if given is None:
      # The axes the config fixes; -1 takes devices known only later, so counts 1.
      count = math.prod(max(1, int(mesh.get(a, 1))) for a in sharding.MESH_AXES)
      source = "the cluster's devices"
    else:
      count, source = given
    try:
      sizes = sharding.mesh_sizes(mesh, count)
    except ValueError as e:
      raise ValueError(f"{where}{e} (the unit gets {source})") from None
    parallel = math.prod(sizes[a] for a in sharding.RULES["batch"])
    if batch % parallel:
      axes = " x ".join(f"{a}={sizes[a]}" for a in sharding.RULES["batch"])
      raise ValueError(
          f"{where}config.train.global_batch={batch} does not split over the mesh's "
          f"batch axes ({axes}, on {source}): each of the {parallel} batch shards "
          f"must hold whole sequences; use a multiple of {parallel}, or change "
          f"config.mesh or the unit's devices")


def unset_data_paths(units: list[WorkUnit]) -> list[str]:
  """One line per data field the units need and nobody set: the override to give
  and how many units wait on it (the paper grid ships with its corpus paths empty)."""
  from scaling_jax.data import config as data_config  # pylint: disable=g-import-not-at-top
  waiting: dict[str, int] = {}
  for unit in units:
    name = unit.config.get("dataset") or ""
    from_sweep = name and name in (unit.config.get("datasets") or {})
    prefix = f"--config.datasets.{name}." if from_sweep else "--config.data."
    for field in data_config.unset_fields(unit.config.data):
      # The tokenizer is shared by every dataset of the sweep: one top-level field.
      flag = ("--config.data." if field.startswith("hf.") else prefix) + field
      waiting[flag] = waiting.get(flag, 0) + 1
  return [f"{flag}=...  ({count} units)" for flag, count in sorted(waiting.items())]


def validate_data(units: list[WorkUnit]) -> None:
  """Prepares each distinct dataset once and checks that every unit fits it.

  Runs before the first unit trains, so that a too-large M or a too-small
  vocabulary fails the sweep at once rather than hours in.
  """
  from scaling_jax import data  # pylint: disable=g-import-not-at-top
  unset = unset_data_paths(units)
  if unset:  # all at once, before preparing any of the data
    raise ValueError("the sweep's data is not all set; give these overrides:\n  "
                     + "\n  ".join(unset))
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
    plan_lib.check_data_fits(unit.plan, ds.num_tokens("train"), where=where)


def differing_fields(units: list[WorkUnit]) -> dict[str, list]:
  """Config leaves whose value is not the same in every unit -> their distinct values."""
  leaves = [sweep.flatten(u.config.to_dict()) for u in units]
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


def _role(unit: WorkUnit) -> str:
  if unit.plan.branch_from_step:
    return f"branch from step {unit.plan.branch_from_step}"
  return "trunk" if unit.plan.branch_points else ""


def format_table(units: list[WorkUnit]) -> str:
  """One line per unit (name, N, M, tokens, FLOPs, state, ladder role) and a total;
  with a WSD ladder, what it costs against separate runs."""
  width = max([len(u.name) for u in units] + [4])
  lines = [f"{'unit':<{width}}  {'N':>10}  {'M':>6}  {'tokens':>10}  "
           f"{'FLOPs':>10}  state"]
  for u in units:
    state = "finished" if u.finished() else "to train"
    role = _role(u)
    lines.append(f"{u.name:<{width}}  {_si(u.N):>10}  {u.M:>6g}  "
                 f"{_si(u.tokens):>10}  {_si(u.flops):>10}  {state}"
                 + (f"  ({role})" if role else ""))
  total = sum(u.flops for u in units)
  lines.append(f"{len(units)} units, {_si(total)} FLOPs in all (6 N D)")
  trunks = sum(1 for u in units if u.plan.branch_points)
  branches = sum(1 for u in units if u.plan.branch_from_step)
  if branches:
    laddered = [u for u in units if u.plan.in_ladder]
    cost = sum(u.plan.cost_flops for u in laddered)
    alone = sum(u.flops for u in laddered)
    saved = alone - cost
    lines.append(f"WSD ladders: {trunks} trunk(s) and {branches} cooldown branch(es) "
                 f"train for {_si(cost)} FLOPs, against {_si(alone)} as separate runs "
                 f"({100 * saved / alone:.0f}% saved; {100 * saved / total:.0f}% of the "
                 f"whole sweep's {_si(total)})")
  return "\n".join(lines)


def print_table(units: list[WorkUnit], stream=None) -> None:
  print(format_table(units), file=stream or sys.stdout, flush=True)
