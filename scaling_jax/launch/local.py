"""Backends that train on this machine: a pool of worker processes, or inline.

The pool runs up to `config.launch.max_parallel` units at a time, each in its own
`python -m scaling_jax.launch.worker` process on its own device slice, with its
output appended to `<unit dir>/log.txt`. A failed unit does not stop the others;
the launcher reports every failure at the end, with the fix when a unit's mesh
wanted more devices than its slice has. When the user's XLA_FLAGS sets another
host-device count than config.launch.cpu_devices_per_unit, the config field wins
and one line saying so goes to stderr and to the top of every unit's log.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

from scaling_jax.launch import devices
from scaling_jax.launch import unit_lock
from scaling_jax.launch import worker

LOG_FILENAME = "log.txt"
_POLL_S = 0.5


def _start(unit, env_overrides: dict, python: str, note: str = "") -> subprocess.Popen:
  unit.write_config()
  env = dict(os.environ, **env_overrides)
  env[worker.DIE_WITH_PARENT_ENV] = "1"
  # The worker must import this same scaling_jax, installed or not.
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
      __file__))))
  env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
  log = open(os.path.join(unit.workdir, LOG_FILENAME), "ab")  # pylint: disable=consider-using-with
  try:
    if note:
      log.write(f"[launcher] {note}\n".encode())
      log.flush()
    return subprocess.Popen([python, "-m", "scaling_jax.launch.worker", unit.workdir],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
  finally:
    log.close()  # the child holds its own descriptor


RESUMES = "the same command resumes it from its last checkpoint"


def unfinished_reason(unit, exit_code, log_from: int = 0) -> str:
  """'' when the unit finished, else why not (for the failure report).

  `log_from`: where in the unit's log this attempt's output begins (older attempts
  of a resumed unit precede it), searched for a known fix.
  """
  if unit.finished():
    return ""
  log = os.path.join(unit.workdir, LOG_FILENAME)
  if exit_code == worker.BUSY_EXIT:
    return (f"another launcher held its lock {unit_lock.lock_path(unit.workdir)}; "
            f"if that launcher stopped before finishing it, {RESUMES}")
  if exit_code == 0:
    return (f"exited before its final evaluation (is config.train."
            f"stop_after_steps set?); {RESUMES}; see {log}")
  if isinstance(exit_code, int) and (exit_code < 0 or exit_code == worker.INTERRUPTED_EXIT):
    return f"stopped from outside (exit code {exit_code}); {RESUMES}; see {log}"
  hint = devices.mesh_hint(_tail(log, log_from))
  return (f"exit code {exit_code}; " + (f"{hint}; " if hint else "") +
          f"see {log}, and fix the cause before running the same command again")


def _tail(path: str, start: int, size: int = 65536) -> str:
  try:
    with open(path, "rb") as f:
      f.seek(max(start, os.path.getsize(path) - size))
      return f.read().decode("utf-8", errors="replace")
  except OSError:
    return ""


def _log_size(unit) -> int:
  path = os.path.join(unit.workdir, LOG_FILENAME)
  return os.path.getsize(path) if os.path.exists(path) else 0


def _stop(procs) -> None:
  for proc in procs:
    if proc.poll() is None:
      proc.terminate()
  for proc in procs:
    try:
      proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
      proc.kill()


def run_pool(units, launch_cfg, progress) -> dict[str, str]:
  """Trains `units` in worker processes; returns {name: error} of the failed."""
  free = list(reversed(devices.slice_envs(launch_cfg)))
  # Only CPU slices set the host-device count; GPU slices leave XLA_FLAGS alone.
  note = devices.device_count_note(launch_cfg) if "XLA_FLAGS" in free[0] else ""
  if note:
    print(note, file=sys.stderr)
  python = launch_cfg.python or sys.executable
  pending, running, failures = list(units), {}, {}
  try:
    while pending or running:
      while pending and free:
        unit, env = pending.pop(0), free.pop()
        log_from = _log_size(unit)
        running[unit.name] = (unit, _start(unit, env, python, note), env, log_from)
        progress.started(unit)
      time.sleep(_POLL_S)
      for name, (unit, proc, env, log_from) in list(running.items()):
        code = proc.poll()
        if code is None:
          continue
        del running[name]
        free.append(env)
        error = unfinished_reason(unit, code, log_from)
        if error:
          failures[name] = error
        report_outcome(progress, unit, code, error)
      progress.tick()
  finally:
    _stop([proc for _, proc, _, _ in running.values()])
  return failures


def report_outcome(progress, unit, exit_code, error: str) -> None:
  """Tells `progress` how a unit's attempt ended (`error`: unfinished_reason)."""
  if exit_code == worker.BUSY_EXIT and error:
    progress.skipped(unit, error)  # not trained here, and not failed
  else:
    progress.ended(unit, not error, error)


def run_inline(units, launch_cfg, progress) -> dict[str, str]:
  """Trains `units` one after another in this process (notebooks, debugging),
  each under its lock, as a worker would; skips those another process holds.

  Fails fast: the first error propagates with its traceback.
  """
  del launch_cfg
  from scaling_jax import train  # pylint: disable=g-import-not-at-top
  failures = {}
  for unit in units:
    progress.started(unit)
    code = 0
    try:
      with unit_lock.hold(unit.workdir):
        if not unit.finished():  # its last holder may just have finished it
          train.train_run(unit.config, unit.workdir)
    except unit_lock.UnitBusy:
      code = worker.BUSY_EXIT
    error = unfinished_reason(unit, code)
    report_outcome(progress, unit, code, error)
    if error:
      failures[unit.name] = error
      if code != worker.BUSY_EXIT:
        return failures
  return failures
