"""The runs table: atomic appends, torn lines, validation."""
import json

import pytest

from scaling_jax.runs import table as runs_table

ROW = {"run": "a", "N": 10, "tokens": 200, "M": 20.0, "flops": 1.2e4, "step": 5,
       "final": False, "loss/val": 3.2}


def test_append_then_read_round_trips(tmp_path):
  path = tmp_path / "r" / runs_table.RECORDS_FILENAME
  runs_table.append_rows(path, [ROW, dict(ROW, step=9, final=True, **{"loss/val": 3.0})])
  rows = runs_table.read_rows(tmp_path)
  assert [r["step"] for r in rows] == [5, 9]
  assert runs_table.final_rows(rows)[0]["loss/val"] == 3.0
  assert runs_table.metric_names(rows, runs_table.LOSS_PREFIX) == ["val"]


def test_torn_last_line_is_skipped_with_a_warning(tmp_path):
  path = tmp_path / runs_table.RECORDS_FILENAME
  runs_table.append_rows(path, [ROW])
  with path.open("a") as f:
    f.write(json.dumps(ROW)[:20])  # a write cut short by a kill
  with pytest.warns(UserWarning, match="torn last line"):
    assert len(runs_table.read_rows(path)) == 1


def test_corrupt_middle_line_is_an_error_naming_the_line(tmp_path):
  path = tmp_path / runs_table.RECORDS_FILENAME
  path.write_text(json.dumps(ROW) + "\n{oops\n" + json.dumps(ROW) + "\n")
  with pytest.raises(runs_table.RecordsError, match=r":2: not valid JSON"):
    runs_table.read_rows(path)


@pytest.mark.parametrize("change,message", [
    ({"N": -1}, "'N' must be a positive finite number"),
    ({"loss/val": float("nan")}, "metric 'loss/val' must be a finite number"),
])
def test_bad_rows_are_refused_before_writing(tmp_path, change, message):
  path = tmp_path / runs_table.RECORDS_FILENAME
  with pytest.raises(runs_table.RecordsError, match=message):
    runs_table.append_rows(path, [dict(ROW, **change)])
  assert not path.exists()


def test_missing_required_column_is_named(tmp_path):
  row = dict(ROW)
  del row["flops"]
  with pytest.raises(runs_table.RecordsError, match=r"missing required column\(s\) \['flops'\]"):
    runs_table.append_rows(tmp_path / "x.jsonl", [row])
