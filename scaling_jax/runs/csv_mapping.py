"""The column mapping of `config.runs.csv`: which of a log file's columns give the
runs table's fields (runs/table.py), and which rows to keep. csv_logs.py reads the
file and builds the rows through it.

  mapping = _resolve(csv_cfg, header, path)   # checked against the file's columns
  records, notes = _filtered(records, mapping.filters, path)

default_csv_config() holds every field with its default; _resolve checks a config
against the file's header (every error names the config field and, for a column
the file lacks, the close matches); filters are 'COLUMN OP VALUE' conditions on
raw cells.

Counts (params, tokens, steps, flops, size_names values, filter values) read
'2.8B', '350M', '12k', '1.5e9' or '2810000000.0' (k, M, B or G, T; any case).
"""
from __future__ import annotations

import ast
import dataclasses
import difflib
import math
import re
from typing import Mapping, Sequence

import ml_collections

from scaling_jax.runs import common
from scaling_jax.runs import table as runs_table

RunsError = common.RunsError
OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
SUFFIXES = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_COUNT = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([kKmMbBgGtT]?)$")
_FILTER = re.compile(r"^\s*(?P<column>[^=!<>]*?)\s*(?P<op>[=!<>]+)\s*(?P<value>.*?)\s*$")
_FIELD = "config field 'runs.csv.{}'"


def default_csv_config() -> ml_collections.ConfigDict:
  """`config.runs.csv`: how a log file's columns become runs-table rows."""
  return ml_collections.ConfigDict(dict(
      # Our name -> the file's column. run, params and loss are required; tokens may
      # be '' when tokens_per_step derives it; '' = the file has no such column.
      columns=dict(
          # run name (ignored when run_from is set); '' for a table of one row per
          # run: each row is named by its size and tokens, '140M_2.8Btok'
          run="run",
          params="params",  # parameter count ('2.8B') or a size name (see size_names)
          # training tokens at the checkpoint; '' derives them from the FLOPs column
          # (D = C / (flops_per_param_token N)) or from steps (tokens_per_step)
          tokens="tokens",
          loss="loss",      # mean per-token cross-entropy in nats (see loss_scale)
          family="",        # model label of the design point; '' -> the size label
          seed="",          # seed of the run
          step="",          # optimiser step; '' -> the checkpoint's position, 1, 2, ...
          flops="",         # training FLOPs so far; '' -> 6 N tokens
          dataset="",       # training set of the run; '' -> `dataset` below
      ),
      tokens_per_step=0.0,  # > 0: tokens = step x this (needs columns.step, tokens='')
      # With columns.tokens '' and a flops column: the C / (N D) the column counts, 6
      # for the usual C = 6 N D (state another where the table's notes do).
      flops_per_param_token=6.0,
      # Size name -> parameter count, for files that name sizes: "{'base': 248e6}".
      # Consulted before a params cell is read as a count, so it also replaces
      # nominal labels ('7B') by exact counts.
      size_names="",
      # Conditions on raw columns, all kept rows pass every one: 'COLUMN OP VALUE'
      # with OP one of == != < <= > >=. Numbers (and counts like 2.8B) compare as
      # numbers, other values as text, which only == and != take; '' or "" is the
      # empty cell (e.g. "c4_en-validation/CrossEntropyLoss != ''").
      filters=(),
      run_from=(),  # columns whose values, joined by '_', name the run
      dataset="",   # the dataset column of every row when columns.dataset is ''
      eval_set="validation",  # the loss becomes loss/<eval_set>
      loss_scale=1.0,  # loss = cell x this (ln 2 for bits; 1/tokens of a batch sum)
      unordered=False,  # True: row order means nothing; each run is sorted by tokens
  ))


def parse_count(text) -> float:
  """'2.8B' -> 2.8e9, '350M', '12k', '1.5e9', 7 -> float; ValueError otherwise."""
  match = _COUNT.match(str(text).strip())
  if not match:
    raise ValueError(f"{text!r} is not a count like '2.8B', '350M' or '1.5e9'")
  return float(match[1]) * SUFFIXES[match[2].lower()]


