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
command again continues a killed sweep. A stopped worker (SIGTERM, a SLURM
preemption) first saves the step it reached (scaling_jax.preemption). A unit
whose training loss became non-finite is recorded as diverged and counts as
finished: the sweep goes on, and the fit leaves it out (runs/table.py).
`config.launch.dry_run=True` lists the units with N, M, tokens and FLOPs;
`dry_run=compile` also compiles each for the TPU slice `config.launch.topology`
on this CPU and says what a chip needs (scaling_jax/aot/dry_run.py).

Several launchers on one workdir share the work safely: each unit trains under
a lock on its directory (launch/unit_lock.py), held by the process training it.
A launcher skips a unit whose lock is held, saying which unit and lock file in
one line, and trains the rest. At the end, a skipped unit that is still not
finished is reported as being trained by another launcher (its lock still held)
rather than as a failure, or, when that launcher stopped before finishing it,
as resumable; either way this launcher raises instead of returning, so a study
never fits a sweep that is still training. Run the same command again once the
other launcher finishes: it trains what is left, then fits.
"""
from __future__ import annotations

import os
import sys
import time

from scaling_jax import refusals
from scaling_jax import wandb_log
from scaling_jax.launch import options
from scaling_jax.launch import unit_lock
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
  wandb_log.check(config)  # before any unit starts
  workdir = os.path.abspath(os.fspath(workdir))
  units = build_units(config, workdir)
  if launch_cfg.dry_run == "compile":  # the slice's devices, not this machine's
    from scaling_jax.aot import dry_run as compile_dry_run  # pylint: disable=g-import-not-at-top
    for unit in units:
      unit.write_config()
    units_lib.print_table(units)
    compile_dry_run.run(units, launch_cfg)
    return units
  # A unit that joins a multi-process job sees devices no launcher can count.
  multi_process = any(u.config.distributed.initialize for u in units)
  # devices imports the worker module: imported here, not at the top, so that
  # `python -m scaling_jax.launch.worker` does not find its own module preloaded.
  from scaling_jax.launch import devices  # pylint: disable=g-import-not-at-top
  launch_cfg = devices.with_cpu_devices_resolved(launch_cfg, units)
  units_lib.check_devices(units, None if multi_process else devices.unit_devices(launch_cfg))
  if launch_cfg.dry_run:
    # The files the workers would read, so a user can check what each unit trains
    # with before paying for it.
    for unit in units:
      unit.write_config()
    units_lib.print_table(units)
    print(units_lib.format_differences(units))
    print(f"wrote each unit's resolved config to {workdir}/runs/<unit>/"
          f"{units_lib.UNIT_CONFIG_FILENAME}; nothing trained (dry run)")
    unset = units_lib.unset_data_paths(units)
    if unset:
      print("before training, set the data these units read:\n  " + "\n  ".join(unset))
    return units
  units_lib.validate_data(units)
  todo = [u for u in units if not u.finished()]
  busy = [u for u in todo if unit_lock.is_held(u.workdir)]
  for unit in busy:
    print(f"skipping {unit_lock.UnitBusy(unit.workdir)}", file=sys.stderr, flush=True)
  todo = [u for u in todo if u not in busy]
  parallel = 1 if launch_cfg.backend == "inline" else launch_cfg.max_parallel
  progress = progress_lib.Progress(units, every_s=launch_cfg.progress_every_s,
                                   parallel=parallel, elsewhere=busy)
  from scaling_jax.launch import probe  # pylint: disable=g-import-not-at-top
  probe.announce(todo, launch_cfg, parallel, progress=progress)
  failures = _train(todo, launch_cfg, progress, workdir) if todo else {}
  failures.update(_skipped_reasons(busy))
  failures = _after_other_launchers(failures, units)
  _raise_unfinished(failures, units)
  return units


# How often a launcher looks whether another launcher's units are done.
WAIT_POLL_S = 5.0


def _after_other_launchers(failures: dict[str, str], units) -> dict[str, str]:
  """Waits for the units another launcher on this workdir is training, then keeps
  only the failures of units still unfinished.

  Two launchers on one workdir share out its units (each trains what it locks
  first), so each waits for the other's before the fit: both then report on every
  run, and neither calls a unit the other finished 'did not finish'.
  """
  by_name = {u.name: u for u in units}
  waiting = [n for n in failures if unit_lock.is_held(by_name[n].workdir)]
  if waiting:
    print(f"waiting for {len(waiting)} unit(s) another launcher is training on this "
          f"workdir: {', '.join(waiting)} (locks held; this launcher fits once they "
          f"are released)", file=sys.stderr, flush=True)
  while any(unit_lock.is_held(by_name[n].workdir) for n in waiting):
    time.sleep(WAIT_POLL_S)
  return {n: why for n, why in failures.items() if not by_name[n].finished()}


class UnitsUnfinished(refusals.Reported):
  """Units of the sweep did not finish: which, why, and whether a rerun resumes them."""


def _skipped_reasons(busy) -> dict[str, str]:
  from scaling_jax.launch import local  # pylint: disable=g-import-not-at-top
  from scaling_jax.launch import worker  # pylint: disable=g-import-not-at-top
  reasons = {u.name: local.unfinished_reason(u, worker.BUSY_EXIT) for u in busy}
  return {name: reason for name, reason in reasons.items() if reason}


def _raise_unfinished(failures: dict[str, str], units) -> None:
  """Raises when a unit is unfinished: those another launcher still trains apart,
  the rest with why each did not finish and whether running again resumes it."""
  if not failures:
    return
  workdirs = {u.name: u.workdir for u in units}
  elsewhere = [n for n in failures if unit_lock.is_held(workdirs[n])]
  lines = [f"  {name}: {error}" for name, error in failures.items()
           if name not in elsewhere]
  parts = [f"{len(lines)} of {len(units)} units did not finish:"] + lines if lines else []
  if elsewhere:
    parts.append(f"{len(elsewhere)} of {len(units)} units are being trained by another "
                 f"launcher (their lock is held), so this one stops here rather than "
                 f"use them unfinished; run the same command again once it finishes:")
    parts += [f"  {name}: {unit_lock.lock_path(workdirs[name])}" for name in elsewhere]
  raise UnitsUnfinished("\n".join(parts))
