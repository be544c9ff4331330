"""Runs from the training logs of any framework: a CSV or JSONL file, one row per
(run, checkpoint), mapped onto the runs table (runs/table.py) by `config.runs.csv`.

  runs = csv_logs.load("olmo.csv", csv_cfg)   # Runs: rows, no task baselines, notes

Each kept row becomes one runs-table row: run (with no run column, one run per row,
named by size and tokens), N, tokens (mapped, or steps x tokens_per_step, or a FLOPs
column / (6 N), the usual published table of (N, C, loss)), step, flops (6 N D unless
a flops column is mapped), loss/<eval_set>, model (the family column, else the run's
size label), seed and dataset where known, source 'FILE:LINE', final on each run's
last kept checkpoint (a filter that cuts a run short ends it early), and M = the
run's last tokens / N to 6 significant figures on every row (the table's M is the
run's planned multiplier, so all rows of a run share the design point of its end).

The column mapping, counts ('2.8B') and row filters live in csv_mapping.py; this
module reads the records, applies the mapping and builds and checks the rows.
`from_records` takes records read elsewhere (runs/wandb_runs.py: a W&B project's
history), each naming its own place, through the same mapping and checks.

Cells are stripped of surrounding blanks ('OLMo-1B ' is 'OLMo-1B'). A row's line is
its line in the file (the header is line 1), and every error names FILE:LINE and the
column.

Within a run, rows with the same tokens and the same values are duplicates, counted
once and reported in the notes; the same tokens with different values is an error.
The remaining rows must come in training order (unless `unordered`): tokens that go
backwards mean two runs under one name or a restarted log, and are an error.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import pathlib
import re

from scaling_jax.runs import common
from scaling_jax.runs import csv_mapping
from scaling_jax.runs import table as runs_table

RunsError = common.RunsError
# The mapping's names, so callers keep csv_logs.default_csv_config, .parse_count, ...
default_csv_config = csv_mapping.default_csv_config
parse_count = csv_mapping.parse_count
OPERATORS = csv_mapping.OPERATORS
SUFFIXES = csv_mapping.SUFFIXES
# pylint: disable=protected-access
_Mapping = csv_mapping._Mapping
_resolve = csv_mapping._resolve
_filtered = csv_mapping._filtered
_COUNT = csv_mapping._COUNT
_FIELD = csv_mapping._FIELD
# pylint: enable=protected-access

# A mean per-token cross-entropy above this (uniform over e^100 tokens) is a sum
# over a batch or a scaled value, never a loss to fit.
MAX_LOSS = 100.0


@dataclasses.dataclass(frozen=True)
class _Record:
  line: int
  cells: dict  # column -> stripped text ('' for an empty or absent cell)
  where: str = ""  # where it came from when not a file's line (runs/wandb_runs.py)

  def at(self, path) -> str:
    """'FILE:LINE', or the record's own `where`: what messages and `source` name."""
    return self.where or f"{path}:{self.line}"


def _text(value) -> str:
  if value is None:
    return ""
  return value.strip() if isinstance(value, str) else json.dumps(value)


def record(line: int, values: dict, where: str) -> _Record:
  """A record of `values` (column -> any JSON value) read elsewhere than a file."""
  return _Record(line, {k: _text(v) for k, v in values.items()}, where)


def read_records(path: pathlib.Path) -> tuple[list[str], list[_Record]]:
  """The file's columns and data rows (.csv with a header, or .jsonl objects)."""
  if not path.is_file():
    raise RunsError(f"{path}: no such file (config field 'runs.path')")
  suffix = path.suffix.lower()
  try:
    with path.open(newline="", encoding="utf-8-sig") as f:
      if suffix == ".csv":
        return _read_csv(path, f)
      if suffix == ".jsonl":
        return _read_jsonl(path, f)
  except UnicodeDecodeError as e:
    raise RunsError(common.not_utf8(path, e)) from None
  except csv.Error as e:
    raise RunsError(f"{path}: cannot read as {suffix[1:]} ({e})") from None
  raise RunsError(f"{path}: unknown log format {suffix!r}; use .csv or .jsonl")


