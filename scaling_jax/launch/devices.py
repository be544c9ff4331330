"""Splits this machine's devices into slices, one per concurrently running unit.

On GPUs a slice is a set of CUDA_VISIBLE_DEVICES. On CPU it is a set of cores
(the worker pins itself to them) and its own XLA host-device count,
config.launch.cpu_devices_per_unit, so units running side by side do not share
cores. The user's other XLA_FLAGS pass through; a host-device count in them is
replaced by the config field, and `device_count_note` says so in one line.
The launcher never starts JAX's backend itself: on a GPU that would reserve
memory the units need, so GPUs are counted with nvidia-smi.
"""
from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess

from scaling_jax.launch import options
from scaling_jax.launch import worker

_DEVICE_COUNT_FLAG = re.compile(r"--xla_force_host_platform_device_count=(\S*)")
_COUNT_FIELD = "config.launch.cpu_devices_per_unit"


def visible_gpus() -> list[str]:
  """GPU ids this process may use: CUDA_VISIBLE_DEVICES, else nvidia-smi's."""
  env = os.environ.get("CUDA_VISIBLE_DEVICES")
  if env is not None:
    return [g for g in env.split(",") if g.strip() and g.strip() != "-1"]
  if not shutil.which("nvidia-smi"):
    return []
  try:
    out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=30, check=True)
  except (OSError, subprocess.SubprocessError):
    return []
  return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def _cpus() -> list[int]:
  if hasattr(os, "sched_getaffinity"):
    return sorted(os.sched_getaffinity(0))
  return list(range(os.cpu_count() or 1))


def _xla_flags(devices: int) -> str:
  inherited = _DEVICE_COUNT_FLAG.sub("", os.environ.get("XLA_FLAGS", "")).split()
  return " ".join(inherited + [f"--xla_force_host_platform_device_count={devices}"])


def device_count_note(launch_cfg, xla_flags: str | None = None) -> str:
  """One line when XLA_FLAGS asks for another host-device count than the config.

  The config field wins on CPU slices (see slice_envs); '' when the two agree or
  XLA_FLAGS (default: this process's) sets no count.
  """
  flags = os.environ.get("XLA_FLAGS", "") if xla_flags is None else xla_flags
  counts = _DEVICE_COUNT_FLAG.findall(flags)
  wanted = _cpu_devices_per_unit(launch_cfg)
  if not counts or counts[-1] == str(wanted):  # the last of repeated flags counts
    return ""
  return (f"XLA_FLAGS sets --xla_force_host_platform_device_count={counts[-1]}, but "
          f"{_COUNT_FIELD}={wanted} wins: each unit gets {wanted} XLA host device(s) "
          f"(pass --{_COUNT_FIELD}={counts[-1]} to keep yours)")


def mesh_hint(log_text: str) -> str:
  """The fix for a unit whose mesh wanted more devices than it got; '' if none."""
  found = re.findall(r"needs (\d+) devices but (\d+) are available", log_text)
  if not found:
    return ""
  need, have = found[-1]
  return (f"its config.mesh needs {need} devices but the unit got {have}: on CPU set "
          f"--{_COUNT_FIELD}={need} (on GPUs, config.launch.gpus_per_unit), or make "
          f"config.mesh fit {have}")


def _gpus_per_unit(launch_cfg, gpus: list[str]) -> int:
  slots = launch_cfg.max_parallel
  per = launch_cfg.gpus_per_unit or len(gpus) // slots
  if per < 1 or per * slots > len(gpus):
    raise ValueError(
        f"config.launch.max_parallel={slots} units x "
        f"config.launch.gpus_per_unit={launch_cfg.gpus_per_unit or per} GPUs "
        f"need more than the {len(gpus)} visible GPU(s); lower one of them")
  return per


