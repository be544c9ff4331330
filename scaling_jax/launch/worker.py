r"""The process that trains work units: `python -m scaling_jax.launch.worker DIR...`.

Each DIR is a unit's directory holding its `unit_config.json` (written by the
launcher); the units train one after another and finished ones are skipped. The
local pool, XManager and SLURM backends all run this, so a unit trains the same
way whichever launched it.

A unit trains under its lock (launch/unit_lock.py); a unit whose lock another
process holds is skipped with one line on stderr, and the worker exits with
BUSY_EXIT once the others are done. SIGTERM (and, under submitit, its
preemption signal) stops the unit at its next step with that step saved
(scaling_jax.preemption); the worker then exits with INTERRUPTED_EXIT.

Environment set by the launcher (read before JAX starts):
  SCALING_JAX_CPUS          comma-separated CPU ids this process may run on
  SCALING_JAX_DIE_WITH_PARENT=1   exit when the launcher dies (local pool), so a
                            killed sweep leaves no orphan training processes
"""
from __future__ import annotations

import json
import os
import signal
import sys

CPUS_ENV = "SCALING_JAX_CPUS"
INTERRUPTED_EXIT = 130  # the launcher tells a resumable stop by this exit code
BUSY_EXIT = 75  # EX_TEMPFAIL: a unit was skipped, another launcher trains it
DIE_WITH_PARENT_ENV = "SCALING_JAX_DIE_WITH_PARENT"


def _die_with_parent() -> None:
  if not sys.platform.startswith("linux"):
    return
  import ctypes  # pylint: disable=g-import-not-at-top
  pr_set_pdeathsig = 1
  libc = ctypes.CDLL(None, use_errno=True)
  libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
  if os.getppid() == 1:  # the launcher died before prctl took effect
    sys.exit("launcher exited; not training")


def _apply_environment() -> None:
  cpus = os.environ.get(CPUS_ENV)
  if cpus and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
  if os.environ.get(DIE_WITH_PARENT_ENV) == "1":
    _die_with_parent()


def load_unit_config(run_dir: str):
  """The unit config the launcher wrote into `run_dir`."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from scaling_jax.launch import units  # pylint: disable=g-import-not-at-top
  path = os.path.join(run_dir, units.UNIT_CONFIG_FILENAME)
  with open(path, encoding="utf-8") as f:
    return ml_collections.ConfigDict(json.load(f))


def train_units(run_dirs) -> list[str]:
  """Trains each unfinished unit of `run_dirs` in turn, each under its lock;
  returns the units skipped because another process holds their lock."""
  from scaling_jax.launch import unit_lock  # pylint: disable=g-import-not-at-top
  from scaling_jax.runs import table as runs_table  # pylint: disable=g-import-not-at-top
  from scaling_jax import train  # pylint: disable=g-import-not-at-top
  busy = []
  for run_dir in run_dirs:
    if runs_table.is_finished(run_dir):
      continue
    try:
      with unit_lock.hold(run_dir):
        # Checked again under the lock: its last holder may just have finished it.
        if not runs_table.is_finished(run_dir):
          train.train_run(load_unit_config(run_dir), run_dir)
    except unit_lock.UnitBusy as e:
      print(f"skipping {e}", file=sys.stderr, flush=True)
      busy.append(run_dir)
  return busy


class UnitTask:
  """A picklable callable for submitit: trains the units of `run_dirs`.

  submitit's preemption/timeout signal is deferred to the train loop's next
  step, which is saved; then submitit calls `checkpoint`, which requeues the
  job, and the requeued job resumes from that step.
  """

  def __init__(self, run_dirs):
    self.run_dirs = list(run_dirs)

  def __call__(self) -> list[str]:
    _apply_environment()
    _defer_submitit_signal()
    return train_units(self.run_dirs)

  def checkpoint(self):
    import submitit  # pylint: disable=g-import-not-at-top
    return submitit.helpers.DelayedSubmission(UnitTask(self.run_dirs))


def _defer_submitit_signal() -> None:
  """Routes submitit's handler of its preemption signal through the train loop.

  Run at once, that handler requeues and exits mid-step, losing the steps
  since the last checkpoint; deferred, it runs after the current step is saved.
  """
  import submitit  # pylint: disable=g-import-not-at-top
  from scaling_jax import preemption  # pylint: disable=g-import-not-at-top
  signum = getattr(signal, "SIG" + submitit.JobEnvironment.USR_SIG)
  requeue = signal.getsignal(signum)
  if callable(requeue):  # not under submitit (a test, a direct call): nothing to defer
    signal.signal(signum, preemption.handler(lambda: requeue(signum, None)))


def main(argv) -> None:
  if len(argv) < 2:
    sys.exit(f"usage: python -m scaling_jax.launch.worker RUN_DIR...\n{__doc__}")
  _apply_environment()
  from scaling_jax import preemption  # pylint: disable=g-import-not-at-top
  # SIGTERM (the pool stopping, a dying launcher, a scheduler) stops the train
  # loop at its next step, saved; outside the loop it unwinds like Ctrl-C. Not
  # done under submitit, which handles SLURM's signals itself (UnitTask).
  signal.signal(signal.SIGTERM, preemption.handler())
  from absl import logging  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.INFO)
  try:
    busy = train_units(argv[1:])
  except preemption.Stopped as e:
    _exit_now(f"{e}; the unit resumes from there")
  except KeyboardInterrupt:
    _exit_now("interrupted; the unit resumes from its last checkpoint")
  if busy:
    sys.exit(BUSY_EXIT)


def _exit_now(message: str) -> None:
  """Exits with INTERRUPTED_EXIT without waiting for other threads.

  Python's normal exit joins every non-daemon thread, and a save abandoned by an
  interrupt can leave one of orbax's waiting forever; a worker whose launcher
  died would then never exit. What the unit keeps is on disk by now: committed
  checkpoints and the runs table, both written so that a kill cannot tear them.
  """
  print(message, file=sys.stderr)
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(INTERRUPTED_EXIT)  # pylint: disable=protected-access


if __name__ == "__main__":
  main(sys.argv)
