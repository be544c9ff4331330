"""CPU device slices: the user's XLA_FLAGS, the config's host-device count, and the
message that names config.launch.cpu_devices_per_unit when a unit's mesh wants more."""
import os

import ml_collections
import pytest

from scaling_jax.launch import devices
from scaling_jax.launch import local

USER_FLAGS = "--xla_cpu_enable_fast_math=false --xla_force_host_platform_device_count=8 --x=1"


def _launch_cfg(**fields):
  return ml_collections.ConfigDict(dict(dict(
      max_parallel=1, cpu_devices_per_unit=1, gpus_per_unit=0, python=""), **fields))


def test_other_flags_pass_and_the_config_count_wins(monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", USER_FLAGS)
  [env] = devices.slice_envs(_launch_cfg(cpu_devices_per_unit=2), gpus=[], cpus=[0, 1])
  assert env["XLA_FLAGS"] == ("--xla_cpu_enable_fast_math=false --x=1 "
                              "--xla_force_host_platform_device_count=2")
  with pytest.raises(ValueError, match=r"config.launch.cpu_devices_per_unit must be an "
                     r"int >= 0 \(0: one per core\), got -1"):
    devices.slice_envs(_launch_cfg(cpu_devices_per_unit=-1), gpus=[], cpus=[0])
  # 0: one device per core of the slice.
  envs = devices.slice_envs(_launch_cfg(cpu_devices_per_unit=0, max_parallel=2),
                            gpus=[], cpus=[0, 1, 2, 3, 4, 5])
  assert [e["XLA_FLAGS"].split()[-1] for e in envs] == [
      "--xla_force_host_platform_device_count=3"] * 2


def test_a_different_user_count_gets_one_line_naming_both_and_the_field():
  note = devices.device_count_note(_launch_cfg(), USER_FLAGS)
  assert note == ("XLA_FLAGS sets --xla_force_host_platform_device_count=8, but "
                  "config.launch.cpu_devices_per_unit=1 wins: each unit gets 1 XLA host "
                  "device(s) (pass --config.launch.cpu_devices_per_unit=8 to keep yours)")
  assert devices.device_count_note(_launch_cfg(cpu_devices_per_unit=8), USER_FLAGS) == ""
  assert devices.device_count_note(_launch_cfg(), "--x=1") == ""


class _Unit:

  def __init__(self, workdir):
    self.name, self.workdir = "u", str(workdir)
    os.makedirs(self.workdir, exist_ok=True)

  def write_config(self):
    pass

  def finished(self):
    return False


class _Progress:

  def started(self, unit):
    pass

  def ended(self, unit, ok, error=""):
    pass

  def tick(self):
    pass


def test_pool_says_which_count_won_and_how_to_fix_a_mesh_mismatch(tmp_path, monkeypatch,
                                                                  capsys):
  # A stand-in worker: shows the flags it got, then fails as sharding.make_mesh does.
  fake_python = tmp_path / "fake_python"
  fake_python.write_text(
      "#!/bin/sh\necho \"XLA_FLAGS=$XLA_FLAGS\"\n"
      "echo \"ValueError: config.mesh {'data': 8} needs 8 devices but 1 are available\"\n"
      "exit 1\n")
  fake_python.chmod(0o755)
  monkeypatch.setenv("XLA_FLAGS", USER_FLAGS)
  monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # CPU slices even on a GPU machine
  unit = _Unit(tmp_path / "unit")
  (tmp_path / "unit" / local.LOG_FILENAME).write_text(
      "an earlier attempt: needs 4 devices but 2 are available\n")
  failures = local.run_pool([unit], _launch_cfg(python=str(fake_python)), _Progress())

  # The fix names the field, from this attempt's output (not the earlier 4 vs 2).
  assert failures == {"u": "exit code 1; its config.mesh needs 8 devices but the unit "
                           "got 1: on CPU set --config.launch.cpu_devices_per_unit=8 (on "
                           "GPUs, config.launch.gpus_per_unit), or make config.mesh fit 1; "
                           f"see {unit.workdir}/{local.LOG_FILENAME}, and fix the cause before "
                           "running the same command again"}
  note = ("XLA_FLAGS sets --xla_force_host_platform_device_count=8, but "
          "config.launch.cpu_devices_per_unit=1 wins")
  assert note in capsys.readouterr().err
  log = (tmp_path / "unit" / local.LOG_FILENAME).read_text()
  assert f"[launcher] {note}" in log  # right above the unit's own complaint
  assert ("XLA_FLAGS=--xla_cpu_enable_fast_math=false --x=1 "
          "--xla_force_host_platform_device_count=1") in log
