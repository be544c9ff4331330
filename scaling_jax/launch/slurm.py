"""SLURM backend through submitit (an optional extra: `pip install submitit`).

One SLURM array task per unit, at most `config.launch.max_parallel` at a time.
A preempted or timed-out task saves its current step, requeues itself
(worker.UnitTask) and resumes from that step. `config.launch.slurm.cluster` =
'local' or 'debug' runs the same code path on this machine (submitit's own
executors).
"""
from __future__ import annotations

import os
import time

from scaling_jax.launch import local
from scaling_jax.launch import worker

_POLL_S = 5.0


def executor_parameters(launch_cfg, num_units: int) -> dict:
  """submitit.AutoExecutor.update_parameters arguments from config.launch."""
  slurm = launch_cfg.slurm
  params = dict(name=slurm.job_name, timeout_min=slurm.timeout_min,
                nodes=1, tasks_per_node=1, cpus_per_task=slurm.cpus_per_task,
                gpus_per_node=slurm.gpus_per_node,
                slurm_array_parallelism=min(launch_cfg.max_parallel, num_units))
  if slurm.mem_gb:
    params["mem_gb"] = slurm.mem_gb
  for field in ("partition", "account", "qos", "constraint"):
    if slurm[field]:
      params[f"slurm_{field}"] = slurm[field]
  return params


def make_executor(launch_cfg, workdir: str, num_units: int):
  import submitit  # pylint: disable=g-import-not-at-top
  folder = launch_cfg.slurm.folder or os.path.join(workdir, "slurm", "%j")
  executor = submitit.AutoExecutor(folder=folder,
                                   cluster=launch_cfg.slurm.cluster or None)
  executor.update_parameters(**executor_parameters(launch_cfg, num_units))
  return executor


def run_slurm(units, launch_cfg, progress, workdir: str) -> dict[str, str]:
  """Submits one job per unit, waits for all; returns {name: error}."""
  if not units:
    return {}
  executor = make_executor(launch_cfg, workdir, len(units))
  for unit in units:
    unit.write_config()
  with executor.batch():
    jobs = [executor.submit(worker.UnitTask([u.workdir])) for u in units]
  waiting = dict(zip([u.name for u in units], zip(units, jobs)))
  for unit in units:
    progress.started(unit)
  failures = {}
  while waiting:
    for name, (unit, job) in list(waiting.items()):
      if not job.done():
        continue
      del waiting[name]
      code = 0
      try:
        if job.result():  # the units it skipped: another launcher held their lock
          code = worker.BUSY_EXIT
        error = local.unfinished_reason(unit, code)
      except Exception as e:  # pylint: disable=broad-except
        error = f"SLURM job {job.job_id} failed: {str(e)[-500:]}"
      if error:
        failures[name] = error
      local.report_outcome(progress, unit, code, error)
    if waiting:
      time.sleep(_POLL_S)
      progress.tick()
  return failures
