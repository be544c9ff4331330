"""Launch a sweep: expand it into work units, validate them all, train them.

  units = launch.run(config, workdir)   # blocks until every unit is trained

`config.launch` (defaults: `options.default_launch_config()`) picks the backend:
  local    a pool of worker processes on this machine, `max_parallel` at a time,
           each on its own device slice (CPU cores or CUDA_VISIBLE_DEVICES)
  inline   one unit after another in this process (notebooks, debugging)
  xm_local XManager on this machine, local binaries, no Docker (needs xmanager)
  slurm    one SLURM array task per unit through submitit (needs submitit)

Every unit's config is planned, and every dataset prepared and checked against
the units' token needs, before the first unit starts, so a config error fails
at once and names the field. Finished units (a final row in their records) are
skipped, interrupted ones resume from their checkpoints, so running the same
command again continues a killed sweep. `config.launch.dry_run=True` lists
the units with N, M, tokens and FLOPs.
"""
from __future__ import annotations

import os

from scaling_jax.launch import options
from scaling_jax.launch.units import WorkUnit, build_units, format_table  # noqa: F401


def _train(todo, launch_cfg, progress, workdir) -> dict[str, str]:
  # Backends are imported only when chosen: xmanager and submitit are extras.
  if launch_cfg.backend == "local":
    from scaling_jax.launch import local  # pylint: disable=g-import-not-at-top
    return local.run_pool(todo, launch_cfg, progress)
  if launch_cfg.backend == "inline":
    from scaling_jax.launch import local  # pylint: disable=g-import-not-at-top
    return local.run_inline(todo, launch_cfg, progress)
  if launch_cfg.backend == "xm_local":
    from scaling_jax.launch import xm_backend  # pylint: disable=g-import-not-at-top
    return xm_backend.run_xm(todo, launch_cfg, progress, workdir)
  from scaling_jax.launch import slurm  # pylint: disable=g-import-not-at-top
  return slurm.run_slurm(todo, launch_cfg, progress, workdir)


def run(config, workdir: str) -> list[WorkUnit]:
  """Trains every unfinished unit of the sweep; returns all its units."""
  from scaling_jax.launch import progress as progress_lib  # pylint: disable=g-import-not-at-top
  from scaling_jax.launch import units as units_lib  # pylint: disable=g-import-not-at-top
  launch_cfg = config.launch
  options.check_launch_config(launch_cfg)
  workdir = os.path.abspath(os.fspath(workdir))
  units = build_units(config, workdir)
  if launch_cfg.dry_run:
    # The files the workers would read, so a user can check what each unit trains
    # with before paying for it.
    for unit in units:
      unit.write_config()
    units_lib.print_table(units)
    print(units_lib.format_differences(units))
    print(f"wrote each unit's resolved config to {workdir}/runs/<unit>/"
          f"{units_lib.UNIT_CONFIG_FILENAME}; nothing trained (dry run)")
    return units
  units_lib.validate_data(units)
  todo = [u for u in units if not u.finished()]
  progress = progress_lib.Progress(units, every_s=launch_cfg.progress_every_s)
  failures = _train(todo, launch_cfg, progress, workdir) if todo else {}
  if failures:
    lines = "\n".join(f"  {name}: {error}" for name, error in failures.items())
    # Each line says whether running again resumes that unit or needs a fix first.
    raise RuntimeError(f"{len(failures)} of {len(todo)} units did not finish:\n{lines}")
  return units
