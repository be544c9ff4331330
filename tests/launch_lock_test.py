"""Two launchers on one workdir: a unit another process trains is skipped, not
trained twice, and waited for before the fit; reported as failed only when its
trainer stopped without finishing it."""
import io
import os
import subprocess
import sys
import threading
import time

import pytest

from conftest import load_config
from scaling_jax import launch
from scaling_jax.launch import local
from scaling_jax.launch import progress as progress_lib
from scaling_jax.launch import unit_lock
from scaling_jax.launch import worker
from scaling_jax.runs import table as runs_table

_HOLD = ("import filelock, sys\n"
         "lock = filelock.FileLock(sys.argv[1]); lock.acquire()\n"
         "print('held', flush=True); sys.stdin.read()")


@pytest.fixture
def hold_lock():
  """Holds a unit's lock in another process (as its trainer would) until undone."""
  holders = []

  def hold(run_dir):
    os.makedirs(run_dir, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, unit_lock.lock_path(run_dir)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "held\n"
    holders.append(proc)
    return proc

  yield hold
  for proc in holders:
    proc.stdin.close()  # its read returns, it exits, the kernel drops the lock
    proc.wait(timeout=30)


def _fake_train(trained):
  def train_run(config, run_dir):
    assert unit_lock.is_held(run_dir)  # its trainer holds the lock throughout
    trained.append(config.name)
    runs_table.append_rows(os.path.join(run_dir, "records.jsonl"), [dict(
        run=config.name, N=1, tokens=1, M=1.0, flops=6.0, step=1, final=True)])
  return train_run


def _units_config(tmp_path):
  config = load_config("grid", "smoke")
  config.unlock()
  config.data.cache_dir = str(tmp_path / "cache")
  config.sweep = [dict(model="tiny-0", tokens_per_param=10.0),
                  dict(model="tiny-0", tokens_per_param=20.0)]
  config.launch.backend = "inline"
  return config


def _run_in_thread(config, tmp_path):
  """launch.run in a thread: (thread, box) where box gets 'error' or 'units'."""
  box = {}

  def target():
    try:
      box["units"] = launch.run(config, str(tmp_path))
    except Exception as e:  # pylint: disable=broad-except
      box["error"] = e
  thread = threading.Thread(target=target, daemon=True)
  thread.start()
  return thread, box


def _wait_for(predicate, seconds=60):
  deadline = time.time() + seconds
  while not predicate():
    assert time.time() < deadline, "timed out"
    time.sleep(0.05)


@pytest.mark.parametrize("other_finishes", [True, False])
def test_a_second_launcher_skips_the_held_unit_and_waits_for_it(
    tmp_path, hold_lock, monkeypatch, capsys, other_finishes):
  # Two launchers share a workdir's units: this one trains the free unit, then waits
  # for the one the other launcher holds, and reports on every run once it is done.
  config = _units_config(tmp_path)
  held, free = launch.build_units(config, str(tmp_path))
  trained = []
  monkeypatch.setattr("scaling_jax.train.train_run", _fake_train(trained))
  monkeypatch.setattr(launch, "WAIT_POLL_S", 0.05)
  holder = hold_lock(held.workdir)

  thread, box = _run_in_thread(config, tmp_path)
  _wait_for(lambda: trained == [free.name])
  time.sleep(0.3)
  assert thread.is_alive() and not box  # waiting on the other launcher, not failing
  if other_finishes:  # the other launcher writes the unit's final row, then lets go
    runs_table.append_rows(os.path.join(held.workdir, "records.jsonl"), [dict(
        run=held.name, N=1, tokens=1, M=1.0, flops=6.0, step=1, final=True)])
  holder.stdin.close()
  holder.wait(timeout=30)
  thread.join(timeout=30)
  assert not thread.is_alive() and trained == [free.name]  # never trained twice
  err = capsys.readouterr().err
  lock_file = unit_lock.lock_path(held.workdir)
  assert f"skipping {held.name}: being trained by another launcher (lock {lock_file} " \
         f"is held)" in err
  assert f"waiting for 1 unit(s) another launcher is training on this workdir: " \
         f"{held.name}" in err
  if other_finishes:
    assert "error" not in box and len(box["units"]) == 2  # no unit called unfinished
  else:  # the other launcher stopped without finishing it: a unit to resume
    assert isinstance(box["error"], launch.UnitsUnfinished)
    assert f"1 of 2 units did not finish:\n  {held.name}: another launcher held its " \
           f"lock" in str(box["error"])


def test_a_unit_locked_after_the_launch_began_is_skipped_by_its_trainer(
    tmp_path, hold_lock, monkeypatch, capsys):
  """The lock, not the launcher's first look, is what keeps a unit to one trainer."""
  config = _units_config(tmp_path)
  unit = launch.build_units(config, str(tmp_path))[0]
  unit.write_config()
  trained = []
  monkeypatch.setattr("scaling_jax.train.train_run", _fake_train(trained))
  holder = hold_lock(unit.workdir)

  assert worker.train_units([unit.workdir]) == [unit.workdir]
  progress = progress_lib.Progress([unit], stream=io.StringIO())
  failures = local.run_inline([unit], config.launch, progress)
  assert trained == []
  assert "skipped tiny-0_M10: another launcher held its lock" in (
      progress.stream.getvalue())
  assert f"skipping {unit.name}: being trained" in capsys.readouterr().err
  # Reported as trained elsewhere while the lock is held; once it is not, as a
  # unit to resume (its trainer stopped before finishing it).
  with pytest.raises(RuntimeError, match="being trained by another launcher"):
    launch._raise_unfinished(failures, [unit])  # pylint: disable=protected-access
  holder.stdin.close()
  holder.wait(timeout=30)
  with pytest.raises(RuntimeError, match=f"did not finish:\n  {unit.name}: another "
                     f"launcher held its lock .*{local.RESUMES}"):
    launch._raise_unfinished(failures, [unit])  # pylint: disable=protected-access


@pytest.mark.slow
def test_the_worker_process_exits_busy_on_a_held_unit(tmp_path, hold_lock):
  unit = launch.build_units(_units_config(tmp_path), str(tmp_path))[0]
  unit.write_config()
  hold_lock(unit.workdir)
  done = subprocess.run([sys.executable, "-m", "scaling_jax.launch.worker", unit.workdir],
                        capture_output=True, text=True, timeout=300)
  assert done.returncode == worker.BUSY_EXIT, done.stderr
  assert f"skipping {unit.name}: being trained by another launcher" in done.stderr
  assert not os.path.exists(os.path.join(unit.workdir, "checkpoints"))
  assert local.RESUMES in local.unfinished_reason(unit, done.returncode)
