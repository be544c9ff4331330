"""A stopped worker saves the step it reached; the resumed run loses nothing.

One unit is stopped twice between its periodic checkpoints, by SIGTERM (the
local pool, a scheduler) and by submitit's preemption signal (a stand-in for
submitit's handler, which requeues and exits), and resumed each time; its final
losses must equal an uninterrupted run's.
"""
import os
import pathlib
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from scaling_jax import checkpoint
from scaling_jax import preemption
from scaling_jax import train
from scaling_jax.launch import worker
from scaling_jax.runs import table as runs_table
from conftest import tiny_train_config

REPO = pathlib.Path(__file__).resolve().parents[1]
STEPS = 256  # tiny-1 at M = 1.5, 256 tokens a step
CHECKPOINT_EVERY = 200  # steps: only the first step and 200 are periodic saves
_FAKE_REQUEUE_EXIT = 144  # what submitit's local requeue exits with

# A submitit job in miniature: a handler for submitit's signal that, like
# submitit's, requeues and exits; it reports the checkpoint it found on disk.
_SUBMITIT_JOB = textwrap.dedent("""
    import os, signal, sys
    from absl import logging
    from scaling_jax import checkpoint
    from scaling_jax.launch import worker

    def requeue_and_exit(signum, frame):
      saved = checkpoint.Checkpointer(os.path.join(sys.argv[1], "checkpoints"), 1)
      print(f"requeued with checkpoint {saved.latest_step()}", flush=True)
      os._exit(%d)

    logging.set_verbosity(logging.INFO)
    signal.signal(signal.SIGUSR2, requeue_and_exit)
    worker.UnitTask([sys.argv[1]])()
""" % _FAKE_REQUEUE_EXIT)




def _config(data_cache):
  config = tiny_train_config(data_cache, tokens_per_param=1.5, log_every_steps=1,
                        eval_every_tokens=100 * 256,
                        checkpoint_every_tokens=CHECKPOINT_EVERY * 256)
  config.name = "unit"
  return config


def _logged_step(log: pathlib.Path) -> int:
  steps = re.findall(r"step (\d+)/%d loss" % STEPS, log.read_text(errors="replace"))
  return int(steps[-1]) if steps else 0


def _stop_mid_interval(cmd, run_dir: pathlib.Path, signum, after_step: int):
  """Runs `cmd`, sends `signum` once it logged `after_step`; returns (exit
  code, the step it had logged when signalled, its log)."""
  log = run_dir / f"log_{signum}.txt"
  with open(log, "wb") as out:
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
  deadline = time.time() + 240
  while _logged_step(log) < after_step and proc.poll() is None:
    assert time.time() < deadline, log.read_text()
    time.sleep(0.02)
  reached = _logged_step(log)
  proc.send_signal(signum)
  code = proc.wait(timeout=120)
  return code, reached, log.read_text(errors="replace")


def _start_step(log_text: str) -> int:
  return int(re.findall(r"starting at step (\d+)", log_text)[-1])


@pytest.mark.slow
def test_stopped_worker_saves_its_step_and_resumes_to_the_same_losses(
    tmp_path, data_cache):
  config = _config(data_cache)
  run_dir = tmp_path / "unit"
  run_dir.mkdir()
  (run_dir / "unit_config.json").write_text(config.to_json())
  ckpt_dir = str(run_dir / "checkpoints")
  worker_cmd = [sys.executable, "-m", "scaling_jax.launch.worker", str(run_dir)]

  code, reached, log = _stop_mid_interval(worker_cmd, run_dir, signal.SIGTERM, 30)
  assert code == worker.INTERRUPTED_EXIT, log
  saved = checkpoint.Checkpointer(ckpt_dir, 1).latest_step()
  assert reached <= saved < CHECKPOINT_EVERY, log  # the step it reached, not 1
  assert f"stopped on request at step {saved}, which is saved" in log

  job = tmp_path / "submitit_job.py"
  job.write_text(_SUBMITIT_JOB)
  code, reached, log = _stop_mid_interval(
      [sys.executable, str(job), str(run_dir)], run_dir, signal.SIGUSR2, saved + 30)
  assert _start_step(log) == saved, log
  assert code == _FAKE_REQUEUE_EXIT, log
  resaved = checkpoint.Checkpointer(ckpt_dir, 1).latest_step()
  assert reached <= resaved < CHECKPOINT_EVERY, log
  # submitit requeued only after that step was on disk.
  assert f"requeued with checkpoint {resaved}" in log

  done = subprocess.run(worker_cmd, capture_output=True, text=True, timeout=300,
                        env=dict(os.environ, PYTHONPATH=str(REPO)))
  assert done.returncode == 0, done.stderr
  assert _start_step(done.stderr) == resaved, done.stderr
  resumed = runs_table.read_rows(run_dir / runs_table.RECORDS_FILENAME)
  assert [r["step"] for r in resumed] == [100, 200, STEPS]

  uninterrupted = train.train_run(_config(data_cache), str(tmp_path / "reference"))
  for got, want in zip(resumed, uninterrupted):
    for key in ("loss/validation", "loss/ood"):
      assert got[key] == want[key], (got["step"], key)  # bit-identical on CPU


