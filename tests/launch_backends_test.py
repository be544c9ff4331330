"""Launcher pieces: device slices, config.launch, XManager and SLURM backends."""
import io
import os
import sys
import types

import pytest

from conftest import load_config_module
from scaling_jax import launch
from scaling_jax.launch import options
from scaling_jax.runs import table as runs_table
from scaling_jax.launch import devices
from scaling_jax.launch import progress as progress_lib
from scaling_jax.launch import slurm
from scaling_jax.launch import xm_backend

grid = load_config_module("grid")


def _launch_cfg(**fields):
  """config.launch with `fields` set as a study config or flag would set them."""
  launch_cfg = options.default_launch_config()
  launch_cfg.lock()
  for key, value in fields.items():
    if isinstance(value, dict):
      launch_cfg[key].update(value)
    else:
      launch_cfg[key] = value
  options.check_launch_config(launch_cfg)
  return launch_cfg


def _fake_train(unit_config, workdir):
  runs_table.append_rows(os.path.join(workdir, "records.jsonl"), [dict(
      run=unit_config.name, N=1, tokens=1, M=20.0, flops=6.0, step=1, final=True)])


def test_launch_config_rejects_unknown_fields_and_values():
  # A locked config refuses unknown fields as they are set, with a suggestion.
  with pytest.raises(KeyError, match='"paralel" does not exist'):
    _launch_cfg(paralel=2)
  with pytest.raises(KeyError, match="Did you mean.*max_parallel"):
    _launch_cfg(max_paralel=2)
  with pytest.raises((AttributeError, KeyError), match="queue"):
    _launch_cfg(slurm=dict(queue="gpu"))
  with pytest.raises(ValueError, match="max_parallel must be a positive int"):
    _launch_cfg(max_parallel=0)


def test_cpu_and_gpu_slices(monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8 --x=1")
  envs = devices.slice_envs(_launch_cfg(max_parallel=2), gpus=[], cpus=[0, 1, 2, 3])
  assert [e["SCALING_JAX_CPUS"] for e in envs] == ["0,1", "2,3"]
  # By default one XLA device per core of the slice.
  assert envs[0]["XLA_FLAGS"] == "--x=1 --xla_force_host_platform_device_count=2"
  envs = devices.slice_envs(_launch_cfg(max_parallel=2), gpus=list("0123"))
  assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0,1", "2,3"]
  with pytest.raises(ValueError, match="max_parallel=3.*gpus_per_unit=2"):
    devices.slice_envs(_launch_cfg(max_parallel=3, gpus_per_unit=2), gpus=list("0123"))


def test_progress_counts_flops_and_gives_an_eta(tmp_path):
  config = grid.get_config("smoke")
  units = launch.build_units(config, str(tmp_path))
  out = io.StringIO()
  progress = progress_lib.Progress(units, every_s=0, stream=out)
  progress.started(units[0])
  _fake_train(units[0].config, units[0].workdir)
  # Nothing measured yet (no step log): the ETA is unknown rather than guessed.
  progress.ended(units[0], True)
  line = out.getvalue().splitlines()[-1]
  share = units[0].flops / sum(u.flops for u in units)
  assert f"1/{len(units)} units finished" in line and f"({share:.0%})" in line
  assert "ETA ?" in line


def test_xm_lanes_and_submission_with_a_fake_xmanager(tmp_path, monkeypatch):
  units = launch.build_units(grid.get_config(""), str(tmp_path))
  cfg = _launch_cfg(backend="xm_local", max_parallel=2)
  monkeypatch.setattr(devices, "visible_gpus", lambda: ["0", "1"])
  specs = xm_backend.job_specs(units, cfg)
  assert [s.env_vars["CUDA_VISIBLE_DEVICES"] for s in specs] == ["0", "1"]
  assert sorted(a for s in specs for a in s.args) == sorted(u.workdir for u in units)
  added = []

  class Experiment:
    def __enter__(self):
      return self

    def __exit__(self, *exc):
      for job in added:  # "run" every job, as xm_local does on exit
        for run_dir in job.args:
          _fake_train(types.SimpleNamespace(name=os.path.basename(run_dir)), run_dir)

    def package(self, packageables):
      return [("exe", packageables[0])]

    def add(self, job):
      added.append(job)

  xm = types.SimpleNamespace(binary=lambda **kw: kw, Job=lambda exe, **kw:
                             types.SimpleNamespace(exe=exe, **kw))
  xm_local = types.SimpleNamespace(create_experiment=lambda **kw: Experiment(),
                                   LocalSpec=lambda: "local", Local=lambda: "executor")
  fake = types.ModuleType("xmanager")
  fake.xm, fake.xm_local = xm, xm_local
  monkeypatch.setitem(sys.modules, "xmanager", fake)
  failures = xm_backend.run_xm(units, cfg, progress_lib.Progress(units, 1e9), "t")
  assert failures == {} and len(added) == 2
  assert added[0].exe[1]["args"] == ["-m", "scaling_jax.launch.worker"]
  assert all(u.finished() for u in units)


@pytest.mark.parametrize("max_parallel,gpus", [(2, []), (4, list("0123")), (2, list("01234567"))])
def test_xm_job_specs_run_every_unit_once_on_disjoint_device_slices(
    tmp_path, monkeypatch, max_parallel, gpus):
  units = launch.build_units(grid.get_config("paper"), str(tmp_path))
  monkeypatch.setattr(devices, "visible_gpus", lambda: gpus)
  specs = xm_backend.job_specs(units, _launch_cfg(backend="xm_local",
                                                  max_parallel=max_parallel))
  assert len(specs) == max_parallel
  # Every unit exactly once, as the worker's arguments, in its own lane's list.
  assert sorted(a for s in specs for a in s.args) == sorted(u.workdir for u in units)
  for spec in specs:
    assert spec.args == [u.workdir for u in spec.units]
  # Lanes share no device: no GPU or CPU appears in two lanes.
  key = "CUDA_VISIBLE_DEVICES" if gpus else "SCALING_JAX_CPUS"
  owned = [set(s.env_vars[key].split(",")) for s in specs if s.env_vars.get(key)]
  assert sum(len(o) for o in owned) == len(set().union(*owned))
  if gpus:
    assert len(owned) == max_parallel


def test_slurm_through_submitit_debug_executor(tmp_path, monkeypatch):
  pytest.importorskip("submitit")
  config = grid.get_config("smoke")
  config.launch.update(dict(backend="slurm", max_parallel=2))
  config.launch.slurm.update(dict(cluster="debug", partition="gpu", qos="high"))
  params = slurm.executor_parameters(config.launch, 2)
  assert params["slurm_partition"] == "gpu" and params["slurm_qos"] == "high"
  assert params["slurm_array_parallelism"] == 2 and "slurm_account" not in params
  config.data.cache_dir = str(tmp_path / "cache")
  monkeypatch.setattr("scaling_jax.train.train_run", _fake_train)
  units = launch.run(config, str(tmp_path))
  assert all(u.finished() for u in units)
  assert (tmp_path / "slurm").is_dir()
