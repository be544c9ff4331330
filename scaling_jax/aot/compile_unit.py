"""One unit's programs compiled for a device set: per-chip memory, costs, collectives.

Memory comes from the programs as they would run (the layer loop scanned). XLA's
cost analysis counts a loop's body once whatever its trip count, so FLOPs, bytes
accessed and collectives are counted on unrolled 1- and 2-layer copies of the
model and extrapolated linearly in depth: cost(L) = cost(1) + (L - 1) * (cost(2) -
cost(1)), exact for identical layers but for fusions XLA makes at the loop's ends
(0.4% of the FLOPs of a 4-layer model, tests/aot_test.py).
"""
from __future__ import annotations

import dataclasses
import re

import jax

from scaling_jax import loop_unrolling
from scaling_jax import model as model_lib
from scaling_jax import optim
from scaling_jax import plan as plan_lib
from scaling_jax import sharding
from scaling_jax import train
from scaling_jax.aot import hlo_stats

# A parameter replicated on every chip of a mesh that shards parameters is flagged
# when it holds at least this share of the model: on a pod, a weight left whole on
# each chip is how most sharding bugs look (its memory is paid chips times over).
REPLICATED_SHARE = 0.01


def eval_shapes(config, cfg: model_lib.ModelConfig, multiple: int) -> list[tuple]:
  """(batch, seq_len) of each evaluation forward pass the unit would compile."""
  from scaling_jax.evals import val_loss  # pylint: disable=import-outside-toplevel
  from scaling_jax.evals.icl import evaluator as icl  # pylint: disable=import-outside-toplevel
  shapes = []
  for eval_cfg in (config.get("evals") or {}).values():
    kind = eval_cfg.get("kind")
    if kind == "val_loss":
      batch, seq = eval_cfg.get("batch_size", val_loss.DEFAULTS["batch_size"]), cfg.seq_len
    elif kind == "icl":
      batch = eval_cfg.get("batch_size", icl.DEFAULTS["batch_size"])
      seq = min(eval_cfg.get("seq_len", icl.DEFAULTS["seq_len"]), cfg.seq_len)
    else:
      continue
    shape = (-(-int(batch) // multiple) * multiple, int(seq))
    if shape not in shapes:
      shapes.append(shape)
  return shapes


# The TPU compiler refuses a program whose buffers exceed the chip's HBM, saying
# how much its temporaries need: "... HLO temporaries (39.01G) exceeds available HBM
# (15.75G)".
_OUT_OF_HBM = re.compile(r"temporaries \(([0-9.]+)([KMGT])\).*available HBM \(([0-9.]+)([KMGT])\)")
_UNITS = {"K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30, "T": 2 ** 40}


# The TPU compiler overlaps collectives with compute in two ways that hide them from
# a reading of its HLO text: async collective fusion repeats an all-gather in the
# body of each fusion it overlaps (one channel_id, which the layers' copies share
# too), and windowed einsums turn an all-gather and its matmul into a loop of
# collective-permutes whose body the text shows once. The copies that count a step's
# costs are compiled without both, so each collective is one plain instruction: the
# bytes it moves do not depend on how it is overlapped, nor do the FLOPs. With them,
# the paper's 1.4B step on full FSDP read 101 GB of all-gathers per chip per step
# (tests/aot_tpu_test.py).
COUNTING_OPTIONS = {"tpu": {"xla_tpu_enable_async_collective_fusion": False,
                            "xla_tpu_enable_windowed_einsum_for_all_gather": False,
                            "xla_tpu_enable_windowed_einsum_for_reduce_scatter": False}}


def compile_or_oom(lowered, options: dict | None = None):
  """(compiled, None), or (None, memory dict) where the compiler found the program
  too large for the chip; the dict's temporaries are the compiler's own figure.
  `options` are compiler options (COUNTING_OPTIONS for the counting copies)."""
  try:
    return lowered.compile(compiler_options=options), None
  except Exception as e:  # pylint: disable=broad-except
    match = _OUT_OF_HBM.search(str(e))
    if "RESOURCE_EXHAUSTED" not in str(e) or not match:
      raise
    temporaries = float(match[1]) * _UNITS[match[2]]
    return None, dict(arguments=0, outputs=0, temporaries=int(temporaries), aliased=0,
                      code=0, total=int(temporaries), out_of_memory=str(e).strip())


def _memory(lowered) -> dict[str, int]:
  compiled, refused = compile_or_oom(lowered)
  return refused if compiled is None else memory(compiled)


def memory(compiled) -> dict[str, int]:
  """Per-chip bytes of a compiled program; `total` counts donated buffers once."""
  m = compiled.memory_analysis()
  out = dict(arguments=m.argument_size_in_bytes, outputs=m.output_size_in_bytes,
             temporaries=m.temp_size_in_bytes, aliased=m.alias_size_in_bytes,
             code=m.generated_code_size_in_bytes)
  out["total"] = (out["arguments"] + out["outputs"] - out["aliased"]
                  + out["temporaries"] + out["code"])
  return out


def costs(compiled) -> dict:
  """FLOPs, bytes accessed and collectives of one device's compiled program."""
  analysis = compiled.cost_analysis()
  analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
  return dict(flops=float(analysis.get("flops", 0.0)),
              bytes_accessed=float(analysis.get("bytes accessed", 0.0)),
              collectives=hlo_stats.collectives(compiled.as_text()))


def extrapolate(one: dict, two: dict, layers: int) -> dict:
  """cost(L) from the 1- and 2-layer costs, field by field (collectives too)."""
  def line(a, b):
    return a + (layers - 1) * (b - a)
  kinds = set(one["collectives"]) | set(two["collectives"])
  zero = {"count": 0, "bytes": 0}
  coll = {k: {f: line(one["collectives"].get(k, zero)[f], two["collectives"].get(k, zero)[f])
              for f in ("count", "bytes")} for k in sorted(kinds)}
  return dict(flops=line(one["flops"], two["flops"]),
              bytes_accessed=line(one["bytes_accessed"], two["bytes_accessed"]),
              collectives={k: v for k, v in coll.items() if v["count"] > 0})


def replicated_params(program: train.Program, total_params: int) -> list[dict]:
  """Parameters left whole on every chip although the mesh shards parameters."""
  mesh = program.mesh
  if mesh.shape["fsdp"] * mesh.shape["tensor"] == 1:
    return []  # pure data parallelism replicates every parameter by design
  flagged = []
  shapes = program.abstract_state()["params"]
  for (path, sh), (_, shape) in zip(
      jax.tree_util.tree_flatten_with_path(program.param_sharding)[0],
      jax.tree_util.tree_flatten_with_path(shapes)[0]):
    size = shape.size
    if sh.is_fully_replicated and size >= REPLICATED_SHARE * total_params:
      flagged.append(dict(param=jax.tree_util.keystr(path), params=int(size),
                          share=size / total_params))
  return flagged


def build_program(config, devices, mesh_sizes: dict | None = None) -> train.Program:
  """The unit's train.Program on a mesh of `devices` (config.mesh, or `mesh_sizes`)."""
  cfg = plan_lib.model_config(config)
  mesh_cfg = dict(config.mesh) if mesh_sizes is None else dict(mesh_sizes)
  mesh = sharding.make_mesh(mesh_cfg, devices=devices)
  batch = config.train.global_batch
  if batch % sharding.batch_multiple(mesh):
    raise ValueError(f"train.global_batch {batch} is not a multiple of the mesh's "
                     f"data x fsdp = {sharding.batch_multiple(mesh)}")
  return train.Program(cfg, optim.make_optimizer(config.optim), mesh)


def compile_memory(config, devices, mesh_sizes: dict | None = None) -> dict:
  """Per-chip memory of the unit's train step and evaluation passes on `devices`,
  compiled as they would run, and its flagged replicated parameters. A program the
  compiler refuses as too large for the chip reports its temporaries alone (a
  lower bound on what it needs) and `out_of_memory`, the compiler's message.

  `mesh_sizes` ({data, fsdp, tensor}) replaces the unit's config.mesh (the mesh
  search tries several).
  """
  program = build_program(config, devices, mesh_sizes)
  mesh, cfg = program.mesh, program.cfg
  programs = {"train_step": _memory(program.lower_step(config.train.global_batch))}
  for b, t in eval_shapes(config, cfg, sharding.batch_multiple(mesh)):
    programs[f"eval[{b}x{t}]"] = _memory(program.lower_logits(b, t))
  peak = max(programs.values(), key=lambda m: m["total"])
  return dict(mesh={a: int(mesh.shape[a]) for a in sharding.MESH_AXES},
              chips=len(devices), programs=programs, memory=peak,
              replicated=replicated_params(program, model_lib.num_params(cfg)))


def step_costs(config, devices, mesh_sizes: dict | None = None) -> dict | None:
  """The train step's per-chip FLOPs, bytes accessed and collectives, counted on
  unrolled 1- and 2-layer copies and extrapolated to the unit's depth; None if the
  compiler finds a copy too large for the chip."""
  program = build_program(config, devices, mesh_sizes)
  cfg = program.cfg
  per_layer = []
  # unrolled_loops() keeps these traces apart from the scanned step's (compiled just
  # before, for memory): reusing them counted a loop body once.
  with loop_unrolling.unrolled_loops():
    for layers in sorted({1, min(2, cfg.num_layers)}):
      small = train.Program(dataclasses.replace(cfg, num_layers=layers), program.tx,
                            program.mesh)
      compiled, _ = compile_or_oom(small.lower_step(config.train.global_batch),
                                   COUNTING_OPTIONS.get(devices[0].platform))
      if compiled is None:  # rare: an unrolled copy needs more than the scanned step
        return None
      per_layer.append(costs(compiled))
  if len(per_layer) == 1:
    return per_layer[0]
  return extrapolate(per_layer[0], per_layer[1], cfg.num_layers)


def compile_unit(config, devices, mesh_sizes: dict | None = None) -> dict:
  """compile_memory's report with the step's costs (step_costs) under "step"."""
  report = compile_memory(config, devices, mesh_sizes)
  report["step"] = step_costs(config, devices, mesh_sizes)
  return report
