"""Importer for the released over-training testbed format (Gadre et al. 2024).

A directory holds `models/NAME.json` (one trained model each),
`evals/evaluation_NAME_heavy.json` (downstream accuracies) and `eval_metadata.csv`
(per task: type, shots, random baseline in percent). Any directory in this format
works, including models this code has never seen.

Each model becomes one runs-table row (see scaling_jax.runs.table): final=True, M is
the nominal multiplier 20 x chinchilla_multiplier, flops = 6 N D, and every
validation set gives loss/<set> plus its 95% half-widths, token-level as
loss_ci/<set> and sequence-level as loss_seq_ci/<set>. The set name is the folder
after `eval_data/` (skipping `val_tok_mult/`): c4_val, paloma_c4_en, de-en, ...

A model without its eval file (or a file lacking tasks) still imports, without those
acc/<task> columns; `eval_coverage(rows, tasks)` names the missing files and tasks of
just the rows a caller fits, so a gap elsewhere in the directory never touches a fit.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import pathlib
from typing import Iterable, Sequence

from scaling_jax.runs import common
from scaling_jax.runs import table as runs_table

SEQUENCE_LENGTH = 2048  # the testbed's training sequence length, for step counts


class TestbedError(ValueError):
  """The directory is not in the testbed format; the message names file and field."""


@dataclasses.dataclass(frozen=True)
class TaskInfo:
  name: str
  category: str
  task_type: str
  shots: int
  random_baseline: float  # accuracy of chance, in [0, 1]


def _load_json(path: pathlib.Path) -> dict:
  try:
    return json.loads(path.read_text(encoding="utf-8"))
  except json.JSONDecodeError as e:
    raise TestbedError(f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: "
                       f"{e.msg}") from None
  except UnicodeDecodeError as e:
    raise TestbedError(common.not_utf8(path, e)) from None
  except OSError as e:
    raise TestbedError(f"{path}: cannot read ({e.strerror})") from None


def _field(data: dict, dotted: str, path: pathlib.Path):
  value = data
  for part in dotted.split("."):
    if not isinstance(value, dict) or part not in value:
      raise TestbedError(f"{path}: missing field '{dotted}'")
    value = value[part]
  return value


def _number(data: dict, dotted: str, path: pathlib.Path) -> float:
  value = _field(data, dotted, path)
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
    raise TestbedError(f"{path}: field '{dotted}' must be a finite number, got {value!r}")
  return value


def eval_set_name(val_data: str) -> str:
  """'training/eval_data/val_tok_mult/paloma_ptb/00000001.tar' -> 'paloma_ptb'."""
  parts = pathlib.PurePosixPath(val_data).parts
  if "eval_data" in parts:
    rest = [p for p in parts[parts.index("eval_data") + 1:] if p != "val_tok_mult"]
    if len(rest) >= 2:
      return rest[0]
  return pathlib.PurePosixPath(val_data).parent.name


def _loss_columns(data: dict, path: pathlib.Path) -> dict:
  columns = {}
  results = _field(data, "results", path)
  if not isinstance(results, list):
    raise TestbedError(f"{path}: field 'results' must be a list")
  for i, result in enumerate(results):
    where = f"results[{i}]"
    val_data = _field(result, "val_data", path) if isinstance(result, dict) else None
    if not isinstance(val_data, list) or not val_data:
      raise TestbedError(f"{path}: field '{where}.val_data' must be a non-empty list")
    name = eval_set_name(val_data[0])
    loss = result.get("loss")
    if isinstance(loss, bool) or not isinstance(loss, (int, float)) or not math.isfinite(loss):
      raise TestbedError(f"{path}: field '{where}.loss' ({name}) must be a finite "
                         f"number, got {loss!r}")
    columns[runs_table.LOSS_PREFIX + name] = float(loss)
    for key, prefix in (("tokens", runs_table.LOSS_CI_PREFIX), ("sequences", "loss_seq_ci/")):
      lo, hi = result.get(f"loss_{key}_lower_95"), result.get(f"loss_{key}_upper_95")
      if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
        columns[prefix + name] = (float(hi) - float(lo)) / 2
  return columns


def _accuracy_columns(path: pathlib.Path) -> dict:
  icl = _field(_load_json(path), "eval_metrics.icl", path)
  if not isinstance(icl, dict):
    raise TestbedError(f"{path}: field 'eval_metrics.icl' must map task -> accuracy")
  columns = {}
  for task, acc in icl.items():
    if isinstance(acc, bool) or not isinstance(acc, (int, float)) or not math.isfinite(acc):
      raise TestbedError(f"{path}: field 'eval_metrics.icl.{task}' must be a finite "
                         f"number, got {acc!r}")
    if not 0 <= acc <= 1:
      hint = " (a percentage? the format wants a fraction)" if 1 < acc <= 100 else ""
      raise TestbedError(f"{path}: field 'eval_metrics.icl.{task}' must be an "
                         f"accuracy in [0, 1], got {acc!r}{hint}")
    columns[runs_table.ACC_PREFIX + task] = float(acc)
  return columns


def eval_file(model_path) -> pathlib.Path:
  """models/NAME.json -> evals/evaluation_NAME_heavy.json beside it."""
  model_path = pathlib.Path(model_path)
  return model_path.parent.parent / "evals" / f"evaluation_{model_path.stem}_heavy.json"


def _model_row(path: pathlib.Path) -> dict:
  data = _load_json(path)
  name = _field(data, "name", path)
  n = int(_number(data, "hyperparameters.params", path))
  tokens = int(_number(data, "hyperparameters.tokens", path))
  multiplier = _number(data, "hyperparameters.chinchilla_multiplier", path)
  if n <= 0 or tokens <= 0 or multiplier <= 0:
    raise TestbedError(f"{path}: params, tokens and chinchilla_multiplier must be positive")
  batch = data["hyperparameters"].get("global_bs")
  row = {
      "run": name, "dataset": _field(data, "dataset_name", path),
      "model": pathlib.PurePosixPath(str(data["hyperparameters"].get("model", name))).stem,
      "N": n, "tokens": tokens, "M": 20.0 * multiplier,
      "flops": runs_table.training_flops(n, tokens),
      "step": tokens // (batch * SEQUENCE_LENGTH) if isinstance(batch, int) and batch > 0 else 0,
      "final": True, "source": str(path),
  }
  row.update(_loss_columns(data, path))
  eval_path = eval_file(path)
  if eval_path.is_file():
    row.update(_accuracy_columns(eval_path))
  return row


def load_rows(testbed_dir) -> list[dict]:
  """One runs-table row per model in the directory, sorted by run name."""
  root = pathlib.Path(testbed_dir)
  models_dir = root / "models"
  if not root.is_dir():
    raise TestbedError(f"testbed directory {root} does not exist")
  if not models_dir.is_dir():
    raise TestbedError(f"{root} has no models/ folder; expected the released testbed "
                       "layout (models/*.json, evals/, eval_metadata.csv)")
  paths = sorted(models_dir.glob("*.json"))
  if not paths:
    raise TestbedError(f"{models_dir} holds no *.json model files")
  rows = [_model_row(p) for p in paths]
  first: dict[str, str] = {}
  for row in rows:
    runs_table.validate_row(row, where=row["source"])
    if row["run"] in first:
      raise TestbedError(f"{first[row['run']]} and {row['source']} both hold the model "
                         f"named {row['run']!r} (field 'name'); remove or rename one")
    first[row["run"]] = row["source"]
  return rows


@dataclasses.dataclass(frozen=True)
class EvalGap:
  """One run's missing downstream data: its whole eval file, or some tasks."""
  run: str
  eval_file: str  # evals/evaluation_NAME_heavy.json; '' for a row not from a testbed
  file_missing: bool
  missing_tasks: tuple[str, ...] = ()  # of the tasks the caller expects

  def line(self) -> str:
    if self.file_missing:
      return f"run {self.run}: no eval file {self.eval_file}; it has no accuracies"
    where = f"{self.eval_file} lacks" if self.eval_file else "lacks"
    return f"run {self.run}: {where} task(s) {', '.join(self.missing_tasks)}"


