r"""The process that trains work units: `python -m scaling_jax.launch.worker DIR...`.

Each DIR is a unit's directory holding its `unit_config.json` (written by the
launcher); the units train one after another and finished ones are skipped. The
local pool, XManager and SLURM backends all run this, so a unit trains the same
way whichever launched it.

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


def _interrupt(signum, frame):
  del signum, frame
  raise KeyboardInterrupt


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


def train_units(run_dirs) -> int:
  """Trains each unfinished unit of `run_dirs` in turn; returns how many trained."""
  from scaling_jax.runs import table as runs_table  # pylint: disable=g-import-not-at-top
  from scaling_jax import train  # pylint: disable=g-import-not-at-top
  trained = 0
  for run_dir in run_dirs:
    if runs_table.is_finished(run_dir):
      continue
    train.train_run(load_unit_config(run_dir), run_dir)
    trained += 1
  return trained


class UnitTask:
  """A picklable callable for submitit: trains the units of `run_dirs`.

  Its `checkpoint` makes a preempted or timed-out SLURM job requeue itself; the
  requeued job resumes from the unit's own orbax checkpoint.
  """

  def __init__(self, run_dirs):
    self.run_dirs = list(run_dirs)

  def __call__(self) -> int:
    _apply_environment()
    return train_units(self.run_dirs)

  def checkpoint(self):
    import submitit  # pylint: disable=g-import-not-at-top
    return submitit.helpers.DelayedSubmission(UnitTask(self.run_dirs))


def main(argv) -> None:
  if len(argv) < 2:
    sys.exit(f"usage: python -m scaling_jax.launch.worker RUN_DIR...\n{__doc__}")
  _apply_environment()
  # SIGTERM (the pool stopping, a dying launcher) unwinds like Ctrl-C, so the
  # train loop's `finally` waits for a checkpoint write in flight. Not done
  # under submitit, which handles SLURM's signals itself (UnitTask).
  signal.signal(signal.SIGTERM, _interrupt)
  from absl import logging  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.INFO)
  try:
    train_units(argv[1:])
  except KeyboardInterrupt:
    print("interrupted; the unit resumes from its last checkpoint", file=sys.stderr)
    sys.exit(INTERRUPTED_EXIT)


if __name__ == "__main__":
  main(sys.argv)
