"""config.launch.cpu_devices_per_unit = 0 (the default): one XLA host device per core
of a unit's slice, the most that every unit's mesh and global batch accept."""
import types

import ml_collections
import pytest

from scaling_jax.launch import devices
from scaling_jax.launch import options
from scaling_jax.launch import units as units_lib


def _unit(name, batch, **mesh):
  mesh = dict(dict(data=-1, fsdp=1, tensor=1), **mesh)
  return types.SimpleNamespace(name=name, config=ml_collections.ConfigDict(
      dict(mesh=mesh, train=dict(global_batch=batch))))


def _resolved(units, **fields):
  cfg = options.default_launch_config()
  cfg.update(fields)
  return devices.with_cpu_devices_resolved(cfg, units)


@pytest.fixture
def machine(monkeypatch):
  """A machine with `cores` cores and `gpus` GPUs, as the launcher sees it."""
  def set_machine(cores, gpus=()):
    monkeypatch.setattr(devices, "_cpus", lambda: list(range(cores)))
    monkeypatch.setattr(devices, "visible_gpus", lambda: list(gpus))
  return set_machine


@pytest.mark.parametrize("cores, batches, max_parallel, want", [
    (2, [16, 8], 1, 2),      # this machine: one device per core
    (8, [16, 8], 1, 8),
    (6, [16], 1, 4),         # 6 and 5 do not divide the batch of 16
    (3, [16, 12], 1, 2),     # every unit's batch must split
    (2, [16], 2, 1),         # two units side by side: a core each
    (8, [16], 3, 2),         # 8 cores over 3 slices: 2 each
    (1, [16], 1, 1),
    (4, [7], 1, 1),          # an odd batch splits over no more than one device
])
def test_zero_is_one_device_per_core_that_the_units_accept(machine, cores, batches,
                                                          max_parallel, want):
  machine(cores)
  units = [_unit(f"u{i}", b) for i, b in enumerate(batches)]
  got = _resolved(units, max_parallel=max_parallel)
  assert got.cpu_devices_per_unit == want
  units_lib.check_devices(units, devices.unit_devices(got, gpus=[]))  # and they do


def test_a_fixed_mesh_keeps_its_own_count_and_the_message_to_raise_it(machine):
  machine(2)
  fixed = [_unit("u", 16, data=4)]  # needs 4 devices: more than the cores
  got = _resolved(fixed)
  assert got.cpu_devices_per_unit == 1
  with pytest.raises(ValueError, match="cpu_devices_per_unit=4"):
    units_lib.check_devices(fixed, devices.unit_devices(got, gpus=[]))


def test_an_explicit_count_is_kept_and_the_users_config_is_not_changed(machine):
  machine(8)
  cfg = options.default_launch_config()
  cfg.cpu_devices_per_unit = 3
  units = [_unit("u", 48)]
  assert devices.with_cpu_devices_resolved(cfg, units) is cfg
  cfg.cpu_devices_per_unit = 0
  assert devices.with_cpu_devices_resolved(cfg, units).cpu_devices_per_unit == 8
  assert cfg.cpu_devices_per_unit == 0


@pytest.mark.parametrize("backend, gpus", [("inline", ()), ("slurm", ()), ("local", ("0",))])
def test_where_the_launcher_sets_no_cpu_count_zero_means_one(machine, backend, gpus):
  machine(8, gpus)
  assert _resolved([_unit("u", 16)], backend=backend).cpu_devices_per_unit == 1


@pytest.mark.parametrize("value", [-1, 1.5, True, "2"])
def test_bad_counts_are_refused_naming_the_field(value):
  cfg = ml_collections.ConfigDict(dict(options.default_launch_config().to_dict(),
                                      cpu_devices_per_unit=value))
  with pytest.raises(ValueError, match=r"config.launch.cpu_devices_per_unit must be "
                     r"an int >= 0 \(0: one per core\)"):
    options.check_launch_config(cfg)
