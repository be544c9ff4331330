"""`--config.launch.dry_run=compile`: every unit compiled for its TPU slice, on this CPU.

Units that share (model, mesh, batch, evaluations) compile once. For each unit it
writes `runs/<unit>/compile.json` and a line of the table: per-chip memory against
the chip's HBM, the step's FLOPs per chip against the model's (roofline.py), a
roofline step time, MFU and the unit's chip-hours. A unit whose programs do not fit
is refused with a mesh that does (found by compiling the meshes the chip count
allows, most parameter sharding first), and a parameter left whole on every chip
of a mesh that shards parameters is flagged. Both end the dry run with an error,
after every file and the table are written, so no pod is booked on them.
"""
from __future__ import annotations

import json
import sys
import time

from scaling_jax import plan as plan_lib
from scaling_jax import refusals
from scaling_jax import sharding
from scaling_jax.aot import chips as chips_lib
from scaling_jax.aot import compile_unit as compile_lib
from scaling_jax.aot import roofline
from scaling_jax.aot import topology as topology_lib

COMPILE_FILENAME = "compile.json"
# Meshes compiled in search of one that fits, after the unit's own.
MAX_MESH_TRIES = 4
GIB = 2 ** 30


class CompileRefused(refusals.Reported):
  """Units that would not fit their chips, or that replicate a large parameter."""


def topology_of(unit, launch_cfg) -> str:
  """The unit's own launch.topology (a sweep may give sizes different slices), else
  the launcher's."""
  topology = unit.config.launch.get("topology") or launch_cfg.topology
  if not topology:
    raise ValueError("config.launch.dry_run=compile needs a TPU slice to compile for: "
                     "set config.launch.topology, e.g. --config.launch.topology=v5e:4x4")
  return topology


