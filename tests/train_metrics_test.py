"""The train-metrics JSONL: flushed rows, strict JSON, the resume rule, torn tails."""
import json
import math

import pytest

from scaling_jax import train_metrics


def _row(step, **extra):
  return dict(step=step, tokens=256 * step, loss=5.0 - step / 10, **extra)


def _write(path, steps, resume_step=0):
  log = train_metrics.TrainMetricsLog(path, resume_step)
  for step in steps:
    log.append(_row(step))
  return log


def test_rows_are_readable_while_the_log_is_open(tmp_path):
  path = tmp_path / train_metrics.FILENAME
  log = _write(path, [5, 10])
  assert train_metrics.read_rows(path) == [_row(5), _row(10)]  # flushed per row
  log.close()


def test_non_finite_numbers_become_null_so_lines_are_strict_json(tmp_path):
  path = tmp_path / "m.jsonl"
  log = train_metrics.TrainMetricsLog(path, 0)
  log.append(_row(1, grad_norm=math.inf, tokens_per_s=None, total_loss=math.nan))
  log.close()
  line = path.read_text().strip()
  row = json.loads(line, parse_constant=pytest.fail)  # no NaN/Infinity literals
  assert row["grad_norm"] is None and row["total_loss"] is None
  assert row["tokens_per_s"] is None and row["loss"] == 4.9


def test_resume_drops_rows_after_the_restored_step_and_keeps_the_rest(tmp_path):
  path = tmp_path / "m.jsonl"
  _write(path, [5, 8, 10, 12, 15, 16]).close()  # stopped at 17, checkpoint at 12
  log = _write(path, [15, 16, 20], resume_step=12)
  log.close()
  steps = [r["step"] for r in train_metrics.read_rows(path)]
  assert steps == [5, 8, 10, 12, 15, 16, 20]  # each step once, in order


def test_resume_at_the_last_row_rewrites_nothing(tmp_path):
  path = tmp_path / "m.jsonl"
  _write(path, [5, 10]).close()
  before = path.stat()
  train_metrics.TrainMetricsLog(path, 10).close()
  after = path.stat()
  assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)


def test_a_torn_last_line_is_skipped_by_readers_and_dropped_on_resume(tmp_path):
  path = tmp_path / "m.jsonl"
  _write(path, [5, 10]).close()
  with open(path, "a") as f:
    f.write('{"step": 15, "los')  # killed mid-write
  assert [r["step"] for r in train_metrics.read_rows(path)] == [5, 10]
  _write(path, [15], resume_step=10).close()
  assert path.read_text().count("\n") == 3
  assert [r["step"] for r in train_metrics.read_rows(path)] == [5, 10, 15]


def test_a_whole_row_missing_its_newline_is_kept_and_terminated(tmp_path):
  path = tmp_path / "m.jsonl"
  path.write_text(json.dumps(_row(5)))
  _write(path, [10], resume_step=5).close()
  assert [r["step"] for r in train_metrics.read_rows(path)] == [5, 10]


def test_a_corrupt_line_before_the_end_names_the_file_and_line(tmp_path):
  path = tmp_path / "m.jsonl"
  path.write_text(json.dumps(_row(5)) + "\nnot json\n" + json.dumps(_row(10)) + "\n")
  with pytest.raises(ValueError, match=r"m.jsonl:2: not a JSON object"):
    train_metrics.read_rows(path)