def _read_csv(path, f) -> tuple[list[str], list[_Record]]:
  reader = csv.reader(f)
  header = [h.strip() for h in next(reader, [])]
  if not header:
    raise RunsError(f"{path}: empty file; expected a header line of column names")
  twice = sorted({h for h in header if header.count(h) > 1})
  if twice:
    raise RunsError(f"{path}:1: column(s) {twice} appear more than once in the header")
  records, end = [], reader.line_num
  for fields in reader:
    start, end = end + 1, reader.line_num
    if not fields or fields == [""]:
      continue
    if len(fields) != len(header):
      raise RunsError(f"{path}:{start}: {len(fields)} fields, but the header names "
                      f"{len(header)} columns")
    records.append(_Record(start, {h: _text(v) for h, v in zip(header, fields)}))
  return header, records


def _read_jsonl(path, f) -> tuple[list[str], list[_Record]]:
  columns, records = {}, []
  for line, text in enumerate(f, start=1):
    if not text.strip():
      continue
    try:
      obj = json.loads(text)
    except json.JSONDecodeError as e:
      raise RunsError(f"{path}:{line}: not valid JSON ({e.msg})") from None
    if not isinstance(obj, dict):
      raise RunsError(f"{path}:{line}: expected a JSON object per line, got "
                      f"{type(obj).__name__}")
    columns.update(dict.fromkeys(obj))
    records.append(_Record(line, {k: _text(v) for k, v in obj.items()}))
  return list(columns), records


def load(path, csv_cfg=None) -> common.Runs:
  """The runs in the log file `path`, read through `csv_cfg` (default_csv_config)."""
  path = pathlib.Path(path)
  header, records = read_records(path)
  return from_records(header, records, csv_cfg, path)


def from_records(header, records, csv_cfg, path) -> common.Runs:
  """The runs in `records` (columns `header`), read through `csv_cfg`; `path` names
  their origin in messages and in the Runs (a file, or another source's label)."""
  csv_cfg = default_csv_config() if csv_cfg is None else csv_cfg
  if not records:
    raise RunsError(f"{path}: no data rows")
  mapping = _resolve(csv_cfg, header, path)
  records, notes = _filtered(records, mapping.filters, path)
  _check_losses_present(records, mapping, path)
  rows, duplicates = _assemble([_row(r, mapping, path) for r in records], mapping)
  if duplicates:
    lines = ", ".join(f"{dup} (= {first})" for dup, first in duplicates[:5])
    notes.append(f"{path}: {len(duplicates)} duplicate row(s) (same run, tokens and "
                 f"values as an earlier row) counted once: {lines}"
                 + (", ..." if len(duplicates) > 5 else ""))
  return common.Runs(rows=rows, task_baselines={}, where=str(path), notes=notes)


_TWO_RUNS = ("two runs under one name? name runs by more columns "
             "(runs.csv.run_from) or keep one with runs.csv.filters")


def _run_name(record: _Record, mapping: _Mapping, path) -> str:
  if not mapping.run_from and not mapping.columns["run"]:
    return ""  # a row per run: _row names it by its size and tokens
  columns = mapping.run_from or (mapping.columns["run"],)
  values = [record.cells.get(c, "") for c in columns]
  for column, value in zip(columns, values):
    if not value:
      raise RunsError(f"{record.at(path)}: column {column!r} (run name) is empty")
  # A size written two ways ('300M', '0.3B') names one run: counts are spelt one way.
  return "_".join(_compact(csv_mapping.parse_count(v))
                  if c == mapping.columns["params"] and _COUNT.match(v) else v
                  for c, v in zip(columns, values))


def _check_losses_present(records, mapping: _Mapping, path) -> None:
  """An empty loss cell, named with how many rows and which runs lack the loss."""
  column = mapping.columns["loss"]
  empty = [r for r in records if not r.cells.get(column, "")]
  if empty:
    runs = sorted({_run_name(r, mapping, path) or f"line {r.line}" for r in empty})
    raise RunsError(
        f"{empty[0].at(path)}: column {column!r} (loss) is empty; it is empty in "
        f"{len(empty)} of {len(records)} rows, of run(s) {runs[:10]}: drop them with the "
        f"filter \"{column} != ''\" or map another loss column")