def _cpu_devices_per_unit(launch_cfg, cpus: list[int] | None = None) -> int:
  """The config's count; 0 is one per core of a slice (with_cpu_devices_resolved
  first lowers it to what every unit's mesh and batch accept)."""
  options.check_cpu_devices_per_unit(launch_cfg.cpu_devices_per_unit)
  return launch_cfg.cpu_devices_per_unit or cores_per_slice(launch_cfg, cpus)


def cores_per_slice(launch_cfg, cpus: list[int] | None = None) -> int:
  """The cores each of the `max_parallel` CPU slices gets (slice_envs pins them)."""
  cpus = _cpus() if cpus is None else cpus
  return max(1, len(cpus) // launch_cfg.max_parallel)


def _splits_over_cpu_cores(launch_cfg) -> bool:
  """Whether units run in CPU slices whose XLA host-device count this launcher sets
  (local and xm_local with no GPU); elsewhere cpu_devices_per_unit means nothing."""
  return launch_cfg.backend in ("local", "xm_local") and not visible_gpus()


def with_cpu_devices_resolved(launch_cfg, units):
  """launch_cfg with cpu_devices_per_unit 0 made a count: one XLA host device per
  core of a unit's slice, or the most below that which every unit's mesh and global
  batch accept. A unit then trains data-parallel over its cores, each device
  running its ops on one core: 1.4x the tokens/s of one device whose ops share the
  cores, at the benchmark shapes (docs/benchmarks.md). Where the launcher sets no
  CPU device count (GPUs, inline, slurm), 0 stands for 1, the old default."""
  if launch_cfg.cpu_devices_per_unit != 0:
    return launch_cfg
  from scaling_jax.launch import units as units_lib  # pylint: disable=g-import-not-at-top
  count = 1
  if _splits_over_cpu_cores(launch_cfg):
    for candidate in range(cores_per_slice(launch_cfg), 1, -1):
      try:
        units_lib.check_devices(units, (candidate, ""))
      except ValueError:
        continue
      count = candidate
      break
  resolved = copy.deepcopy(launch_cfg)
  resolved.cpu_devices_per_unit = count
  return resolved


def unit_devices(launch_cfg, gpus: list[str] | None = None) -> tuple[int, str] | None:
  """(devices each unit will see, where that number comes from), known before
  any unit starts; None where only the cluster knows (xm_local, slurm).

  The inline backend trains in this process, so it asks JAX (starting its
  backend here is what training would do next anyway).
  """
  if launch_cfg.backend == "inline":
    import jax  # pylint: disable=g-import-not-at-top
    return jax.device_count(), f"this process's {jax.device_count()} JAX device(s)"
  if launch_cfg.backend != "local":
    return None
  gpus = visible_gpus() if gpus is None else gpus
  if gpus:
    per = _gpus_per_unit(launch_cfg, gpus)
    return per, (f"{per} of the {len(gpus)} visible GPU(s) "
                 f"(config.launch.gpus_per_unit, config.launch.max_parallel)")
  count = _cpu_devices_per_unit(launch_cfg)
  return count, f"{count} XLA host device(s) ({_COUNT_FIELD}={count})"


def slice_envs(launch_cfg, gpus: list[str] | None = None,
               cpus: list[int] | None = None) -> list[dict]:
  """Environment overrides for each of `launch_cfg.max_parallel` slices."""
  slots = launch_cfg.max_parallel
  gpus = visible_gpus() if gpus is None else gpus
  if gpus:
    per = _gpus_per_unit(launch_cfg, gpus)
    return [{"CUDA_VISIBLE_DEVICES": ",".join(gpus[i * per:(i + 1) * per])}
            for i in range(slots)]
  cpus = _cpus() if cpus is None else cpus
  count = _cpu_devices_per_unit(launch_cfg, cpus)
  per = cores_per_slice(launch_cfg, cpus)
  envs = []
  for i in range(slots):
    # More slots than cores: slices wrap around and share cores.
    mine = [cpus[(i * per + j) % len(cpus)] for j in range(per)]
    envs.append({worker.CPUS_ENV: ",".join(map(str, mine)),
                 "XLA_FLAGS": _xla_flags(count)})
  return envs
