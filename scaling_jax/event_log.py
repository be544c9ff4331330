"""A training unit's TensorBoard log: scalars and one HParams session, via tensorboardX.

The only module that imports tensorboardX (which needs no TensorFlow). Events go
through tensorboardX's synchronous `EventsWriter` rather than its `SummaryWriter`:
the latter queues events for a background thread that flushes every two minutes,
so a killed unit would lose its last scalars and a flush would not mean "on disk".

HParams: `hparams()` writes the session's hyperparameters (what a sweep is sliced
by) in the same event files as the scalars, so the session is the unit's own run
in TensorBoard and each metric's value is the last scalar written under its tag.
"""
from __future__ import annotations

import itertools
import os
import time
from typing import Iterable, Mapping

import numpy as np
from tensorboardX import summary as tbx_summary
from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto import event_pb2
from tensorboardX.proto import summary_pb2

# tensorboardX names a file by second and host and opens it with 'wb': a second log
# in the same directory and second (a quickly resumed unit) would truncate the first.
_FILE_NUMBERS = itertools.count()


def as_number(value) -> float | None:
  """`value` as a float when it is a real scalar (Python, numpy or jax), else None."""
  if value is None or isinstance(value, (str, bytes)):
    return None
  try:
    array = np.asarray(value)
  except (TypeError, ValueError):
    return None
  # bfloat16 and the float8 types are numpy 'V' kinds, known by their names.
  if array.shape != () or not (array.dtype.kind in "biuf"
                               or "float" in array.dtype.name):
    return None
  return float(array)


def _hparam_value(value):
  """What TensorBoard can show: str, bool or float; anything else as its str."""
  if isinstance(value, (str, bool)):
    return value
  number = as_number(value)
  return str(value) if number is None else number


class EventLog:
  """Appends summaries to a new event file in `logdir`; every write is flushed."""

  def __init__(self, logdir: str | os.PathLike):
    logdir = os.fspath(logdir)
    os.makedirs(logdir, exist_ok=True)
    # Zero-padded: TensorBoard reads a folder's files in name order, and within one
    # second '.10' would sort before '.9'.
    self._writer = EventsWriter(os.path.join(logdir, "events"),
                                f".{os.getpid()}.{next(_FILE_NUMBERS):06d}")

  def _write(self, step: int, summaries: Iterable[summary_pb2.Summary]) -> None:
    for summary in summaries:
      self._writer.write_event(event_pb2.Event(wall_time=time.time(), step=int(step),
                                               summary=summary))
    self._writer.flush()

  def scalars(self, step: int, values: Mapping) -> dict[str, float]:
    """Writes the numeric values (numpy and jax scalars too); returns those written."""
    numbers = {tag: as_number(v) for tag, v in values.items()}
    numbers = {tag: v for tag, v in numbers.items() if v is not None}
    if numbers:
      self._write(step, [summary_pb2.Summary(value=[
          summary_pb2.Summary.Value(tag=tag, simple_value=v)
          for tag, v in numbers.items()])])
    return numbers

  def hparams(self, step: int, hparams: Mapping, metric_tags: Iterable[str]) -> None:
    """One finished HParams session: `hparams` and, as its metrics, scalar tags of
    this log (TensorBoard shows each tag's last value, so write them first)."""
    values = {k: _hparam_value(v) for k, v in hparams.items() if v is not None}
    # Experiment (columns), session start (values), session end (status).
    self._write(step, tbx_summary.hparams(values, dict.fromkeys(metric_tags)))

  def close(self) -> None:
    self._writer.close()
