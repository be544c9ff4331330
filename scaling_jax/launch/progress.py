"""Sweep progress as plain text lines on stderr, with an ETA from FLOPs.

Plain lines rather than a redrawn bar, so the output reads the same in a log
file, under SLURM and in a terminal. Units differ in cost by orders of magnitude,
so progress and the ETA count training FLOPs (6 N D), not units: the rate is
the FLOPs done since this launch divided by the time since it began.
"""
from __future__ import annotations

import os
import sys
import threading
import time

from scaling_jax.runs import table as runs_table


def _duration(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  h, rest = divmod(seconds, 3600)
  m, s = divmod(rest, 60)
  return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def partial_flops(unit) -> float:
  """FLOPs a unit has done: its latest checkpoint or evaluation, else 0."""
  if unit.finished():
    return unit.flops
  steps = []
  ckpt_dir = os.path.join(unit.workdir, "checkpoints")
  if os.path.isdir(ckpt_dir):
    # orbax renames a checkpoint to its bare step number once it is complete.
    steps = [int(d) for d in os.listdir(ckpt_dir) if d.isdigit()]
  tokens_per_step = unit.config.train.global_batch * unit.config.model.seq_len
  done = max(steps, default=0) * tokens_per_step
  path = os.path.join(unit.workdir, runs_table.RECORDS_FILENAME)
  if os.path.exists(path):
    done = max([done] + [r["tokens"] for r in runs_table.read_rows(path)])
  return min(runs_table.training_flops(unit.N, done), unit.flops)


class Progress:
  """Prints a line per finished unit and a summary every `every_s` seconds."""

  def __init__(self, units, every_s: float = 30.0, stream=None):
    self.units = list(units)
    self.every_s, self.stream = every_s, stream or sys.stderr
    self.total = sum(u.flops for u in self.units)
    self.running: dict[str, object] = {}
    self.outcome: dict[str, bool] = {}
    self._lock = threading.Lock()
    self._t0 = self._last = time.time()
    self._done0 = self._flops_done()
    skipped = sum(u.finished() for u in self.units)
    self._emit(f"{len(self.units)} units, {skipped} already finished; "
               f"{self.total:.3g} FLOPs in all, {self._done0 / max(self.total, 1):.0%}"
               f" done")

  def _emit(self, text: str) -> None:
    print(f"[sweep {time.strftime('%H:%M:%S')}] {text}", file=self.stream,
          flush=True)

  def _flops_done(self) -> float:
    return sum(partial_flops(u) for u in self.units)

  def summary(self) -> str:
    done = self._flops_done()
    elapsed = time.time() - self._t0
    rate = (done - self._done0) / elapsed if elapsed > 0 else 0.0
    eta = _duration((self.total - done) / rate) if rate > 0 else "?"
    finished = sum(u.finished() for u in self.units)
    return (f"{finished}/{len(self.units)} units finished, {len(self.running)} "
            f"running | {done:.3g}/{self.total:.3g} FLOPs "
            f"({done / max(self.total, 1):.0%}) | elapsed {_duration(elapsed)}"
            f" | ETA {eta}")

  def started(self, unit) -> None:
    with self._lock:
      self.running[unit.name] = time.time()
    self._emit(f"started {unit.name} (N={unit.N:.3g}, M={unit.M:g}, "
               f"{unit.flops:.3g} FLOPs) in {unit.workdir}")

  def ended(self, unit, ok: bool, detail: str = "") -> None:
    with self._lock:
      t = self.running.pop(unit.name, time.time())
      self.outcome[unit.name] = ok
    state = "finished" if ok else "FAILED"
    self._emit(f"{state} {unit.name} after {_duration(time.time() - t)}"
               f"{': ' + detail if detail else ''} | {self.summary()}")

  def tick(self, force: bool = False) -> None:
    """Prints the summary when `every_s` has passed since the last one."""
    if force or time.time() - self._last >= self.every_s:
      self._last = time.time()
      self._emit(self.summary())