def _count(record: _Record, column: str, where: str, what: str) -> float:
  cell = record.cells.get(column, "")
  if not cell:
    raise RunsError(f"{where}: column {column!r} ({what}) is empty")
  try:
    value = parse_count(cell)
  except ValueError as e:
    raise RunsError(f"{where}: column {column!r} ({what}): {e}") from None
  if not value > 0 or not math.isfinite(value):
    hint = (f"; a row before training has no place in a fit: drop it with the filter "
            f"'{column} > 0'" if value == 0 and what in ("step", "tokens") else "")
    raise RunsError(f"{where}: column {column!r} ({what}) is {cell!r}; it must be a "
                    f"positive number{hint}")
  return value


def _params(record: _Record, mapping: _Mapping, where: str) -> tuple[int, str]:
  """(N, size label) of the row: a size name's count, else the cell as a count."""
  column = mapping.columns["params"]
  cell = record.cells.get(column, "")
  if cell in mapping.size_names:
    return round(mapping.size_names[cell]), cell
  if cell and not _COUNT.match(cell):
    known = sorted(mapping.size_names)
    fix = (f"it has {known}; add it" if known else
           "map size names to counts there")
    raise RunsError(f"{where}: column {column!r} (params) is {cell!r}, neither a count "
                    f"like '2.8B' nor a size name in {_FIELD.format('size_names')}: {fix}, "
                    f"e.g. \"{{'{cell}': 1.5e9}}\"")
  n = _count(record, column, where, "params")
  if round(n) < 1:
    raise RunsError(f"{where}: column {column!r} (params) is {cell!r}; under 1 parameter")
  # One label per size however it is written ('300M', '0.3B', '3e8'): the label is
  # the design point's model name, so two spellings must not make two points.
  return round(n), _compact(n)


def _compact(n: float) -> str:
  for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
    if n >= scale:
      return f"{n / scale:.4g}{suffix}"
  return f"{n:g}"


def _loss(record: _Record, mapping: _Mapping, where: str) -> float:
  column = mapping.columns["loss"]
  cell = record.cells.get(column, "")
  try:
    value = float(cell)
  except ValueError:
    raise RunsError(f"{where}: column {column!r} (loss) is {cell!r}, not a number") from None
  if not math.isfinite(value):
    raise RunsError(f"{where}: column {column!r} (loss) is {cell!r}; it must be finite: "
                    f"drop such rows with the filter \"{column} != {cell}\"")
  value *= mapping.loss_scale
  scaled = f" (x loss_scale {mapping.loss_scale:g})" if mapping.loss_scale != 1 else ""
  if value <= 0:
    raise RunsError(f"{where}: column {column!r} (loss) is {cell!r}{scaled}; a loss is a "
                    f"positive mean cross-entropy in nats, so this is a logging error: "
                    f"drop such rows with runs.csv.filters or map another column")
  if value > MAX_LOSS:
    raise RunsError(f"{where}: column {column!r} (loss) is {cell!r}{scaled}, above "
                    f"{MAX_LOSS:g} nats: not a mean per-token cross-entropy (a sum over "
                    f"a batch? set {_FIELD.format('loss_scale')} to 1 / its tokens)")
  return value


def _row(record: _Record, mapping: _Mapping, path) -> dict:
  """The record as a runs-table row, less M, final and (without a step column) step."""
  columns = mapping.columns
  run = _run_name(record, mapping, path)
  where = record.at(path) + (f" (run {run!r})" if run else "")
  n, label = _params(record, mapping, where)
  step = None
  if columns["step"]:
    step = _count(record, columns["step"], where, "step")
    if step != round(step):
      raise RunsError(f"{where}: column {columns['step']!r} (step) is "
                      f"{record.cells[columns['step']]!r}, not a whole number")
    step = round(step)
  flops = _count(record, columns["flops"], where, "flops") if columns["flops"] else None
  if mapping.tokens_per_step:
    tokens = step * mapping.tokens_per_step
  elif mapping.flops_per_param_token:
    tokens = flops / (mapping.flops_per_param_token * n)
  else:
    tokens = _count(record, columns["tokens"], where, "tokens")
  if not run:  # no run column: one run per row, named so a user can type it
    run = f"{label}_{_compact(tokens)}tok"
  row = {"run": run, "model": label, "N": n, "tokens": round(tokens), "step": step,
         mapping.loss_key: _loss(record, mapping, where),
         "source": record.at(path)}
  for name in ("family", "dataset", "seed"):
    if columns[name]:
      value = record.cells.get(columns[name], "")
      if not value:
        raise RunsError(f"{where}: column {columns[name]!r} ({name}) is empty")
      row["model" if name == "family" else name] = value
  if "seed" in row:
    row["seed"] = int(row["seed"]) if re.fullmatch(r"[+-]?\d+", row["seed"]) else row["seed"]
  if "dataset" not in row and mapping.dataset:
    row["dataset"] = mapping.dataset
  if flops is not None:
    row["flops"] = flops
  return row


