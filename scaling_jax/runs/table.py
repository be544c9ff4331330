"""The runs table: one row per evaluated (run, step), the one interface between
training and fitting.

Rows are plain dicts stored as JSON lines. Required columns:

  run     stable name of the run (str)
  N       parameters, as counted in the trained tree (int)
  tokens  training tokens seen when the row was written (int)
  M       planned tokens per parameter of the run (float)
  flops   training FLOPs at this row (6 * N * tokens unless a better count is given)
  step    optimiser step of the row (int)
  final   True on the last evaluation of the run

Optional columns: dataset, model, seed, config (JSON string), and metrics named
`loss/<eval set>`, `loss_ci/<eval set>` (half-width of the 95% interval) and
`acc/<task>` (top-1 accuracy in [0, 1]).

A run whose training loss became non-finite ends with one row marked
`diverged: true` (and final) at the step where it diverged, with no metrics: the
run is finished (a re-launch does not retrain it) but measures nothing, and
`split_diverged` leaves it out of fits.

Each run appends to its own file; a whole batch of rows goes out in one `write` on
a file opened for appending, so a killed process leaves at most an unterminated
last line, which readers skip with a warning instead of failing. The next append
starts on a fresh line: a torn tail that is not a whole row is moved into a
sidecar `records.jsonl.torn-<time>` (nothing is silently destroyed) and cut off;
one that is a whole row short of its newline is kept and terminated, as readers
already count it. That repair assumes ONE writer per file (each run appends only
to its own records, as the launcher guarantees); readers may run at any time.
"""
from __future__ import annotations

import json
import math
import os
import pathlib
import time
import warnings
from typing import Iterable, Sequence

from scaling_jax.runs import common

REQUIRED_COLUMNS = ("run", "N", "tokens", "M", "flops", "step", "final")
RECORDS_FILENAME = "records.jsonl"
LOSS_PREFIX = "loss/"
LOSS_CI_PREFIX = "loss_ci/"
ACC_PREFIX = "acc/"
# How many examples each accuracy was scored on: its evaluation noise (binomial).
ACC_COUNT_PREFIX = "acc_n/"
DIVERGED_COLUMN = "diverged"


class RecordsError(ValueError):
  """A runs table (or a row headed for one) is malformed."""


def validate_row(row: dict, where: str = "row") -> None:
  """Raises RecordsError naming `where` and the field when a row is malformed."""
  missing = [c for c in REQUIRED_COLUMNS if c not in row]
  if missing:
    raise RecordsError(f"{where}: missing required column(s) {missing}; "
                       f"every row needs {list(REQUIRED_COLUMNS)}")
  for column in ("N", "tokens", "M", "flops"):
    value = row[column]
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
      raise RecordsError(f"{where}: column {column!r} must be a positive finite "
                         f"number, got {value!r}")
  if row.get(DIVERGED_COLUMN, False) not in (True, False):
    raise RecordsError(f"{where}: column {DIVERGED_COLUMN!r} must be true or false, "
                       f"got {row[DIVERGED_COLUMN]!r}")
  for key, value in row.items():
    if key.startswith((LOSS_PREFIX, ACC_PREFIX)) and value is not None:
      if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RecordsError(f"{where}: metric {key!r} must be a finite number, "
                           f"got {value!r}")
      # By kind: a cross-entropy is positive; an accuracy is a fraction (a value
      # like 26.05 is a percentage, which would silently flatten the error law).
      if key.startswith(LOSS_PREFIX) and value <= 0:
        raise RecordsError(f"{where}: loss {key!r} must be positive (a mean "
                           f"cross-entropy in nats), got {value!r}")
      if key.startswith(ACC_PREFIX) and not 0 <= value <= 1:
        hint = " (a percentage? divide by 100)" if 1 < value <= 100 else ""
        raise RecordsError(f"{where}: accuracy {key!r} must lie in [0, 1], got "
                           f"{value!r}{hint}")
    if key.startswith(ACC_COUNT_PREFIX) and value is not None:
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RecordsError(f"{where}: example count {key!r} must be a positive whole "
                           f"number, got {value!r}")


def append_rows(path: str | os.PathLike, rows: Sequence[dict]) -> None:
  """Appends validated rows to a JSONL runs table in a single write.

  A torn last line left by a killed writer is repaired first (see the module
  docstring), so the new rows start on a line of their own. One writer per file.
  """
  for i, row in enumerate(rows):
    validate_row(row, where=f"row {i} for {path}")
  if not rows:
    return
  payload = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows).encode("utf-8")
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
  try:
    payload = _repair_torn_tail(fd, path) + payload
    view = memoryview(payload)
    while view:  # a regular file takes it in one write unless the disk is full
      view = view[os.write(fd, view):]
    os.fsync(fd)
  finally:
    os.close(fd)


