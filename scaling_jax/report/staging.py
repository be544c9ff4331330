"""A folder of outputs replaced whole: readers see the old set or the new, never a mix.

    with staged_dir(report_dir) as staging:
      ...write every file into staging...

The new set is written beside the destination (`.NAME.staging-*`), marked complete,
then swapped in by two renames: destination -> `.NAME.old-*`, staging -> destination.
A kill between those renames leaves no destination but a complete staging folder
(and the old one); `recover` (run at the start of every write) finishes the swap, or
puts the old set back when the new one never completed, and removes leftovers.
The destination folder belongs to the study: files put there by hand are replaced.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib
import shutil
import tempfile

COMPLETE_MARK = ".complete"


def _leftovers(destination: pathlib.Path, kind: str) -> list[pathlib.Path]:
  return sorted(destination.parent.glob(f".{destination.name}.{kind}-*"))


def recover(destination) -> None:
  """Brings `destination` back to one whole set after a kill mid-swap; removes debris."""
  destination = pathlib.Path(destination)
  complete = [p for p in _leftovers(destination, "staging") if (p / COMPLETE_MARK).exists()]
  old = _leftovers(destination, "old")
  if not destination.exists():
    if complete:  # killed between the two renames: the new set was whole
      os.rename(complete[-1], destination)
    elif old:  # killed before the new set was marked complete
      os.rename(old[-1], destination)
  for path in _leftovers(destination, "staging") + _leftovers(destination, "old"):
    shutil.rmtree(path, ignore_errors=True)
  with contextlib.suppress(FileNotFoundError):  # killed just after the second rename
    (destination / COMPLETE_MARK).unlink()


@contextlib.contextmanager
def staged_dir(destination):
  """Yields an empty staging folder; on success it replaces `destination` whole.

  One writer at a time (a lock on the folder that holds it): two launchers that finish one
  workdir's sweep together each write the report, one after the other, and neither
  renames the folder from under the other.
  """
  destination = pathlib.Path(destination)
  destination.parent.mkdir(parents=True, exist_ok=True)
  # The lock is the parent folder's own (flock on its descriptor): no lock file is
  # left beside the report, and the kernel drops it if the writer dies.
  fd = os.open(destination.parent, os.O_RDONLY)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX)
    with _staged(destination) as staging:
      yield staging
  finally:
    os.close(fd)


@contextlib.contextmanager
def _staged(destination: pathlib.Path):
  recover(destination)
  staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{destination.name}.staging-",
                                          dir=destination.parent))
  try:
    yield staging
    (staging / COMPLETE_MARK).touch()
    old = destination.parent / f".{destination.name}.old-{os.getpid()}"
    if destination.exists():
      os.rename(destination, old)
    os.rename(staging, destination)
    (destination / COMPLETE_MARK).unlink()
    shutil.rmtree(old, ignore_errors=True)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
