"""Which exceptions are the user's input refused, and which are bugs.

A refusal names the file, field and fix; the command line prints it as one `error:`
line (exit status 2), and nothing is lost by leaving out its stack. Everything
else is a bug and keeps its traceback. Refusals are ValueErrors and path errors
that this package (or a study config) raises itself; a ValueError raised inside
numpy, jax or scipy (numpy's LinAlgError is one) is not the user's fault, however
its type reads.
"""
from __future__ import annotations

import errno
import os
import pathlib


class Reported(RuntimeError):
  """An outcome that is not the input's fault and not a bug either (units that did
  not finish, say): said as one `error:` line with what to do, exit status 1, no stack."""
  exit_status = 1


PATH_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, FileExistsError,
               PermissionError)
_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
_CONFIGS_DIR = _PACKAGE_DIR.parent / "configs"


def _raised_here(error: BaseException) -> bool:
  """Whether the innermost frame of `error`'s traceback is this package's or a config's."""
  tb = error.__traceback__
  if tb is None:
    return True  # constructed, not raised: no third party's frame to blame
  while tb.tb_next is not None:
    tb = tb.tb_next
  path = pathlib.Path(os.path.abspath(tb.tb_frame.f_code.co_filename))
  return _PACKAGE_DIR in path.parents or _CONFIGS_DIR in path.parents


def is_refusal(error: BaseException) -> bool:
  """True for input the user can fix; False for a bug (keep its traceback)."""
  if isinstance(error, PATH_ERRORS):
    return True
  if not isinstance(error, ValueError):
    return False
  own_type = type(error).__module__.startswith("scaling_jax")
  return (own_type or type(error) is ValueError) and _raised_here(error)


# The disk, not the study: full, over quota, or read-only. Said without a stack,
# with what was kept: runs are written as they train and the report is swapped in
# whole, so a rerun after freeing space resumes and redraws.
_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def disk_problem(error: BaseException) -> str | None:
  """The message for a full or read-only disk, else None."""
  if not (isinstance(error, OSError) and error.errno in _DISK_ERRNOS):
    return None
  where = f" ({error.filename})" if error.filename else ""
  return (f"{os.strerror(error.errno)}{where}. Nothing finished is lost: finished "
          f"runs and checkpoints are kept and the previous report stays whole. Free "
          f"space (or pass a --workdir on another disk) and run the same command again: "
          f"it resumes training where it stopped and rewrites the report")
