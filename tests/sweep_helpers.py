"""Helpers for the tests that run a sweep in a subprocess and kill it mid-way."""
import os
import re
import signal
import textwrap
import time

# The start of a sweep script: configs/grid.py loaded from its path ({grid!r}) as
# `grid`, and `launch` imported; a test appends its config() and __main__ block.
SCRIPT_HEAD = textwrap.dedent("""
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("grid", {grid!r})
    grid = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grid)
    from scaling_jax import launch
""")


def checkpoints(run_dir) -> list[int]:
  """The committed checkpoint steps of a unit (orbax renames a save to its step)."""
  ckpt = run_dir / "checkpoints"
  return sorted(int(d) for d in os.listdir(ckpt) if d.isdigit()) if ckpt.is_dir() else []


def wait_group_gone(pgid, timeout=60) -> bool:
  """Whether process group `pgid` exits within `timeout` s (else it is killed)."""
  deadline = time.time() + timeout
  while time.time() < deadline:
    try:
      os.killpg(pgid, 0)
    except ProcessLookupError:
      return True
    time.sleep(0.2)
  os.killpg(pgid, signal.SIGKILL)
  return False


def start_steps(run_dir) -> list[int]:
  """The step each training call of a unit started at, from its log."""
  text = (run_dir / "log.txt").read_text(errors="replace")
  return [int(s) for s in re.findall(r"starting at step (\d+)", text)]
