"""What every source of runs gives the fit (see scaling_jax/runs/__init__.py)."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Runs:
  """What a source gives the fit."""
  rows: list[dict]  # runs-table rows, every step of every run
  task_baselines: dict[str, float]  # chance accuracy of each acc/<task>, in [0, 1]
  where: str  # the folder read, for messages and the report
  notes: list[str] = dataclasses.field(default_factory=list)  # said in console + report


class RunsError(ValueError):
  """`config.runs` is wrong or its source cannot be read; the message says which."""
