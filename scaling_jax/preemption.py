"""Stop requests that a train loop honours at its next step, with that step saved.

A preemption (the local pool's SIGTERM, SLURM's signal through submitit) should
cost no training. A signal handler cannot save a checkpoint itself: it runs
between two bytecodes of the train loop, where the state may already be donated
to the step in flight. So the handler made by `handler()` only records the
request while a loop runs inside `honoured()`; the loop (train.train_run) sees
`requested()` after its step, saves that step in full and raises `Stopped`, and
leaving `honoured()` runs the request's deferred action (submitit's requeue).
Outside a train loop (start-up, compilation, between units) there is no step to
save and a request acts at once, as the signal always did; so does a second
signal while one is pending (a loop stuck in a long evaluation), unless it comes
within DUPLICATE_WINDOW_S of the first: one stop often arrives as two signals
(Linux sends a parent-death signal each time the child is reparented, once to
another thread of a dying multi-threaded launcher and once more to init; a
scheduler may signal both the process group and the process), and acting on the
echo would interrupt the very save the first one asked for.

In a multi-process run one process cannot stop alone without hanging the
others' collectives: there a request acts at once too, and the coordinated stop
is orbax's preemption sync point (checkpoint.Checkpointer.reached_preemption),
which jax.distributed raises on every process when any of them gets SIGTERM.
"""
from __future__ import annotations

import contextlib
import time
from typing import Callable, Optional

import jax

Action = Optional[Callable[[], None]]


class Stopped(KeyboardInterrupt):
  """The train loop saved step `step` in full on a stop request, then stopped.

  A KeyboardInterrupt, so whatever unwinds on Ctrl-C unwinds on it too.
  """

  def __init__(self, step: int):
    super().__init__(f"stopped on request at step {step}, which is saved")
    self.step = step


DUPLICATE_WINDOW_S = 5.0  # a second signal sooner than this is the same stop

_loops_running = 0
_pending: list[Action] = []  # at most one request: its deferred action
_pending_since = 0.0  # when that request came (the handler's clock)


def _act(action: Action) -> None:
  if action is None:
    raise KeyboardInterrupt
  action()


def handler(action: Action = None, clock: Callable[[], float] = time.monotonic):
  """A signal handler that defers `action` to the running train loop's next step.

  `action` (default: raise KeyboardInterrupt) runs at once when no loop runs,
  the run spans several processes, or a request has been pending for
  DUPLICATE_WINDOW_S or more; a signal sooner after a pending one is ignored.
  """

  def on_signal(signum, frame):
    global _pending_since
    del signum, frame
    if not _loops_running or jax.process_count() != 1:
      _act(action)
    elif not _pending:
      _pending.append(action)
      _pending_since = clock()
    elif clock() - _pending_since >= DUPLICATE_WINDOW_S:
      _act(action)

  return on_signal


def requested() -> bool:
  """Whether a stop was requested since the running loop began."""
  return bool(_pending)


@contextlib.contextmanager
def honoured():
  """Marks a train loop that checks `requested()` after every step.

  On leaving, a pending request's action runs: after the loop saved its step
  and raised Stopped (a request with no action lets Stopped stand), or when the
  request came too late for a loop that finished. An error in the loop
  propagates as it is, the request dropped with the process it would stop.
  """
  global _loops_running
  _loops_running += 1
  try:
    yield
  except Stopped:
    _loops_running -= 1
    action = _pending.pop() if _pending else None
    if action is not None:
      action()
    raise
  except BaseException:
    _loops_running -= 1
    _pending.clear()
    raise
  _loops_running -= 1
  if _pending:
    _act(_pending.pop())
