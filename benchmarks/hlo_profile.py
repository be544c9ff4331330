"""Where a compiled XLA program's time goes, by instruction: the matmuls (with their
FLOPs) apart from everything else, read from the optimized HLO text and a
jax.profiler trace. Used by benchmarks/step_profile.py.

On XLA:CPU the trace has one event per executed instruction ("thunk"), named as in
the optimized HLO (`ynn_fusion.14`, `dot.131`, `copy_bitcast_fusion.3`). Whether a
fusion is a matmul is not in its name (YNNPACK fusions hold dots or elementwise
work), so it is read from the computation the fusion calls.
"""
import collections
import dataclasses
import glob
import gzip
import json
import math
import os
import re

# Instructions whose events contain their body's events: counting them too would
# count the body twice.
_CONTAINERS = frozenset({"while", "call", "conditional", "async-start", "async-done"})
# Instructions that move data between devices (the data-parallel gradient sum).
_COLLECTIVES = frozenset({"all-reduce", "all-gather", "reduce-scatter", "all-to-all",
                          "collective-permute", "all-reduce-start", "all-gather-start",
                          "collective-permute-start"})

_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
_INSTRUCTION = re.compile(
    r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*?)\s([a-z][\w\-]*)\((.*)$")
_SHAPE = re.compile(r"^[a-z]\w*\[([\d,]*)\]")
_CALLS = re.compile(r"calls=%?([\w.\-]+)")
_CONTRACTING = re.compile(r"lhs_contracting_dims=\{([\d,]*)\}")


@dataclasses.dataclass(frozen=True)
class Instruction:
  opcode: str
  matmul_flops: float  # 0 for everything that is not a dot or holds none
  is_container: bool


def _dims(shape_text: str) -> list[int] | None:
  match = _SHAPE.match(shape_text.strip())
  if not match:
    return None
  return [int(d) for d in match.group(1).split(",") if d]


def _dot_flops(result_type: str, operands: str, shapes: dict) -> float:
  """2 x (result elements) x (contracted elements) of one dot instruction; its
  operands are named, their shapes looked up in `shapes` (name -> dims)."""
  result = _dims(result_type)
  lhs = shapes.get(operands.split(",")[0].strip().lstrip("%"))
  contracting = _CONTRACTING.search(operands)
  if result is None or lhs is None or contracting is None:
    return 0.0
  contracted = math.prod(lhs[int(d)] for d in contracting.group(1).split(",") if d)
  return 2.0 * math.prod(result) * contracted


def instructions(hlo_text: str) -> dict[str, Instruction]:
  """The instructions of an optimized HLO module that run on their own (each a
  trace event; not those inside a fusion), by name, with their matmul FLOPs (a
  fusion's are those of the dots in the computation it calls)."""
  lines = []  # (computation, name, result type, opcode, operands)
  computation = None
  for line in hlo_text.splitlines():
    if line.strip() == "}":
      computation = None
      continue
    header = _COMPUTATION.match(line)
    if header and "=" not in line.split("{")[0]:
      computation = header.group(1)
      continue
    match = _INSTRUCTION.match(line)
    if match:
      lines.append((computation, *match.groups()))
  # Operands are printed by name only; names are unique in a module.
  shapes = {name: _dims(result_type) for _, name, result_type, _, _ in lines}
  parsed = {}  # name -> (opcode, own dot FLOPs, called computation)
  members = collections.defaultdict(list)  # computation -> its instructions
  for computation, name, result_type, opcode, operands in lines:
    flops = _dot_flops(result_type, operands, shapes) if opcode == "dot" else 0.0
    calls = _CALLS.search(operands)
    parsed[name] = (opcode, flops, calls.group(1) if calls else None)
    if computation:
      members[computation].append(name)

  def flops_of(name: str, seen: frozenset = frozenset()) -> float:
    opcode, own, called = parsed[name]
    if opcode != "fusion" or not called or called in seen:
      return own
    return own + sum(flops_of(member, seen | {called}) for member in members[called])

  # What runs inside a fusion is part of the fusion's event, not one of its own.
  fused = {called for opcode, _, called in parsed.values() if opcode == "fusion"}
  inside_fusions = {name for computation in fused for name in members[computation]}
  return {name: Instruction(opcode, flops_of(name), opcode in _CONTAINERS)
          for name, (opcode, _, _) in parsed.items() if name not in inside_fusions}


@dataclasses.dataclass(frozen=True)
class OpTimes:
  """Per-step totals of a trace's executed instructions, per device."""
  matmul_ms: float
  matmul_gflop: float  # the FLOPs one device's matmuls did in matmul_ms
  collective_ms: float
  other_ms: float
  instructions: float  # executed per step
  top_other: list  # [(name, ms per step)], the largest non-matmul instructions


def op_times(trace_dir: str, hlo_text: str, steps: int, devices: int) -> OpTimes:
  """Sums a jax.profiler trace (written with create_perfetto_trace=True) of
  `steps` calls of the program `hlo_text` on `devices` devices running side by
  side: per-device, per-step milliseconds in matmuls and in everything else."""
  paths = glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"),
                    recursive=True)
  if not paths:
    raise FileNotFoundError(f"no perfetto_trace.json.gz under {trace_dir}")
  with gzip.open(max(paths, key=os.path.getmtime)) as f:
    events = json.load(f)
  events = events["traceEvents"] if isinstance(events, dict) else events
  program = instructions(hlo_text)
  durations, counts = collections.Counter(), collections.Counter()
  for event in events:
    name = event.get("name")
    if event.get("ph") == "X" and name in program and not program[name].is_container:
      durations[name] += event["dur"]  # microseconds
      counts[name] += 1
  if not durations:
    # Zeros would read as "no time in matmuls"; the trace is of another program.
    raise ValueError(f"no event of the trace under {trace_dir} names an instruction "
                     "of the HLO given: trace and HLO are of different programs")
  per_step = 1.0 / (steps * devices)

  def ms(names):
    return sum(durations[n] for n in names) * per_step / 1e3
  matmul = [n for n in durations if program[n].matmul_flops > 0]
  collective = [n for n in durations if program[n].opcode in _COLLECTIVES]
  other = [n for n in durations if n not in matmul and n not in collective]
  return OpTimes(
      matmul_ms=ms(matmul),
      matmul_gflop=sum(program[n].matmul_flops * counts[n] for n in matmul)
      * per_step / 1e9,
      collective_ms=ms(collective),
      other_ms=ms(other),
      instructions=sum(counts.values()) * per_step,
      top_other=[(n, d * per_step / 1e3) for n, d in
                 collections.Counter({n: durations[n] for n in other}).most_common(5)])