def _assemble(rows: list[dict], mapping: _Mapping) -> tuple[list[dict], list[tuple]]:
  """Rows grouped by run, checked, completed; and (duplicate, first) source pairs."""
  by_run: dict[str, list[dict]] = {}
  for row in rows:
    by_run.setdefault(row["run"], []).append(row)
  out, duplicates = [], []
  for run, group in by_run.items():
    _check_constant(run, group, mapping)
    group = _dedupe(run, group, duplicates)
    if mapping.unordered:
      group.sort(key=lambda r: r["tokens"])
    _check_order(run, group, mapping)
    # To the 6 figures of the design points' names ('model@M', formatted with %g),
    # so a point named after a row selects it.
    multiplier = float(f"{group[-1]['tokens'] / group[-1]['N']:.6g}")
    for i, row in enumerate(group):
      flops = row.pop("flops", None) or runs_table.training_flops(row["N"], row["tokens"])
      step = i + 1 if row["step"] is None else row["step"]
      loss = row.pop(mapping.loss_key)
      source = row.pop("source")
      row.update(M=multiplier, flops=flops, step=step,
                 final=i == len(group) - 1)
      row.update({mapping.loss_key: loss, "source": source})
      try:
        runs_table.validate_row(row, where=source)
      except runs_table.RecordsError as e:
        raise RunsError(str(e)) from None
      out.append(row)
  return out, duplicates


def _check_constant(run: str, group: list[dict], mapping: _Mapping) -> None:
  first = group[0]
  columns = mapping.columns
  for key, column in (("N", columns["params"]), ("model", columns["family"] or columns["params"]),
                      ("dataset", columns["dataset"]), ("seed", columns["seed"])):
    for row in group[1:]:
      if row.get(key) != first.get(key):
        raise RunsError(f"{first['source']} and {row['source']}: run {run!r} has {key} "
                        f"{first.get(key)!r} and {row.get(key)!r} (column {column!r}); "
                        f"{_TWO_RUNS}")


def _dedupe(run: str, group: list[dict], duplicates: list) -> list[dict]:
  """The group less rows that repeat an earlier row; a conflicting repeat is an error."""
  by_tokens, kept = {}, []
  for row in group:
    first = by_tokens.setdefault(row["tokens"], row)
    if first is row:
      kept.append(row)
      continue
    differ = sorted(k for k in set(row) | set(first)
                    if k != "source" and row.get(k) != first.get(k))
    if not differ:
      duplicates.append((row["source"], first["source"]))
      continue
    values = ", ".join(f"{k} {first.get(k)!r} vs {row.get(k)!r}" for k in differ)
    raise RunsError(f"{first['source']} and {row['source']}: run {run!r} has two rows at "
                    f"tokens {row['tokens']:,} that differ ({values}); {_TWO_RUNS}")
  return kept


def _check_order(run: str, group: list[dict], mapping: _Mapping) -> None:
  """Tokens rise row by row, and so do mapped steps and FLOPs."""
  for prev, row in zip(group, group[1:]):
    where = f"{row['source']}: run {run!r}"
    if row["tokens"] < prev["tokens"]:
      raise RunsError(f"{where}: tokens go backwards, {row['tokens']:,} after "
                      f"{prev['tokens']:,} at {prev['source']}: {_TWO_RUNS}; or, if the "
                      f"file's row order means nothing, set runs.csv.unordered=True")
    if row["step"] is not None and row["step"] <= prev["step"]:
      raise RunsError(f"{where}: step {row['step']} (column {mapping.columns['step']!r}) "
                      f"does not rise with tokens after step {prev['step']} at "
                      f"{prev['source']}")
    if "flops" in row and row["flops"] < prev["flops"]:
      raise RunsError(f"{where}: FLOPs fall from {prev['flops']:.4g} at {prev['source']} "
                      f"to {row['flops']:.4g} while tokens rise, so column "
                      f"{mapping.columns['flops']!r} is not the FLOPs trained so far; "
                      f"set runs.csv.columns.flops='' for 6 N D")
