"""The xm_local backend with the real XManager (an extra; see README, "Extras").

No cluster is needed: xm_local runs each job as a local process. The worker
interpreter is replaced by a recorder that notes the command line and devices
XManager started it with, then runs the real worker on units already finished,
so the test checks what our backend submits and that it runs, in seconds.
"""
import json
import os
import pathlib
import sys

import pytest

pytest.importorskip("xmanager", reason="the 'xm' extra is not installed: pip install "
                    "-e '.[xm,test]' -c constraints/xm.txt (in its own venv)")

from conftest import load_config_module  # noqa: E402
from scaling_jax import launch  # noqa: E402
from scaling_jax.launch import devices  # noqa: E402
from scaling_jax.launch import options  # noqa: E402
from scaling_jax.launch import progress as progress_lib  # noqa: E402
from scaling_jax.launch import worker  # noqa: E402
from scaling_jax.launch import xm_backend  # noqa: E402
from scaling_jax.runs import table as runs_table  # noqa: E402

_RECORDER = '''#!{python}
import json, os, subprocess, sys
# What xm_local started: our arguments and the device slice, then the real worker.
done = subprocess.run([{python!r}] + sys.argv[1:])
record = dict(args=sys.argv[1:], returncode=done.returncode,
              cpus=os.environ.get("SCALING_JAX_CPUS"),
              gpus=os.environ.get("CUDA_VISIBLE_DEVICES"))
with open(os.path.join({record_dir!r}, f"{{os.getpid()}}.json"), "w") as f:
  json.dump(record, f)
sys.exit(done.returncode)
'''


def _recorder(tmp_path: pathlib.Path) -> tuple[str, pathlib.Path]:
  record_dir = tmp_path / "started"
  record_dir.mkdir()
  script = tmp_path / "python_recorder"
  script.write_text(_RECORDER.format(python=sys.executable, record_dir=str(record_dir)))
  script.chmod(0o755)
  return str(script), record_dir


def _finish(unit) -> None:
  """Marks a unit finished, as a worker's final row would."""
  os.makedirs(unit.workdir, exist_ok=True)
  runs_table.append_rows(os.path.join(unit.workdir, "records.jsonl"), [dict(
      run=unit.name, N=unit.N, tokens=unit.tokens, M=unit.M, flops=unit.flops,
      step=1, final=True)])


def test_xm_local_starts_one_worker_per_lane_with_its_units_and_cpus(
    tmp_path, monkeypatch):
  monkeypatch.setenv("HOME", str(tmp_path))  # xm_local's experiment database
  monkeypatch.setattr(devices, "visible_gpus", lambda: [])
  monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
  python, record_dir = _recorder(tmp_path)
  launch_cfg = options.default_launch_config()
  launch_cfg.update(dict(backend="xm_local", max_parallel=2, python=python))
  options.check_launch_config(launch_cfg)
  units = launch.build_units(load_config_module("grid").get_config("smoke"),
                             str(tmp_path / "study"))
  for unit in units:
    _finish(unit)
  specs = xm_backend.job_specs(units, launch_cfg)
  failures = xm_backend.run_xm(units, launch_cfg,
                               progress_lib.Progress(units, 1e9), str(tmp_path))
  assert failures == {}
  started = [json.loads(p.read_text()) for p in record_dir.glob("*.json")]
  worker_command = ["-m", "scaling_jax.launch.worker"]
  assert sorted(r["args"] for r in started) == sorted(worker_command + s.args for s in specs)
  assert all(r["returncode"] == 0 for r in started), started
  # Each lane ran on the cores job_specs gave it, and no core went to two lanes.
  by_units = {tuple(s.args): s.env_vars.get(worker.CPUS_ENV) for s in specs}
  assert all(r["cpus"] == by_units[tuple(r["args"][2:])] for r in started)
  cpus = [set(r["cpus"].split(",")) for r in started if r["cpus"]]
  assert sum(map(len, cpus)) == len(set().union(*cpus))