def test_a_request_is_deferred_only_inside_a_loop_and_only_once():
  acted, now = [], [100.0]
  on_signal = preemption.handler(lambda: acted.append("requeue"), clock=lambda: now[0])
  on_signal(signal.SIGUSR2, None)  # no loop runs: nothing to save, act now
  assert acted == ["requeue"]
  with pytest.raises(preemption.Stopped):
    with preemption.honoured():
      on_signal(signal.SIGUSR2, None)
      assert acted == ["requeue"] and preemption.requested()
      # The same stop's echo (a parent-death signal sent once per reparenting):
      # acting on it would interrupt the save the first signal asked for.
      now[0] += preemption.DUPLICATE_WINDOW_S * 0.9
      on_signal(signal.SIGUSR2, None)
      assert acted == ["requeue"] and preemption.requested()
      now[0] += preemption.DUPLICATE_WINDOW_S * 0.2  # a stop that is not coming
      on_signal(signal.SIGUSR2, None)  # asked again: this one does not wait
      assert acted == ["requeue"] * 2
      raise preemption.Stopped(3)  # what the loop raises once its step is saved
  assert acted == ["requeue"] * 3 and not preemption.requested()


def test_the_window_counts_from_the_pending_request_of_this_loop():
  now = [0.0]
  on_signal = preemption.handler(clock=lambda: now[0])
  with pytest.raises(preemption.Stopped):
    with preemption.honoured():
      on_signal(signal.SIGTERM, None)
      raise preemption.Stopped(1)
  now[0] += 1.0  # a new loop's first request is deferred, however soon it comes
  with pytest.raises(preemption.Stopped):
    with preemption.honoured():
      on_signal(signal.SIGTERM, None)
      assert preemption.requested()
      raise preemption.Stopped(2)


_LINGERING_THREAD_WORKER = textwrap.dedent("""
    import sys, threading
    from scaling_jax.launch import worker

    def train_units(run_dirs):
      # What an interrupted orbax save can leave: a thread that never ends.
      threading.Thread(target=threading.Event().wait).start()
      raise KeyboardInterrupt

    worker.train_units = train_units
    worker.main(["worker", "unused_dir"])
""")


@pytest.mark.slow
def test_an_interrupted_worker_exits_though_a_thread_lingers(tmp_path):
  script = tmp_path / "lingering.py"
  script.write_text(_LINGERING_THREAD_WORKER)
  done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                        timeout=120, env=dict(os.environ, PYTHONPATH=str(REPO)))
  assert done.returncode == worker.INTERRUPTED_EXIT, done.stderr
  assert "interrupted; the unit resumes from its last checkpoint" in done.stderr


def test_without_an_action_a_request_interrupts():
  on_signal = preemption.handler()
  with pytest.raises(KeyboardInterrupt):
    on_signal(signal.SIGTERM, None)
  with pytest.raises(preemption.Stopped):  # the loop's own Stopped stands
    with preemption.honoured():
      on_signal(signal.SIGTERM, None)
      raise preemption.Stopped(2)
  with pytest.raises(KeyboardInterrupt):  # a request the loop ended too soon to see
    with preemption.honoured():
      on_signal(signal.SIGTERM, None)
  with pytest.raises(ValueError):  # an error in the loop is not masked
    with preemption.honoured():
      on_signal(signal.SIGTERM, None)
      raise ValueError("bug")
  assert not preemption.requested()


@pytest.mark.slow
def test_an_interrupt_in_a_save_abandons_it_and_the_run_resumes(
    tmp_path, data_cache, monkeypatch):
  """Ctrl-C (or a second signal) inside orbax's save must not wait on that save,
  which may never finish; the next run resumes from a committed checkpoint."""
  closed_with, real_save = [], checkpoint.Checkpointer.maybe_save
  real_close = checkpoint.Checkpointer.close

  def save_then_interrupt(self, step, state, force=False):
    started = real_save(self, step, state, force)
    if step == 30:
      raise KeyboardInterrupt  # as if it struck inside orbax, the save begun
    return started

  def recording_close(self, wait=True):
    closed_with.append(wait)
    real_close(self, wait)

  monkeypatch.setattr(checkpoint.Checkpointer, "maybe_save", save_then_interrupt)
  monkeypatch.setattr(checkpoint.Checkpointer, "close", recording_close)
  config = tiny_train_config(data_cache, tokens_per_param=0.3, checkpoint_every_tokens=10 * 256)
  with pytest.raises(KeyboardInterrupt):
    train.train_run(config, str(tmp_path))
  assert closed_with == [False]
  monkeypatch.setattr(checkpoint.Checkpointer, "maybe_save", real_save)
  rows = train.train_run(config, str(tmp_path))
  assert closed_with == [False, True] and rows and rows[-1]["final"]
