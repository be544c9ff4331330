"""One trainer per unit: a file lock held while a unit's directory is trained.

Two launchers on one workdir would otherwise train the same unfinished unit into
one checkpoint directory and one records file. The process that trains a unit
(the worker, or the launcher itself under the inline backend) holds
`<unit dir>/train.lock` for as long as it trains; a launcher that finds the lock
held skips the unit, and waits for the lock's release before it fits (launch.run).
The lock is the OS's (flock, through filelock): the kernel releases it when its
process dies, so a killed trainer leaves no stale lock.
"""
from __future__ import annotations

import contextlib
import os

import filelock

LOCK_FILENAME = "train.lock"


def lock_path(run_dir: str | os.PathLike) -> str:
  return os.path.join(os.fspath(run_dir), LOCK_FILENAME)


class UnitBusy(RuntimeError):
  """Another process holds the unit's lock: it is training the unit."""

  def __init__(self, run_dir: str | os.PathLike):
    self.run_dir, self.lock_file = os.fspath(run_dir), lock_path(run_dir)
    super().__init__(f"{os.path.basename(os.path.normpath(self.run_dir))}: being "
                     f"trained by another launcher (lock {self.lock_file} is held)")


@contextlib.contextmanager
def hold(run_dir: str | os.PathLike):
  """Holds the unit's lock for the block; raises UnitBusy at once if it is held."""
  os.makedirs(run_dir, exist_ok=True)
  lock = filelock.FileLock(lock_path(run_dir))
  try:
    lock.acquire(blocking=False)
  except filelock.Timeout:
    raise UnitBusy(run_dir) from None
  try:
    yield
  finally:
    lock.release()


def is_held(run_dir: str | os.PathLike) -> bool:
  """Whether another process holds the unit's lock now (a probe, not a claim)."""
  if not os.path.exists(lock_path(run_dir)):  # nobody has locked it; create nothing
    return False
  try:
    with hold(run_dir):
      return False
  except UnitBusy:
    return True
