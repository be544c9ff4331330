"""A unit's train metrics as JSON lines, for programs to read (`train_metrics.jsonl`).

One object per logged step (every `config.train.log_every_steps`, every evaluation
step and the last step), in step order:
  step          optimiser steps done (int)
  tokens        training tokens seen after this step (int)
  wall_time     Unix time the row was written (float)
  loss          cross-entropy of the step's batch (nats/token); also z_loss,
                total_loss (what was differentiated) and grad_norm
  lr            the learning rate of the step
  tokens_per_s  throughput since the previous logged step; null on the first
                logged step of a process, whose time includes compilation
Non-finite numbers are written as null, so every line is strict JSON.

Resume rule: a unit restored from its checkpoint at step S may have logged steps
after S before it was stopped; it trains and logs them again, so opening the log
for a run restored at S first drops the rows with step > S (rows up to S describe
the restored state's past and stay). Each line goes out in one flushed write; a
torn last line left by a kill is dropped on the next open. One writer per file.
"""
from __future__ import annotations

import json
import math
import os

FILENAME = "train_metrics.jsonl"


def _loads(line: str) -> dict | None:
  try:
    row = json.loads(line)
  except json.JSONDecodeError:
    return None
  return row if isinstance(row, dict) else None


def _parse_lines(path: str) -> tuple[list[dict], bool]:
  """(rows, clean): clean is False when the last line is torn or unterminated."""
  if not os.path.exists(path):
    return [], True
  with open(path, encoding="utf-8") as f:
    text = f.read()
  lines = text.split("\n")
  tail = lines.pop()  # '' when the file ends with a newline
  rows = []
  for lineno, line in enumerate(lines, start=1):
    row = _loads(line)
    if row is None:
      raise ValueError(f"{path}:{lineno}: not a JSON object; this file is written "
                       "only by scaling_jax.train_metrics: delete the line or the "
                       "file")
    rows.append(row)
  if tail and _loads(tail) is not None:  # else a write cut short by a kill
    rows.append(_loads(tail))
  return rows, not tail


def read_rows(path: str | os.PathLike) -> list[dict]:
  """The rows of a train-metrics file (a torn last line is skipped)."""
  return _parse_lines(os.fspath(path))[0]


def _strict(value):
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


class TrainMetricsLog:
  """Appends train-metric rows to `path`, first dropping rows after `resume_step`."""

  def __init__(self, path: str | os.PathLike, resume_step: int):
    self.path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
    rows, clean = _parse_lines(self.path)
    kept = [r for r in rows if r.get("step", 0) <= resume_step]
    if len(kept) < len(rows) or not clean:
      self._rewrite(kept)
    self._file = open(self.path, "a", encoding="utf-8")  # pylint: disable=consider-using-with

  def _rewrite(self, rows: list[dict]) -> None:
    # Beside the file and renamed over it: a kill leaves the old rows or the new.
    tmp = f"{self.path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
      f.writelines(json.dumps(r, allow_nan=False) + "\n" for r in rows)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, self.path)

  def append(self, row: dict) -> None:
    line = json.dumps({k: _strict(v) for k, v in row.items()}, allow_nan=False)
    self._file.write(line + "\n")
    self._file.flush()

  def close(self) -> None:
    self._file.close()
