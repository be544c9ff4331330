"""The runs table: atomic appends, torn lines, validation."""
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import textwrap
import time
import warnings

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


def test_append_after_a_torn_tail_starts_a_fresh_line(tmp_path):
  path = tmp_path / runs_table.RECORDS_FILENAME
  runs_table.append_rows(path, [ROW])
  fragment = json.dumps(dict(ROW, step=6))[:20]  # a write cut short by a kill
  with path.open("a") as f:
    f.write(fragment)
  with pytest.warns(UserWarning, match="cut a torn last line of 20 bytes"):
    runs_table.append_rows(path, [dict(ROW, step=7)])
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # nothing torn is left to skip
    assert [r["step"] for r in runs_table.read_rows(path)] == [5, 7]
  sidecars = list(tmp_path.glob(runs_table.RECORDS_FILENAME + ".torn-*"))
  assert [p.read_text() for p in sidecars] == [fragment]
  assert [r["step"] for r in runs_table.read_rows(tmp_path)] == [5, 7]  # sidecar unread


def test_a_whole_row_short_of_its_newline_is_kept(tmp_path):
  path = tmp_path / runs_table.RECORDS_FILENAME
  path.write_text(json.dumps(ROW))  # killed just before the newline: readers count it
  assert len(runs_table.read_rows(path)) == 1
  runs_table.append_rows(path, [dict(ROW, step=7)])
  assert [r["step"] for r in runs_table.read_rows(path)] == [5, 7]
  assert not list(tmp_path.glob("*.torn-*"))


# Appends rows step = start, start+1, ... forever, printing each step once written.
# Mode "half": the append of step `start` writes half its bytes and the process
# SIGKILLs itself inside append_rows, a deterministic torn write. Mode "slow": every
# write trickles out in 4 kB pieces (a slow disk), so a kill at a random moment
# usually lands inside one.
_WRITER = textwrap.dedent("""
    import os, signal, sys, time
    from scaling_jax.runs import table
    path, start, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    row = dict({row!r}, config="x" * 200_000)
    real_write = os.write
    def write_half_then_die(fd, data):
      real_write(fd, bytes(data)[:len(data) // 2])
      os.kill(os.getpid(), signal.SIGKILL)
    def write_slowly(fd, data):
      data = bytes(data)
      for i in range(0, len(data), 4096):
        real_write(fd, data[i:i + 4096])
        time.sleep(0.001)
      return len(data)
    os.write = write_half_then_die if mode == "half" else write_slowly
    for step in range(start, 10**9):
      table.append_rows(path, [dict(row, step=step)])
      print(step, flush=True)
""")


def _start_writer(path, start, mode):
  code = _WRITER.format(row=ROW)
  return subprocess.Popen([sys.executable, "-c", code, str(path), str(start), mode],
                          stdout=subprocess.PIPE, text=True, env=dict(os.environ,
                          PYTHONPATH=str(pathlib.Path(__file__).resolve().parents[1])))


def _steps(path):
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # a torn tail is expected before the next append
    return [r["step"] for r in runs_table.read_rows(path)]


def test_killed_mid_row_then_resumed_loses_only_that_row(tmp_path):
  path = tmp_path / runs_table.RECORDS_FILENAME
  runs_table.append_rows(path, [ROW])
  child = _start_writer(path, 6, "half")
  assert child.wait(timeout=60) == -signal.SIGKILL and child.stdout.read() == ""
  assert not path.read_bytes().endswith(b"\n")  # the kill tore the row for step 6
  with pytest.warns(UserWarning, match="cut a torn last line"):
    runs_table.append_rows(path, [dict(ROW, step=7)])
  assert [r["step"] for r in runs_table.read_rows(path)] == [5, 7]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigkill_at_a_random_moment_then_resume_reads_cleanly(tmp_path, seed):
  rng = random.Random(seed)
  path = tmp_path / runs_table.RECORDS_FILENAME
  expected = []
  for _ in range(3):
    start = len(expected)
    child = _start_writer(path, start, "slow")
    assert child.stdout.readline().strip() == str(start)  # it is appending
    time.sleep(rng.uniform(0, 0.2))
    child.send_signal(signal.SIGKILL)
    acknowledged = len(child.stdout.read().split()) + 1
    child.wait()
    written = _steps(path)[start:]
    # Every acknowledged row survives; at most the one being written is lost.
    assert written == list(range(start, start + len(written)))
    assert acknowledged <= len(written) <= acknowledged + 1
    expected += written
    with warnings.catch_warnings(record=True):  # a torn tail, if the kill made one
      runs_table.append_rows(path, [dict(ROW, step=len(expected))])  # the resume
    expected.append(len(expected))
    with warnings.catch_warnings():
      warnings.simplefilter("error")
      assert [r["step"] for r in runs_table.read_rows(path)] == expected


@pytest.mark.parametrize("column,value,message", [
    ("loss/validation", -1.0, "must be positive"),
    ("loss/validation", 0.0, "must be positive"),
    ("acc/boolq", 26.05, r"must lie in \[0, 1\].*percentage"),
    ("acc/boolq", -0.1, r"must lie in \[0, 1\]"),
    ("N", 0, "positive finite"),
    ("flops", -5.0, "positive finite"),
])
def test_values_are_checked_by_kind(tmp_path, column, value, message):
  row = dict(run="r", N=10, tokens=100, M=10.0, flops=6000.0, step=1, final=True)
  row[column] = value
  with pytest.raises(runs_table.RecordsError, match=message):
    runs_table.append_rows(tmp_path / "records.jsonl", [row])
  assert not (tmp_path / "records.jsonl").exists()
