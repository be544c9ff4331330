"""A warmup-stable-decay ladder: one trunk per (size, seed), cooldown branches off it.

With `config.train.branch_multipliers = '10,20,40,80'` and `optim.schedule = 'wsd'`,
the unit at the largest M is the trunk: it trains from scratch and, at each step
where a shorter run's cooldown starts (plan.branch_points), leaves its state in
`train.branch_dir`. The unit at a smaller M is a branch: it starts from that state
at its own fork step (plan.branch_from_step) instead of from scratch, reads the same
batches from there on (batch k is the reader's batch k in every run), decays, and
writes its rows as its own design point. Up to the fork the two runs' learning
rates are the same constant peak (optim.py), so the branch ends where a separate
WSD run of its length would, at a fraction of the compute.

A branch whose trunk has not yet reached its fork waits for it (the local pool
starts trunks first; SLURM and XManager units wait the same way), and stops with an
error naming the trunk if the trunk finished or diverged without leaving the state.
"""
from __future__ import annotations

import os
import time

from absl import logging

from scaling_jax import checkpoint
from scaling_jax.runs import table as runs_table

BRANCH_POINTS_DIRNAME = "branch_points"
POLL_SECONDS = 5.0


class LadderError(RuntimeError):
  """A branch cannot start: its trunk did not leave the state it forks from."""


def branch_dir(config, workdir: str) -> str:
  """Where this ladder's trunk leaves its states: train.branch_dir, or the trunk's
  own <workdir>/branch_points when it runs alone."""
  return config.train.get("branch_dir") or os.path.join(workdir, BRANCH_POINTS_DIRNAME)


def trunk_name(config, workdir: str) -> str:
  """The trunk's run name: the directory that holds its branch points."""
  return os.path.basename(os.path.dirname(os.path.abspath(branch_dir(config, workdir))))


def save_branch_point(directory: str, step: int, state) -> None:
  """Saves the trunk's `state` at `step` for the branches that fork there, and waits
  until it is committed (a no-op when a resumed trunk saved it already)."""
  saver = checkpoint.Checkpointer(directory, every_steps=1, keep=None, use_async=False)
  try:
    if step not in saver.all_steps():
      saver.save_now(step, state)
      logging.info("trunk state at step %d saved for its branches in %s", step, directory)
  finally:
    saver.close()


def _trunk_ended(trunk_workdir: str) -> bool:
  return runs_table.is_finished(trunk_workdir)


def trunk_state(directory: str, step: int, abstract_state, *, wait_seconds: float,
                poll_seconds: float = POLL_SECONDS):
  """The trunk's state at `step` (laid out like `abstract_state`), waiting up to
  `wait_seconds` for the trunk to save it."""
  trunk_workdir = os.path.dirname(os.path.abspath(directory))
  deadline = time.monotonic() + wait_seconds
  logged = False
  while True:
    if os.path.isdir(directory):
      reader = checkpoint.Checkpointer(directory, every_steps=1, keep=None,
                                       use_async=False, read_only=True)
      try:
        if step in reader.all_steps():
          return reader.restore(abstract_state, step=step)
      finally:
        reader.close()
    if _trunk_ended(trunk_workdir):
      raise LadderError(
          f"the trunk {trunk_workdir} has finished (or diverged) without saving its "
          f"state at step {step} in {directory}, which this branch starts from; a "
          f"trunk trained before config.train.branch_multipliers was set saves none: "
          f"train the ladder in a new workdir")
    if time.monotonic() > deadline:
      raise LadderError(
          f"waited {wait_seconds:.0f} s for the trunk {trunk_workdir} to reach step "
          f"{step} (its state in {directory}); launch the trunk, or raise "
          f"config.train.branch_wait_minutes")
    if not logged:
      logging.info("branch waits for its trunk %s to reach step %d", trunk_workdir, step)
      logged = True
    time.sleep(poll_seconds)