def candidate_meshes(chips: int, global_batch: int, heads: int) -> list[dict]:
  """(data, fsdp, tensor) meshes of `chips` devices the batch and heads divide,
  most parameter sharding first, then the least tensor parallelism."""
  out = []
  for tensor in (1, 2, 4, 8):
    if chips % tensor or heads % tensor:
      continue
    rest = chips // tensor
    for fsdp in (d for d in range(1, rest + 1) if rest % d == 0):
      if global_batch % rest == 0:  # data x fsdp = rest shard the batch
        out.append(dict(data=rest // fsdp, fsdp=fsdp, tensor=tensor))
  return sorted(out, key=lambda m: (-(m["fsdp"] * m["tensor"]), m["tensor"]))


def _shape_key(unit, topology: str) -> str:
  c = unit.config
  return json.dumps([topology, c.model.to_dict(), c.mesh.to_dict(), c.train.global_batch,
                     c.optim.to_dict(), c.get("evals").to_dict() if c.get("evals") else {}],
                    sort_keys=True, default=str)


def _fits(report: dict, chip: chips_lib.Chip) -> bool:
  return report["memory"]["total"] <= chip.hbm_bytes


def _search_mesh(unit, devices, chip, tried: dict) -> dict | None:
  """A compiled report on the first candidate mesh that fits, or None."""
  cfg = plan_lib.model_config(unit.config)
  for mesh in candidate_meshes(len(devices), unit.config.train.global_batch,
                               cfg.num_heads)[:MAX_MESH_TRIES + 1]:
    if mesh == tried:
      continue
    report = compile_lib.compile_memory(unit.config, devices, mesh)
    if _fits(report, chip):
      return report
  return None


def _compile_shape(unit, topology: str, log) -> dict:
  devices = topology_lib.devices(topology)
  chip = chips_lib.chip_of(topology)
  mesh = sharding.mesh_sizes(unit.config.mesh, len(devices))
  log(f"compiling {unit.config.model.name} on {topology} ({len(devices)} chips, mesh "
      f"{mesh_text(mesh)}, batch {unit.config.train.global_batch})")
  start = time.monotonic()
  report = compile_lib.compile_memory(unit.config, devices)
  result = dict(configured=report, chosen=report, refused="")
  if not _fits(report, chip):
    log(f"  needs {report['memory']['total'] / GIB:.1f} GiB of {chip.name}'s "
        f"{chip.hbm_bytes / GIB:.0f} GiB; searching meshes that fit")
    found = _search_mesh(unit, devices, chip, report["mesh"])
    result["chosen"] = found
    need = report["memory"]["total"] / GIB
    fix = (f"--config.mesh.data={found['mesh']['data']} "
           f"--config.mesh.fsdp={found['mesh']['fsdp']} "
           f"--config.mesh.tensor={found['mesh']['tensor']} "
           f"({found['memory']['total'] / GIB:.1f} GiB per chip)" if found else
           f"no mesh of {len(devices)} chips tried fits: a larger slice, or a smaller "
           f"train.global_batch")
    result["refused"] = (f"mesh {mesh_text(report['mesh'])} needs {need:.1f} GiB per "
                         f"chip, {chip.name} has {chip.hbm_bytes / GIB:.0f} GiB; fix: {fix}")
  if result["chosen"] is not None:  # costs only where the unit can run
    result["chosen"]["step"] = compile_lib.step_costs(unit.config, devices,
                                                      result["chosen"]["mesh"])
  log(f"  compiled in {time.monotonic() - start:.0f} s")
  return result


def mesh_text(mesh: dict) -> str:
  """'1x128x1': a mesh's data x fsdp x tensor sizes, as the table prints them."""
  return "x".join(str(mesh[a]) for a in sharding.MESH_AXES)


def unit_record(unit, topology: str, compiled: dict) -> dict:
  """compile.json of one unit: its shape's compile and the estimates for its steps."""
  chip = chips_lib.chip_of(topology)
  cfg = plan_lib.model_config(unit.config)
  chosen = compiled["chosen"]
  record = dict(unit=unit.name, topology=topology, chip=chip.name,
                hbm_bytes=chip.hbm_bytes, configured=compiled["configured"],
                fits=_fits(compiled["configured"], chip), refused=compiled["refused"],
                replicated=compiled["configured"]["replicated"])
  if chosen is None or chosen.get("step") is None:
    return record
  estimate = roofline.estimate(chosen["step"], chip, chosen["chips"],
                               unit.plan.tokens_per_step, cfg)
  steps = unit.plan.steps - (unit.plan.branch_from_step or 0)  # a branch pays its cooldown
  record.update(chosen=chosen, roofline=estimate, steps=steps,
                chip_hours=steps * estimate["step_seconds"] * chosen["chips"] / 3600)
  return record


def format_table(records: list[dict]) -> str:
  width = max([len(r["unit"]) for r in records] + [4])
  lines = [f"{'unit':<{width}}  {'slice':<10} {'mesh':>9}  {'GiB/chip':>9}  "
           f"{'fits':>4}  {'HLO/6N+':>7}  {'HLO/ex':>6}  {'step s':>8}  {'MFU':>5}  "
           f"{'chip-h':>9}"]
  for r in records:
    conf = r["configured"]
    used = r.get("chosen") or conf
    est = r.get("roofline")
    # A program the compiler refused reports its temporaries only: at least this.
    mem = (">" if "out_of_memory" in conf["memory"] else "") + \
        f"{conf['memory']['total'] / GIB:.2f}"
    mesh = mesh_text(used["mesh"])
    executed = est and est.get("hlo_over_executed")
    cells = ([f"{est['hlo_over_model']:.3f}", f"{executed:.3f}" if executed else "-",
              f"{est['step_seconds']:.3g}", f"{100 * est['mfu']:.0f}%",
              f"{r['chip_hours']:.3g}"] if est else ["-"] * 5)
    note = "" if r["fits"] else (f"  (refused; {mesh} fits: "
                                 f"{used['memory']['total'] / GIB:.2f} GiB)"
                                 if r.get("chosen") else "  (refused)")
    lines.append(f"{r['unit']:<{width}}  {r['topology']:<10} "
                 f"{mesh_text(conf['mesh']):>9}  {mem:>9}  "
                 f"{'yes' if r['fits'] else 'NO':>4}  {cells[0]:>7}  {cells[1]:>6}  "
                 f"{cells[2]:>8}  {cells[3]:>5}  {cells[4]:>9}{note}")
  hours = sum(r.get("chip_hours", 0.0) for r in records)
  lines.append(f"{len(records)} units, {hours:.4g} chip-hours at the roofline step "
               f"times (a lower bound: see scaling_jax/aot/roofline.py); 'HLO/6N+' is "
               f"the compiled step's FLOPs over 6N' + 12LTD per token, 'HLO/ex' over "
               f"what its recomputation and attention tiles make it perform "
               f"(roofline.executed_flops_per_token)")
  return "\n".join(lines)


def run(units, launch_cfg, log=None) -> list[dict]:
  """Compiles every unit for its slice, writes compile.json files, prints the table;
  raises CompileRefused naming each refused or flagged unit, with its fix."""
  log = log or (lambda s: print(s, file=sys.stderr, flush=True))
  by_shape: dict[str, dict] = {}
  records = []
  for unit in units:
    topology = topology_of(unit, launch_cfg)
    key = _shape_key(unit, topology)
    if key not in by_shape:
      by_shape[key] = _compile_shape(unit, topology, log)
    record = unit_record(unit, topology, by_shape[key])
    unit.write_file(COMPILE_FILENAME, json.dumps(record, indent=1, sort_keys=True))
    records.append(record)
  print(format_table(records), flush=True)
  problems = [f"  {r['unit']}: {r['refused']}" for r in records if r["refused"]]
  for r in records:
    for p in r["replicated"]:
      problems.append(
          f"  {r['unit']}: parameter {p['param']} ({p['params']:,} values, "
          f"{100 * p['share']:.0f}% of the model) is replicated on every chip of mesh "
          f"{mesh_text(r['configured']['mesh'])}; give its logical axes mesh axes in "
          f"scaling_jax/sharding.py RULES")
  if problems:
    raise CompileRefused(f"{len(problems)} problem(s) to fix before booking "
                         f"the slice (compile.json in each unit's directory):\n"
                         + "\n".join(problems))
  return records
