"""The local process pool end to end: kill a sweep mid-unit, resume, re-run."""
import pytest
import os
import pathlib
import re
import subprocess
import sys
import textwrap
import time
import types

from scaling_jax import launch
from sweep_helpers import SCRIPT_HEAD
from sweep_helpers import checkpoints
from sweep_helpers import start_steps
from sweep_helpers import wait_group_gone
from scaling_jax.runs import table as runs_table

REPO = pathlib.Path(__file__).resolve().parents[1]

_SCRIPT = SCRIPT_HEAD + textwrap.dedent("""

    def config():
      c = grid.get_config("smoke")
      c.sweep = [dict(model="tiny-0", tokens_per_param=20.0, seed=0)]  # 148 steps
      c.data.cache_dir = {cache!r}
      c.train.checkpoint_every_tokens = 20 * 2048   # every 20 steps
      c.train.eval_every_tokens = 50 * 2048
      c.launch.progress_every_s = 1.0
      return c

    if __name__ == "__main__":
      launch.run(config(), sys.argv[1])
""")


@pytest.mark.slow
def test_killed_sweep_resumes_and_finished_sweep_trains_nothing(tmp_path, capsys):
  script = tmp_path / "sweep_script.py"
  script.write_text(_SCRIPT.format(grid=str(REPO / "configs" / "grid.py"),
                                   cache=str(tmp_path / "cache")))
  workdir = tmp_path / "work"
  env = dict(os.environ, PYTHONPATH=str(REPO))
  cmd = [sys.executable, str(script), str(workdir)]
  first = subprocess.Popen(cmd, env=env, start_new_session=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  unit_dir = workdir / "runs" / "tiny-0_M20_s0"
  deadline = time.time() + 120
  while not checkpoints(unit_dir) and time.time() < deadline:
    assert first.poll() is None, first.stdout.read().decode()
    time.sleep(0.1)
  seen = checkpoints(unit_dir)
  assert seen, "no checkpoint within 120 s"
  # Kill the launcher alone, hard: its worker must not outlive it.
  first.kill()
  first.wait()
  # The worker gets SIGTERM from the kernel (die-with-parent) and first finishes the
  # step or evaluation in flight and saves it (scaling_jax/preemption.py): on a
  # loaded 2-core machine that took over a minute once, so allow three.
  assert wait_group_gone(first.pid, timeout=180), "a worker outlived the killed launcher"
  assert not runs_table.is_finished(str(unit_dir))
  # The parent-death signal often comes twice (once per reparenting of the
  # worker); the echo must not interrupt the save the first one asked for.
  stopped = re.findall(r"stopped on request at step (\d+), which is saved",
                       (unit_dir / "log.txt").read_text(errors="replace"))
  assert len(stopped) == 1, (unit_dir / "log.txt").read_text(errors="replace")[-3000:]

  done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
  assert done.returncode == 0, done.stdout + done.stderr
  assert "1 units, 0 already finished" in done.stderr
  starts = start_steps(unit_dir)
  assert len(starts) == 2 and starts[0] == 0
  assert starts[1] == int(stopped[0]) >= seen[-1], (starts, stopped, seen)  # lost nothing
  rows = runs_table.read_rows(unit_dir / "records.jsonl")
  steps = [r["step"] for r in rows]
  assert len(steps) == len(set(steps)) and rows[-1]["final"]
  assert steps == sorted(steps) and steps[-1] == rows[-1]["tokens"] // 2048

  # A third run on the finished workdir trains nothing and appends nothing.
  sizes = {p: p.stat().st_size for p in workdir.rglob("*.jsonl")}
  sys.path.insert(0, str(tmp_path))
  try:
    import sweep_script  # pylint: disable=import-outside-toplevel
  finally:
    sys.path.pop(0)
  units = launch.run(sweep_script.config(), str(workdir))
  assert len(units) == 1 and units[0].finished()
  assert {p: p.stat().st_size for p in workdir.rglob("*.jsonl")} == sizes
  assert "started" not in capsys.readouterr().err


def test_resume_is_advised_only_where_it_helps(tmp_path):
  """A unit stopped from outside resumes; one that raised needs a fix first."""
  from scaling_jax.launch import local, worker  # pylint: disable=import-outside-toplevel
  unit = types.SimpleNamespace(workdir=str(tmp_path), finished=lambda: False)
  for code in (-9, -15, worker.INTERRUPTED_EXIT, 0):
    assert local.RESUMES in local.unfinished_reason(unit, code), code
  raised = local.unfinished_reason(unit, 1)
  assert local.RESUMES not in raised and "fix the cause" in raised
