"""What every source of runs gives the fit (see scaling_jax/runs/__init__.py)."""
from __future__ import annotations

import dataclasses
import pathlib


@dataclasses.dataclass
class Runs:
  """What a source gives the fit."""
  rows: list[dict]  # runs-table rows, every step of every run
  task_baselines: dict[str, float]  # chance accuracy of each acc/<task>, in [0, 1]
  where: str  # the folder read, for messages and the report
  notes: list[str] = dataclasses.field(default_factory=list)  # said in console + report


class RunsError(ValueError):
  """`config.runs` is wrong or its source cannot be read; the message says which."""


def not_utf8(path, error: UnicodeDecodeError) -> str:
  """The message for a file that is not UTF-8: which file, which byte, the fix."""
  path = pathlib.Path(path)
  byte = error.object[error.start:error.start + 1].hex()
  return (f"{path}: not UTF-8 text (byte 0x{byte} cannot be decoded); save it as UTF-8, "
          f"e.g. from Latin-1: iconv -f latin1 -t utf-8 {path.name} > "
          f"{path.stem}.utf8{path.suffix}")