def _repair_torn_tail(fd: int, path: pathlib.Path) -> bytes:
  """Cuts an unterminated last line off `fd`; returns b"\n" when it is a whole row.

  A fragment that is not a whole row goes to a sidecar file first, fsynced, so it
  survives for inspection; a whole row missing only its newline stays (readers
  already count it) and the caller writes the newline before its rows.
  """
  size = os.fstat(fd).st_size
  if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
    return b""
  start = size
  while start > 0:  # back to the byte after the last newline
    chunk_start = max(0, start - 65536)
    newline = os.pread(fd, start - chunk_start, chunk_start).rfind(b"\n")
    if newline >= 0:
      start = chunk_start + newline + 1
      break
    start = chunk_start
  fragment = os.pread(fd, size - start, start)
  if _is_row(fragment, path):
    return b"\n"
  sidecar = _write_sidecar(path, fragment)
  os.ftruncate(fd, start)
  warnings.warn(f"{path}: cut a torn last line of {len(fragment)} bytes (an "
                f"interrupted write) before appending; its bytes are kept in {sidecar}")
  return b""


def _write_sidecar(path: pathlib.Path, fragment: bytes) -> pathlib.Path:
  """Writes `fragment` to a new `<path>.torn-<time>[.<k>]`, durably."""
  stem = f"{path.name}.torn-{time.strftime('%Y%m%dT%H%M%S')}"
  for k in range(1000):
    sidecar = path.with_name(stem if k == 0 else f"{stem}.{k}")
    try:
      with open(sidecar, "xb") as f:
        f.write(fragment)
        f.flush()
        os.fsync(f.fileno())
      return sidecar
    except FileExistsError:
      continue
  raise RecordsError(f"{path}: cannot keep a torn last line: 1000 sidecars {stem}* exist")


def _is_row(fragment: bytes, path: pathlib.Path) -> bool:
  try:
    row = json.loads(fragment)
    if not isinstance(row, dict):
      return False
    validate_row(row, where=str(path))
  except ValueError:  # not UTF-8, not JSON, or a malformed row
    return False
  return True


def _read_file(path: pathlib.Path) -> list[dict]:
  rows = []
  try:
    text = path.read_text(encoding="utf-8")
  except UnicodeDecodeError as e:
    raise RecordsError(common.not_utf8(path, e)) from None
  lines = text.split("\n")
  for lineno, line in enumerate(lines, start=1):
    if not line.strip():
      continue
    is_last_unterminated = lineno == len(lines)
    try:
      row = json.loads(line)
    except json.JSONDecodeError as e:
      if is_last_unterminated:
        warnings.warn(f"{path}:{lineno}: skipping a torn last line (interrupted write)")
        continue
      raise RecordsError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
    validate_row(row, where=f"{path}:{lineno}")
    rows.append(row)
  return rows


def read_rows(path: str | os.PathLike) -> list[dict]:
  """Reads a runs table: a JSONL file, or every `records.jsonl` below a directory."""
  path = pathlib.Path(path)
  if path.is_file():
    return _read_file(path)
  if path.is_dir():
    rows = []
    for file in sorted(path.rglob(RECORDS_FILENAME)):
      rows.extend(_read_file(file))
    return rows
  raise RecordsError(f"runs table {path} does not exist")


def final_rows(rows: Iterable[dict]) -> list[dict]:
  """The last evaluation of each run (the row marked final, else the latest step)."""
  latest: dict[str, dict] = {}
  for row in rows:
    best = latest.get(row["run"])
    if best is None or (row["final"], row["step"]) >= (best["final"], best["step"]):
      latest[row["run"]] = row
  return list(latest.values())


def is_finished(run_dir: str | os.PathLike) -> bool:
  """Whether the run in `run_dir` has written its final row."""
  path = pathlib.Path(run_dir) / RECORDS_FILENAME
  return path.is_file() and any(r["final"] for r in _read_file(path))


def split_diverged(rows: Sequence[dict]) -> tuple[list[dict], dict[str, dict]]:
  """(rows of the runs that did not diverge, {run: its diverged row})."""
  diverged = {r["run"]: r for r in rows if r.get(DIVERGED_COLUMN)}
  return [r for r in rows if r["run"] not in diverged], diverged


def run_key(row: dict) -> tuple[str, float]:
  """(model, M): the point of the design a row measures; seeds of it share the key."""
  return str(row.get("model")), float(row["M"])


def metric_names(rows: Iterable[dict], prefix: str) -> list[str]:
  """Sorted names after `prefix` (e.g. LOSS_PREFIX) that appear in any row."""
  names = {k[len(prefix):] for row in rows for k in row if k.startswith(prefix)}
  return sorted(names)


def config_json(config) -> str:
  """A run's config (a ConfigDict or a dict) as stable JSON, for the `config` column."""
  if hasattr(config, "to_dict"):
    config = config.to_dict()
  return json.dumps(config, sort_keys=True, default=str)


def training_flops(num_params: float, tokens: float) -> float:
  """The `flops` column's default count, C = 6 N D (Kaplan et al.; the paper's C)."""
  return 6.0 * num_params * tokens


def tokens_of(num_params: float, flops: float) -> float:
  """The tokens D behind `flops` training FLOPs of a model of N parameters (inverts
  training_flops)."""
  return flops / training_flops(num_params, 1.0)
