"""report/staging: a kill at any point of the swap leaves the whole old set or the new."""
import os

import pytest

from scaling_jax.report import staging


def _write_set(directory, tag):
  for name in ("fit.json", "summary.md", "predictions.csv"):
    (directory / name).write_text(f"{tag} {name}")


def _read_set(directory):
  return {p.name: p.read_text() for p in directory.iterdir()}


OLD = {n: f"old {n}" for n in ("fit.json", "summary.md", "predictions.csv")}
NEW = {n: f"new {n}" for n in ("fit.json", "summary.md", "predictions.csv")}


class Killed(BaseException):
  """Stands for SIGKILL: nothing after it runs, no `except Exception` catches it."""


def _count_renames(tmp_path, monkeypatch):
  dest = tmp_path / "count" / "report"
  dest.mkdir(parents=True)
  _write_set(dest, "old")
  calls = []
  real = os.rename
  monkeypatch.setattr(os, "rename", lambda a, b: calls.append(1) or real(a, b))
  with staging.staged_dir(dest) as stage:
    _write_set(stage, "new")
  monkeypatch.setattr(os, "rename", real)
  return len(calls)


@pytest.mark.parametrize("hard", [True, False])
def test_a_kill_at_every_rename_leaves_one_whole_set(tmp_path, monkeypatch, hard):
  """hard: SIGKILL (no clean-up runs); soft: an interrupt (the `finally` runs)."""
  renames = _count_renames(tmp_path, monkeypatch)
  assert renames == 2
  real_rename, real_rmtree = os.rename, staging.shutil.rmtree
  # Kill before rename k; k = renames: after both, before the marker is removed.
  for k in range(renames + 1):
    dest = tmp_path / f"kill{k}" / "report"
    dest.mkdir(parents=True)
    _write_set(dest, "old")
    calls, killed = [], []

    def rename(a, b, k=k, calls=calls, killed=killed):
      if len(calls) == k:
        killed.append(1)
        raise Killed()
      calls.append(1)
      real_rename(a, b)

    def rmtree(path, *args, killed=killed, **kwargs):
      if not (hard and killed):
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(staging.shutil, "rmtree", rmtree)
    if k == renames:
      monkeypatch.setattr(staging.pathlib.Path, "unlink",
                          _kill_on_mark(staging.pathlib.Path.unlink, killed))
    with pytest.raises(Killed):
      with staging.staged_dir(dest) as stage:
        _write_set(stage, "new")
    monkeypatch.undo()
    staging.recover(dest)  # what the next write does first
    got = _read_set(dest)
    assert got in (OLD, NEW), (k, got)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["report"], k
    if hard:  # once the old set is moved aside, the complete new one wins
      assert got == (OLD if k == 0 else NEW), (k, got)


def _kill_on_mark(real_unlink, killed):
  def unlink(self, *args, **kwargs):
    if self.name == staging.COMPLETE_MARK and self.exists():
      killed.append(1)
      raise Killed()
    return real_unlink(self, *args, **kwargs)
  return unlink


def test_a_failure_while_writing_keeps_the_old_set_and_no_debris(tmp_path):
  dest = tmp_path / "report"
  dest.mkdir()
  _write_set(dest, "old")
  with pytest.raises(RuntimeError):
    with staging.staged_dir(dest) as stage:
      (stage / "fit.json").write_text("half")
      raise RuntimeError("disk full")
  assert _read_set(dest) == OLD
  assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_stale_staging_folders_are_cleaned_at_start_up(tmp_path):
  dest = tmp_path / "report"
  dest.mkdir()
  _write_set(dest, "old")
  (tmp_path / ".report.staging-abc").mkdir()  # an incomplete set from a kill
  (tmp_path / ".report.staging-abc" / "fit.json").write_text("half")
  with staging.staged_dir(dest) as stage:
    _write_set(stage, "new")
  assert _read_set(dest) == NEW
  assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_first_write_creates_the_folder(tmp_path):
  dest = tmp_path / "deep" / "report"
  with staging.staged_dir(dest) as stage:
    _write_set(stage, "new")
  assert _read_set(dest) == NEW


def test_two_writers_take_turns_and_the_last_set_stands(tmp_path):
  # Two launchers finishing one sweep together both write the report: the second
  # waits for the first's swap, so neither renames the folder from under the other.
  import threading  # pylint: disable=import-outside-toplevel
  import time  # pylint: disable=import-outside-toplevel
  destination = tmp_path / "report"
  inside, order = threading.Event(), []

  def write(name, hold_s):
    with staging.staged_dir(destination) as stage:
      order.append(f"{name} in")
      inside.set()
      (stage / "who.txt").write_text(name)
      time.sleep(hold_s)
      order.append(f"{name} out")

  first = threading.Thread(target=write, args=("first", 0.5))
  first.start()
  inside.wait(10)
  second = threading.Thread(target=write, args=("second", 0.0))
  second.start()
  first.join(10)
  second.join(10)
  assert order == ["first in", "first out", "second in", "second out"]
  assert (destination / "who.txt").read_text() == "second"
  assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