@dataclasses.dataclass(frozen=True)
class _Filter:
  text: str
  column: str
  op: str
  value: str  # the text compared ('' is the empty cell)
  number: float | None  # the value as a count, when it reads as one

  def keeps(self, cell: str, where: str) -> bool:
    if self.number is not None:
      try:  # 'nan' counts as a number here, so 'loss < 20' drops NaN cells too
        return _compare(_number(cell), self.op, self.number)
      except ValueError:
        pass  # a cell that is no number compares as text
    if self.op in ("==", "!="):
      return _compare(cell, self.op, self.value)
    raise RunsError(f"{where}: filter {self.text!r}: column {self.column!r} is {cell!r}, "
                    f"not a number, which {self.op!r} needs")


def _number(cell: str) -> float:
  try:
    return parse_count(cell)
  except ValueError:
    return float(cell)


def _compare(a, op: str, b) -> bool:
  return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b,
          ">": a > b, ">=": a >= b}[op]


@dataclasses.dataclass(frozen=True)
class _Mapping:
  columns: dict  # our name -> the file's column, '' = absent
  tokens_per_step: float
  flops_per_param_token: float  # > 0: tokens = flops / (this N) (no tokens column)
  size_names: dict  # size name -> parameter count
  filters: tuple
  run_from: tuple
  dataset: str
  loss_key: str  # loss/<eval_set>
  loss_scale: float
  unordered: bool


def _missing_column(path, header, column: str, field: str) -> RunsError:
  close = difflib.get_close_matches(column, header, n=3, cutoff=0.5)
  hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
  listing = ", ".join(map(repr, header[:40])) + (", ..." if len(header) > 40 else "")
  return RunsError(f"{path}: {field} names column {column!r}, which the file lacks"
                   f"{hint}; its columns: {listing}")


def _resolve(cfg, header: Sequence[str], path) -> _Mapping:
  """Checks `cfg` against the file's `header`; every error names the config field."""
  defaults = default_csv_config()
  get = lambda key: cfg[key] if key in cfg else defaults[key]  # noqa: E731
  run_from = tuple(str(c).strip() for c in get("run_from"))
  for column in run_from:
    if column not in header:
      raise _missing_column(path, header, column, _FIELD.format("run_from"))
  tokens_per_step = float(get("tokens_per_step"))
  columns = _columns(get("columns"), run_from, tokens_per_step, header, path)
  flops_per_param_token = 0.0
  if not columns["tokens"] and not tokens_per_step:  # _columns: the flops column is set
    flops_per_param_token = float(get("flops_per_param_token"))
    if not (math.isfinite(flops_per_param_token) and flops_per_param_token > 0):
      raise RunsError(f"{path}: {_FIELD.format('flops_per_param_token')} is "
                      f"{flops_per_param_token:g}; tokens come from the FLOPs column "
                      f"as C / (this x N), so it must be positive (6 for C = 6 N D)")
  loss_scale = float(get("loss_scale"))
  if not (math.isfinite(loss_scale) and loss_scale > 0):
    raise RunsError(f"{path}: {_FIELD.format('loss_scale')} must be positive, got {loss_scale:g}")
  eval_set = str(get("eval_set")).strip()
  if not eval_set or "/" in eval_set:
    raise RunsError(f"{path}: {_FIELD.format('eval_set')} is {eval_set!r}; it names the "
                    f"loss/<eval_set> column, so it must be non-empty without '/'")
  filters = get("filters")
  filters = [filters] if isinstance(filters, str) else list(filters)
  return _Mapping(
      columns=columns, tokens_per_step=tokens_per_step,
      flops_per_param_token=flops_per_param_token,
      size_names=_size_names(get("size_names"), path),
      filters=tuple(_parse_filter(str(f), header, path) for f in filters),
      run_from=run_from, dataset=str(get("dataset")).strip(),
      loss_key=runs_table.LOSS_PREFIX + eval_set, loss_scale=loss_scale,
      unordered=bool(get("unordered")))


