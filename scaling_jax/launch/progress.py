"""Sweep progress as plain text lines on stderr, with an ETA from measured rates.

Plain lines rather than a redrawn bar, so the output reads the same in a log
file, under SLURM and in a terminal. Units differ in cost by orders of magnitude,
so progress counts training FLOPs (6 N D), not units, and moves with each unit's
step log (`train_metrics.jsonl`), not only at its evaluations. The ETA (launch/eta.py)
comes from the running units' measured tokens/s and the measured fixed cost per
unit, laid out on the launcher's parallel slots; "?" until a unit has logged steps.
"""
from __future__ import annotations

import os
import sys
import threading
import time

from scaling_jax import train_metrics
from scaling_jax.launch import eta as eta_lib
from scaling_jax.runs import table as runs_table


def emit_line(stream, text: str) -> None:
  """One sweep line, `[sweep HH:MM:SS] text`, flushed (the launcher's and probe's)."""
  print(f"[sweep {time.strftime('%H:%M:%S')}] {text}", file=stream, flush=True)


def format_duration(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  h, rest = divmod(seconds, 3600)
  m, s = divmod(rest, 60)
  return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _step_log(unit) -> list[dict]:
  return train_metrics.read_rows(os.path.join(unit.workdir, train_metrics.FILENAME))


def partial_flops(unit, step_log: list[dict] | None = None) -> float:
  """FLOPs a unit has done: its latest logged step, checkpoint or evaluation, else 0
  (a ladder branch's fork step, which its trunk trained, at the least)."""
  if unit.finished():
    return unit.flops
  if step_log is None:
    step_log = _step_log(unit)
  steps = [unit.plan.branch_from_step]
  ckpt_dir = os.path.join(unit.workdir, "checkpoints")
  if os.path.isdir(ckpt_dir):
    # orbax renames a checkpoint to its bare step number once it is complete.
    steps = [int(d) for d in os.listdir(ckpt_dir) if d.isdigit()]
  done = unit.plan.tokens_at(max(steps, default=0))
  path = os.path.join(unit.workdir, runs_table.RECORDS_FILENAME)
  if os.path.exists(path):
    done = max([done] + [r["tokens"] for r in runs_table.read_rows(path)])
  done = max([done] + [r.get("tokens") or 0 for r in step_log])
  return min(unit.plan.flops_at(done), unit.flops)


class Progress:
  """Prints a line per finished unit and a summary every `every_s` seconds."""

  def __init__(self, units, every_s: float = 30.0, stream=None, parallel: int = 1,
               elsewhere=()):
    """`parallel`: units trained at once; `elsewhere`: units another launcher is
    training, left out of this launcher's ETA."""
    self.units = list(units)
    self.every_s, self.stream = every_s, stream or sys.stderr
    self.parallel = max(int(parallel), 1)
    self.total = sum(u.flops for u in self.units)
    self.running: dict[str, object] = {}
    self.outcome: dict[str, bool] = {}
    self._lock = threading.Lock()
    self._t0 = self._last = time.time()
    self.clocks = {u.name: eta_lib.UnitClock(u.name, u.N, u.flops) for u in self.units}
    for u in self.units:
      clock = self.clocks[u.name]
      clock.tokens_done = clock.tokens_at_launch = u.plan.tokens_for(partial_flops(u))
      if u.finished() or u in elsewhere:
        clock.ended = self._t0  # nothing left for this launcher to time
    self._done0 = sum(c.flops_of(c.tokens_done) for c in self.clocks.values())
    skipped = sum(u.finished() for u in self.units)
    self._emit(f"{len(self.units)} units, {skipped} already finished; "
               f"{self.total:.3g} FLOPs in all, {self._done0 / max(self.total, 1):.0%}"
               f" done")

  def _emit(self, text: str) -> None:
    emit_line(self.stream, text)

  def expect(self, expectations) -> None:
    """Takes the start-up probe's expected fixed cost and FLOP rate per unit
    (UnitClocks from launch/probe.py), from which the ETA starts."""
    for given in expectations:
      clock = self.clocks.get(given.name)
      if clock is not None:
        clock.expected_fixed, clock.expected_rate = given.expected_fixed, given.expected_rate

  def _measure(self) -> float:
    """Reads the running units' step logs into their clocks; returns FLOPs done."""
    with self._lock:
      running = dict(self.running)
    for unit in self.units:
      clock = self.clocks[unit.name]
      if unit.name not in running:
        continue
      rows = [r for r in _step_log(unit) if (r.get("wall_time") or 0) >= running[unit.name]]
      clock.rates = [r["tokens_per_s"] for r in rows if r.get("tokens_per_s")]
      if rows and clock.first_step_at is None:
        clock.first_step_at = rows[0]["wall_time"]
      clock.tokens_done = unit.plan.tokens_for(partial_flops(unit, rows))
    return sum(c.flops_of(c.tokens_done) for c in self.clocks.values())

  def seconds_left(self) -> float | None:
    self._measure()
    return eta_lib.seconds_left(list(self.clocks.values()), time.time(), self.parallel)

  def summary(self) -> str:
    done = self._measure()
    elapsed = time.time() - self._t0
    left = eta_lib.seconds_left(list(self.clocks.values()), time.time(), self.parallel)
    eta = "?" if left is None else format_duration(left)
    finished = sum(u.finished() for u in self.units)
    return (f"{finished}/{len(self.units)} units finished, {len(self.running)} "
            f"running | {done:.3g}/{self.total:.3g} FLOPs "
            f"({done / max(self.total, 1):.0%}) | elapsed {format_duration(elapsed)}"
            f" | ETA {eta}")

  def started(self, unit) -> None:
    with self._lock:
      self.running[unit.name] = time.time()
      self.clocks[unit.name].started = self.running[unit.name]
      self.clocks[unit.name].ended = None
    self._emit(f"started {unit.name} (N={unit.N:.3g}, M={unit.M:g}, "
               f"{unit.flops:.3g} FLOPs) in {unit.workdir}")

  def ended(self, unit, ok: bool, detail: str = "") -> None:
    self._measure()  # the unit's last step-log readings, while it counts as running
    with self._lock:
      t = self.running.pop(unit.name, time.time())
      self.outcome[unit.name] = ok
      clock = self.clocks[unit.name]
      clock.ended = time.time()
      if ok:
        clock.tokens_done = clock.tokens
    state = "finished" if ok else "FAILED"
    self._emit(f"{state} {unit.name} after {format_duration(time.time() - t)}"
               f"{': ' + detail if detail else ''} | {self.summary()}")

  def skipped(self, unit, detail: str) -> None:
    """A started unit that this launcher did not train after all (not a failure)."""
    with self._lock:
      self.running.pop(unit.name, None)
      self.clocks[unit.name].ended = time.time()  # not this launcher's to wait for
    self._emit(f"skipped {unit.name}: {detail}")

  def tick(self, force: bool = False) -> None:
    """Prints the summary when `every_s` has passed since the last one."""
    if force or time.time() - self._last >= self.every_s:
      self._last = time.time()
      self._emit(self.summary())
