"""`config.launch`: every field with its one default, and the checks of its values.

Kept apart from the launcher itself so config_lib can build the default tree
without importing the launcher (which imports config_lib to plan units).
"""
from __future__ import annotations

import ml_collections

BACKENDS = ("local", "inline", "xm_local", "slurm")
DRY_RUNS = (False, True, "compile")


def default_launch_config() -> ml_collections.ConfigDict:
  """Every `config.launch` field with its one default."""
  return ml_collections.ConfigDict(dict(
      backend="local",  # one of BACKENDS
      max_parallel=1,  # units training at once (device slices; SLURM array width)
      # True: list the units with N, M, tokens and FLOPs; 'compile': also compile
      # each for launch.topology (scaling_jax/aot); either way train nothing
      dry_run=ml_collections.FieldReference(False, field_type=object),
      # a TPU slice libtpu knows ('v5e:4x4', 'v5p:2x2x2'): what dry_run=compile
      # compiles for (a unit's own launch.topology, set in a sweep, wins)
      topology="",
      # XLA host devices of each unit process on CPU; 0: one per core of the
      # unit's slice, as many as every unit's mesh and batch accept (launch.run)
      cpu_devices_per_unit=0,
      gpus_per_unit=0,  # 0: the visible GPUs split evenly over max_parallel
      progress_every_s=30.0,  # seconds between progress lines on stderr
      # print the sweep's expected wall time before training, from a probe of this
      # machine that costs seconds (launch/probe.py; CPU, local and inline only)
      estimate=True,
      python="",  # interpreter for the workers; '' -> this one
      slurm=dict(
          cluster="",  # '' -> SLURM; 'local' or 'debug' run submitit locally
          partition="", account="", qos="", constraint="",
          timeout_min=24 * 60, cpus_per_task=8, gpus_per_node=0, mem_gb=0,
          job_name="scaling_jax",
          folder="",  # submitit's logs; '' -> <workdir>/slurm/%j
      ),
      xm=dict(experiment_title=""),  # '' -> the workdir
  ))


def check_launch_config(resolved) -> None:
  """Value checks of `config.launch` (unknown fields fail when the config is set)."""
  if resolved.backend not in BACKENDS:
    raise ValueError(f"config.launch.backend is {resolved.backend!r}; choose one "
                     f"of {list(BACKENDS)}")
  if not isinstance(resolved.max_parallel, int) or resolved.max_parallel < 1:
    raise ValueError(f"config.launch.max_parallel must be a positive int, got "
                     f"{resolved.max_parallel!r}")
  check_cpu_devices_per_unit(resolved.cpu_devices_per_unit)
  if resolved.dry_run not in DRY_RUNS:
    raise ValueError(f"config.launch.dry_run is {resolved.dry_run!r}; choose False, "
                     f"True (list the units) or 'compile' (also compile them for "
                     f"config.launch.topology)")


def check_cpu_devices_per_unit(count) -> None:
  """The one check of config.launch.cpu_devices_per_unit (0: one per core)."""
  if isinstance(count, bool) or not isinstance(count, int) or count < 0:
    raise ValueError(f"config.launch.cpu_devices_per_unit must be an int >= 0 (0: one "
                     f"per core), got {count!r}")
