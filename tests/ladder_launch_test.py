"""A WSD ladder through the local pool: branches wait for their trunk, and a
launcher killed mid-branch resumes without training a step twice or losing a row."""
import os
import pathlib
import subprocess
import sys
import textwrap
import time

import pytest

from scaling_jax.runs import table as runs_table
from sweep_helpers import SCRIPT_HEAD
from sweep_helpers import checkpoints
from sweep_helpers import start_steps
from sweep_helpers import wait_group_gone

REPO = pathlib.Path(__file__).resolve().parents[1]

# tiny-0 at M = 4, 8, 16: 30, 59 and 119 steps; with half of each run cooling down,
# the M = 8 branch forks at step 29 and trains 30 steps, checkpointing every 5.
_SCRIPT = SCRIPT_HEAD + textwrap.dedent("""

    def config():
      c = grid.get_config("smoke")
      c.sweep = [dict(model="tiny-0", tokens_per_param=m, seed=0) for m in (4.0, 8.0, 16.0)]
      c.optim.update(dict(schedule="wsd", cooldown_fraction=0.5, warmup_steps=3))
      c.train.branch_multipliers = "4,8,16"
      c.data.cache_dir = {cache!r}
      c.train.checkpoint_every_tokens = 5 * 2048
      c.train.eval_every_tokens = 20 * 2048
      c.launch.progress_every_s = 1.0
      return c

    if __name__ == "__main__":
      launch.run(config(), sys.argv[1])
""")


@pytest.mark.slow  # trains a ladder of three tiny runs, twice started
def test_a_ladder_killed_mid_branch_resumes_without_repeating_a_step(tmp_path):
  script = tmp_path / "ladder_script.py"
  script.write_text(_SCRIPT.format(grid=str(REPO / "configs" / "grid.py"),
                                   cache=str(tmp_path / "cache")))
  workdir = tmp_path / "work"
  env = dict(os.environ, PYTHONPATH=str(REPO))
  cmd = [sys.executable, str(script), str(workdir)]
  branch = workdir / "runs" / "tiny-0_M8_s0"
  first = subprocess.Popen(cmd, env=env, start_new_session=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  deadline = time.time() + 300
  while not checkpoints(branch) and time.time() < deadline:
    assert first.poll() is None, first.stdout.read().decode()
    time.sleep(0.05)
  assert checkpoints(branch), "the branch saved no checkpoint within 300 s"
  first.kill()
  first.wait()
  assert wait_group_gone(first.pid, timeout=180), "a worker outlived the killed launcher"
  done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stdout + done.stderr[-3000:]
  runs = {m: workdir / "runs" / f"tiny-0_M{m}_s0" for m in (4, 8, 16)}
  for m, run_dir in runs.items():
    rows = runs_table.read_rows(run_dir / runs_table.RECORDS_FILENAME)
    steps = [r["step"] for r in rows]
    assert len(steps) == len(set(steps)) and rows[-1]["final"], (m, steps)
    assert rows[-1]["branch_of"] == ("" if m == 16 else "tiny-0_M16_s0")
  starts = start_steps(branch)
  # Forked once at step 29; if the kill caught it mid-branch, resumed where it
  # stopped, never from the fork again.
  assert starts[0] == 29 and starts.count(29) == 1, starts
  assert all(s > 29 for s in starts[1:]), starts
  assert len(start_steps(runs[16])) <= 2 and start_steps(runs[16])[0] == 0