def _columns(mapped, run_from, tokens_per_step: float, header, path) -> dict:
  """Our name -> the file's column ('' = absent), each present in `header`."""
  columns = {k: str(v).strip() for k, v in default_csv_config().columns.items()}
  for key, value in mapped.items():
    if key not in columns:
      raise RunsError(f"{path}: {_FIELD.format('columns')} has unknown key {key!r}; "
                      f"keys: {list(columns)}")
    columns[key] = str(value).strip()
  if run_from:
    columns["run"] = ""
  if not columns["tokens"] and not tokens_per_step and columns["flops"]:
    pass  # tokens = flops / (flops_per_param_token N): _resolve checks the factor
  elif not columns["tokens"]:
    if not tokens_per_step:
      raise RunsError(f"{path}: with no tokens column (columns.tokens ''), tokens come "
                      f"from a FLOPs column (set {_FIELD.format('columns.flops')}: D = "
                      f"C / (6 N)) or from steps ({_FIELD.format('tokens_per_step')} > 0 "
                      f"with columns.step); neither is set")
    if not (math.isfinite(tokens_per_step) and tokens_per_step > 0):
      raise RunsError(f"{path}: {_FIELD.format('tokens_per_step')} is {tokens_per_step:g}; "
                      f"with no tokens column (columns.tokens '') it must be positive")
    if not columns["step"]:
      raise RunsError(f"{path}: {_FIELD.format('tokens_per_step')} derives tokens from "
                      f"steps, but {_FIELD.format('columns.step')} is ''")
  elif tokens_per_step:
    raise RunsError(f"{path}: {_FIELD.format('tokens_per_step')} is {tokens_per_step:g} "
                    f"and columns.tokens is {columns['tokens']!r}: pick one (set "
                    f"--config.runs.csv.columns.tokens='' to derive tokens from steps)")
  for name in ("params", "loss"):
    if not columns[name]:
      raise RunsError(f"{path}: {_FIELD.format('columns.' + name)} is '' but is required")
  for name, column in columns.items():
    if column and column not in header:
      raise _missing_column(path, header, column, _FIELD.format("columns." + name))
  return columns


def _size_names(value, path) -> dict:
  field = _FIELD.format("size_names")
  if isinstance(value, str):
    if not value.strip():
      return {}
    try:
      value = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      value = None
  if not isinstance(value, Mapping):
    raise RunsError(f"{path}: {field} must map size names to counts, like "
                    f"\"{{'base': 248e6, 'xl': '2.85B'}}\"")
  names = {}
  for name, count in value.items():
    try:
      names[str(name).strip()] = parse_count(count)
    except ValueError as e:
      raise RunsError(f"{path}: {field} entry {name!r}: {e}") from None
    if names[str(name).strip()] <= 0:
      raise RunsError(f"{path}: {field} entry {name!r} must be a positive count")
  return names


def _parse_filter(text: str, header, path) -> _Filter:
  field = _FIELD.format("filters")
  match = _FILTER.match(text)
  if not match or not match["column"]:
    raise RunsError(f"{path}: {field} entry {text!r} is not 'COLUMN OP VALUE' with OP "
                    f"one of {' '.join(OPERATORS)} (e.g. 'epochs == 1')")
  column, op, value = match["column"], match["op"], match["value"]
  if op not in OPERATORS:
    raise RunsError(f"{path}: {field} entry {text!r}: bad operator {op!r}; use one of "
                    f"{' '.join(OPERATORS)}")
  if column not in header:
    raise _missing_column(path, header, column, f"{field} entry {text!r}")
  if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
    value = value[1:-1]
  try:
    number = parse_count(value)
  except ValueError:
    number = None
  if number is None and op not in ("==", "!="):
    raise RunsError(f"{path}: {field} entry {text!r}: {op!r} needs a number, got {value!r}")
  return _Filter(text, column, op, value, number)


def _filtered(records, filters, path) -> tuple[list, list[str]]:
  """The records (csv_logs._Record) every filter keeps, and a note of what each removed."""
  if not filters:
    return records, []
  total, removed = len(records), []
  for flt in filters:
    kept = [r for r in records if flt.keeps(r.cells.get(flt.column, ""), r.at(path))]
    removed.append(f"{flt.text!r} removed {len(records) - len(kept)} of {len(records)}")
    if not kept:
      seen = sorted({r.cells.get(flt.column, "") for r in records})
      raise RunsError(f"{path}: no rows left after {_FIELD.format('filters')}: "
                      f"{'; '.join(removed)}; values of {flt.column!r} among the rows it "
                      f"saw: {seen[:10]}" + (" ..." if len(seen) > 10 else ""))
    records = kept
  return records, [f"{path}: filters kept {len(records)} of {total} rows ("
                   f"{'; '.join(removed)})"]
