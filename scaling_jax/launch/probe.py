r"""The sweep's expected wall time at start-up, from a quick probe of this machine.

Before training, the launcher times on this machine what a unit pays, in a child
process started as a worker would be (`python -m scaling_jax.launch.probe SPEC`,
on the first device slice): its start-up (Python and the imports of the trainer),
opening its data and building its evaluators, and for each distinct model shape
(model config, global batch, seq_len) the compilation of the train step and the
median time of a few steps with random tokens, on the mesh the unit trains on (its
config.mesh over the slice's devices: one per core by default), then one
evaluation pass of the smallest shape, twice (the first compiles), and one
checkpoint write. With more than MAX_PROBED_SHAPES shapes only the smallest and
the largest are timed; the others' times come from a straight line through those
two in log(seconds) against log(FLOPs per step). Each unit's estimate then follows
the model of launch/eta.py: its fixed cost (start-up, data, compilations, its
evaluations, its last checkpoint) plus its training FLOPs at its shape's FLOP
rate, laid out on the launcher's parallel slots; one line on stderr says it.

The probe runs only where it measures what the units will run on and costs little
beside them: CPU, with the local or inline backend (on a GPU the launcher must not
take the device the workers need), more than one cheap unit or a cheap sweep to
train, and
config.launch.estimate on. SKIP_ENV=1 turns it off too, so that test suites
running many small sweeps do not pay it (tests/conftest.py).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

from scaling_jax import plan as plan_lib
from scaling_jax.launch import eta as eta_lib

SKIP_ENV = "SCALING_JAX_NO_ESTIMATE"
# Above this many shapes, time the smallest and largest only and interpolate:
# compiling every shape would cost more than the estimate is worth.
MAX_PROBED_SHAPES = 4
# A lone unit below this is about as cheap as the probe itself (a minute or less
# of training on two CPU cores): no estimate is worth that.
CHEAP_UNIT_FLOPS = 5e11
# Nor is a sweep below this in all: configs/grid.py:smoke (6.4e11 FLOPs) trains in
# about 75 s on two cores, and probing its three shapes took 37 s.
CHEAP_SWEEP_FLOPS = 1e12
STEP_ROUNDS = 3        # timed rounds of steps per shape; their median counts
ROUND_SECONDS = 0.3    # each round runs about this long, so short steps average out
TIMEOUT_S = 300.0      # a probe still running by then is abandoned, without estimate
_BACKENDS = ("local", "inline")


@dataclasses.dataclass(frozen=True)
class Shape:
  """A distinct compiled train step of the sweep, and the first unit that has it."""
  key: str
  unit: object  # launch.units.WorkUnit
  flops_per_step: float  # 6 N x tokens per step, as the runs table counts FLOPs


def shapes_of(units) -> list[Shape]:
  """The distinct (model config, global batch, seq_len) of `units`, smallest first."""
  shapes = {}
  for unit in units:
    cfg = unit.config
    key = json.dumps([cfg.model.to_dict(), cfg.train.global_batch, cfg.model.seq_len],
                     sort_keys=True, default=str)
    if key not in shapes:
      shapes[key] = Shape(key, unit, unit.plan.flops_at(unit.plan.tokens_per_step))
  return sorted(shapes.values(), key=lambda s: s.flops_per_step)


def shapes_to_probe(shapes: list[Shape]) -> list[Shape]:
  """All shapes when few, else the smallest and the largest (to interpolate)."""
  if len(shapes) <= MAX_PROBED_SHAPES:
    return list(shapes)
  return [shapes[0], shapes[-1]]


def loglog(x: float, points: list[tuple[float, float]]) -> float:
  """y at `x` on the line through `points` (x, y > 0) in log-log: exact at a
  point, a power law between the nearest two, the end segments beyond them."""
  points = sorted(points)
  for px, py in points:
    if px == x:
      return py
  if len(points) == 1:
    return points[0][1]
  i = min(max(sum(px < x for px, _ in points), 1), len(points) - 1)
  (x0, y0), (x1, y1) = points[i - 1], points[i]
  slope = math.log(y1 / y0) / math.log(x1 / x0)
  return y0 * (x / x0) ** slope


def skip_reason(launch_cfg, todo, gpus: list[str] | None = None) -> str:
  """Why no probe runs for these units ('' when it does)."""
  if os.environ.get(SKIP_ENV) == "1":
    return f"{SKIP_ENV}=1"
  if not launch_cfg.get("estimate", True):
    return "config.launch.estimate=False"
  if launch_cfg.backend not in _BACKENDS:
    return f"the {launch_cfg.backend} backend trains elsewhere"
  if gpus is None and os.environ.get("JAX_PLATFORMS", "").split(",")[0] != "cpu":
    from scaling_jax.launch import devices  # pylint: disable=g-import-not-at-top
    gpus = devices.visible_gpus()
  if gpus:
    return "GPUs are visible: the probe would take the device the units need"
  if not todo:
    return "nothing to train"
  if len(todo) == 1 and todo[0].flops < CHEAP_UNIT_FLOPS:
    return "one cheap unit"
  if sum(u.flops for u in todo) < CHEAP_SWEEP_FLOPS:
    return "a cheap sweep, done in about the time the probe would take"
  return ""


# ----------------------------------------------------------------- the launcher side


def _probe_env(launch_cfg) -> dict:
  """A worker's environment: the local pool's first slice (cores, host devices)."""
  from scaling_jax.launch import devices  # pylint: disable=g-import-not-at-top
  env = dict(os.environ)
  if launch_cfg.backend == "local":
    env.update(devices.slice_envs(launch_cfg)[0])
  env[devices.worker.DIE_WITH_PARENT_ENV] = "1"  # a killed launcher leaves no probe
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
  return env


def measure(shapes: list[Shape], launch_cfg, timeout_s: float = TIMEOUT_S) -> dict:
  """Runs the probe child on `shapes` (smallest first); returns its timings, with
  `startup_s` (process start to trainer imported) and `exit_s` (work done to exit)."""
  with tempfile.TemporaryDirectory(prefix="scaling_jax_probe_") as tmp:
    spec_path, result_path = os.path.join(tmp, "spec.json"), os.path.join(tmp, "out.json")
    with open(spec_path, "w", encoding="utf-8") as f:
      json.dump(dict(configs=[s.unit.config.to_dict() for s in shapes],
                     result=result_path, checkpoints=os.path.join(tmp, "ckpt")), f,
                default=str)
    python = launch_cfg.get("python") or sys.executable
    spawned = time.time()
    proc = subprocess.run([python, "-m", "scaling_jax.launch.probe", spec_path],
                          env=_probe_env(launch_cfg), capture_output=True, text=True,
                          timeout=timeout_s, check=False)
    ended = time.time()
    if proc.returncode or not os.path.exists(result_path):
      tail = (proc.stderr or "").strip().splitlines()[-3:]
      raise RuntimeError(f"probe exited with code {proc.returncode}: {' | '.join(tail)}")
    with open(result_path, encoding="utf-8") as f:
      timings = json.load(f)
  timings["startup_s"] = timings["imported_at"] - spawned
  timings["exit_s"] = max(ended - timings["done_at"], 0.0)
  return timings


def unit_clocks(todo, shapes: list[Shape], timings: dict, backend: str
                ) -> list[eta_lib.UnitClock]:
  """Each unit's expected fixed cost and FLOP rate, from the probe's `timings`
  of the shapes it timed (`timings['shapes']`, in the order of shapes_to_probe)."""
  probed = shapes_to_probe(shapes)
  step = [(s.flops_per_step, t["step_s"]) for s, t in zip(probed, timings["shapes"])]
  compile_ = [(s.flops_per_step, t["compile_s"]) for s, t in zip(probed, timings["shapes"])]
  smallest = probed[0].flops_per_step
  base_step, base_compile = loglog(smallest, step), loglog(smallest, compile_)
  # Inline units share this process: Python and the imports are paid once, not per unit.
  per_process = (timings["startup_s"] + timings["exit_s"]) if backend == "local" else 0.0
  by_key = {s.key: s for s in shapes}
  clocks = []
  for unit in todo:
    shape = by_key[shapes_of([unit])[0].key]
    step_s = loglog(shape.flops_per_step, step)
    compile_s = loglog(shape.flops_per_step, compile_)
    # Evaluations are forward passes of the same model: their run time scales
    # like the train step's, their compilation like its compilation.
    eval_run = timings["eval_s"] * step_s / base_step
    eval_compile = timings["eval_compile_s"] * compile_s / base_compile
    plan = unit.plan
    done_steps = _steps_done(unit, plan)
    evals = sum(s > done_steps for s in plan_lib.eval_steps(plan))
    fixed = (per_process + timings["setup_s"] + compile_s + eval_compile
             + evals * eval_run + timings["checkpoint_s"])
    clock = eta_lib.UnitClock(unit.name, unit.N, unit.flops,
                              expected_fixed=fixed,
                              expected_rate=shape.flops_per_step / step_s)
    clock.tokens_done = clock.tokens_at_launch = done_steps * plan.tokens_per_step
    clocks.append(clock)
  return clocks


def _steps_done(unit, plan) -> int:
  from scaling_jax.launch import progress as progress_lib  # pylint: disable=g-import-not-at-top
  tokens = plan.tokens_for(progress_lib.partial_flops(unit))
  return int(tokens // plan.tokens_per_step)


PROBE_FILENAME = "probe.json"


def _keep(todo, timings: dict, clocks) -> None:
  """WORKDIR/probe.json: the timings and each unit's expectations, so an estimate
  can be checked against the sweep afterwards (tests/data/record_sweep.py)."""
  workdir = os.path.dirname(os.path.dirname(todo[0].workdir))  # WORKDIR/runs/<unit>
  record = dict(timings=timings, units={c.name: dict(
      expected_fixed=c.expected_fixed, expected_rate=c.expected_rate,
      tokens_at_launch=c.tokens_at_launch) for c in clocks})
  path = os.path.join(workdir, PROBE_FILENAME)
  os.makedirs(workdir, exist_ok=True)
  with open(f"{path}.tmp", "w", encoding="utf-8") as f:
    json.dump(record, f, indent=1, default=float)
  os.replace(f"{path}.tmp", path)


def announce(todo, launch_cfg, parallel: int, stream=None,
             progress=None) -> float | None:
  """Probes this machine and prints the sweep's expected wall time in one line;
  returns it (seconds), or None when skipped or the probe failed (said in a line).
  With `progress`, its ETA starts from the same expectations (Progress.expect)."""
  from scaling_jax.launch import progress as progress_lib  # pylint: disable=g-import-not-at-top
  stream = stream or sys.stderr
  if skip_reason(launch_cfg, todo):
    return None

  shapes = shapes_of(todo)
  probed = shapes_to_probe(shapes)
  started = time.time()
  try:
    timings = measure(probed, launch_cfg)
  except (RuntimeError, OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
    progress_lib.emit_line(stream, f"no wall-time estimate: the start-up probe failed "
                           f"({e}); training anyway")
    return None
  clocks = unit_clocks(todo, shapes, timings, launch_cfg.backend)
  seconds = eta_lib.expected_seconds(clocks, parallel)
  if progress is not None:
    progress.expect(clocks)
  _keep(todo, timings, clocks)
  flops = sum(u.flops for u in todo)
  progress_lib.emit_line(
      stream, f"expected wall time ~{progress_lib.format_duration(seconds)} for "
      f"{len(todo)} units ({flops:.3g} FLOPs) on this machine (probe: {len(probed)} "
      f"of {len(shapes)} shapes, {time.time() - started:.0f}s)")
  return seconds


# ------------------------------------------------------------------- the probe child


def _timed(fn):
  start = time.perf_counter()
  out = fn()
  return out, time.perf_counter() - start


def _probe_shape(config, mesh, train, optim, jax, np):
  """(program, state, seconds to init and compile, median seconds per step)."""
  cfg = plan_lib.model_config(config)
  tx = optim.make_optimizer(config.optim)
  lr = config.optim.peak_lr
  rng = np.random.default_rng(0)
  batch = rng.integers(0, cfg.vocab_size, (config.train.global_batch, cfg.seq_len + 1),
                       dtype=np.int32)

  def first_step():
    program = train.Program(cfg, tx, mesh)
    state, _ = program.step(program.init(config.seed), batch, lr)
    return program, jax.block_until_ready(state)

  (program, state), compile_s = _timed(first_step)
  state, one = _timed(lambda: jax.block_until_ready(program.step(state, batch, lr)[0]))
  per_round = max(1, min(100, round(ROUND_SECONDS / max(one, 1e-6))))
  rounds = []
  for _ in range(STEP_ROUNDS):
    start = time.perf_counter()
    for _ in range(per_round):
      state, metrics = program.step(state, batch, lr)
      float(metrics["loss"])  # the train loop reads each step's loss
    rounds.append((time.perf_counter() - start) / per_round)
  return program, state, compile_s, statistics.median(rounds)


def _child(spec_path: str) -> None:
  # pylint: disable=g-import-not-at-top
  import jax
  import ml_collections
  import numpy as np
  from scaling_jax import checkpoint
  from scaling_jax import data
  from scaling_jax import optim
  from scaling_jax import sharding
  from scaling_jax import train
  from scaling_jax.evals import base as evals_base
  imported_at = time.time()
  with open(spec_path, encoding="utf-8") as f:
    spec = json.load(f)
  configs = [ml_collections.ConfigDict(c) for c in spec["configs"]]
  smallest = configs[0]

  def setup():
    ds = data.prepare_dataset(smallest.data, None)
    return ds, evals_base.build_evaluators(smallest.get("evals"), ds)

  (_, evaluators), setup_s = _timed(setup)
  shapes, evals, checkpoint_s = [], [], 0.0
  for i, config in enumerate(configs):
    # The unit's own mesh over the devices a worker of this slice has: a one-device
    # mesh would time a step 1.3x slower than units on one device per core run it.
    mesh = sharding.make_mesh(config.mesh)
    program, state, compile_s, step_s = _probe_shape(config, mesh, train, optim, jax, np)
    shapes.append(dict(compile_s=compile_s, step_s=step_s, devices=int(mesh.devices.size)))
    if i:
      continue
    for _ in range(2):  # the first pass compiles the forward pass, the second not
      logits_fn = program.logits_fn(state["params"])
      evals.append(_timed(lambda: [list(e.evaluate(logits_fn)) for e in evaluators])[1])

    def save():  # a unit's last checkpoint: written, then waited for at exit
      ckpt = checkpoint.Checkpointer(spec["checkpoints"], 1)
      ckpt.maybe_save(1, state, force=True)
      ckpt.close()

    checkpoint_s = _timed(save)[1]
  result = dict(imported_at=imported_at, setup_s=setup_s, shapes=shapes,
                eval_s=evals[1], eval_compile_s=max(evals[0] - evals[1], 0.0),
                checkpoint_s=checkpoint_s, done_at=time.time())
  with open(spec["result"], "w", encoding="utf-8") as f:
    json.dump(result, f)


if __name__ == "__main__":
  from scaling_jax.launch import worker as worker_lib  # pylint: disable=g-import-not-at-top
  worker_lib._apply_environment()  # pylint: disable=protected-access
  _child(sys.argv[1])