@dataclasses.dataclass(frozen=True)
class EvalCoverage:
  """The downstream data the chosen rows lack; `gaps` is empty when nothing is."""
  gaps: list[EvalGap]  # one per run with a gap, sorted by run

  def lines(self) -> list[str]:
    """One line per run with a gap, for the console and summary.md; [] when none."""
    return [gap.line() for gap in self.gaps]


def _eval_file_of(row: dict) -> pathlib.Path | None:
  source = pathlib.Path(str(row.get("source", "")))
  return eval_file(source) if source.parent.name == "models" else None


def eval_coverage(rows: Sequence[dict], tasks: Iterable[str]) -> EvalCoverage:
  """Which of `rows` lack their eval file, and which of `tasks` their files lack.

  `rows` are the ones a caller fits (e.g. the chosen training set's error design),
  so gaps elsewhere in the directory go unmentioned. `tasks` are the tasks every
  row should report: eval_metadata.csv's tasks that some model of the directory
  reports (its five generation tasks, e.g. gsm8k, no released model reports):
      set(load_task_info(d)) & set(runs_table.metric_names(all_rows, ACC_PREFIX))
  Rows not imported from a testbed (no models/NAME.json source) get the task check.
  """
  tasks = sorted(tasks)
  gaps = []
  for row in sorted(rows, key=lambda r: r["run"]):
    path = _eval_file_of(row)
    if path is not None and not path.is_file():
      gaps.append(EvalGap(row["run"], str(path), file_missing=True))
      continue
    missing = tuple(t for t in tasks if runs_table.ACC_PREFIX + t not in row)
    if missing:
      gaps.append(EvalGap(row["run"], str(path or ""), False, missing))
  return EvalCoverage(gaps)


def load_task_info(testbed_dir) -> dict[str, TaskInfo]:
  """Per-task metadata from eval_metadata.csv (random baseline converted to [0, 1])."""
  path = pathlib.Path(testbed_dir) / "eval_metadata.csv"
  if not path.is_file():
    raise TestbedError(f"{path} does not exist; it gives each task's random baseline")
  try:
    with path.open(newline="", encoding="utf-8") as f:
      records = list(csv.DictReader(f))
  except UnicodeDecodeError as e:
    raise TestbedError(common.not_utf8(path, e)) from None
  tasks = {}
  for lineno, rec in enumerate(records, start=2):
    try:
      tasks[rec["Eval Task"]] = TaskInfo(
          name=rec["Eval Task"], category=rec["Task Category"], task_type=rec["Task Type"],
          shots=int(rec["#shots"]), random_baseline=float(rec["Random baseline"]) / 100)
    except (KeyError, TypeError, ValueError) as e:
      raise TestbedError(f"{path}:{lineno}: bad or missing field ({e})") from None
  return tasks
