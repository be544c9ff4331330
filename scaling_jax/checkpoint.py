"""Periodic asynchronous checkpoints of the train state (orbax), and resume.

Orbax decides when a step is saved (its default save policy): every
`every_steps` steps, the first step of a fresh run (so an unwritable directory
fails at once), and the step at which every process reached a preemption sync
point (multi-process runs under jax.distributed). A stop requested in this
process (scaling_jax.preemption) is saved by the train loop with `save_now`.

A save cut off by a kill or a full disk leaves orbax's temporary folder
('<step>.orbax-checkpoint-tmp-<time>'), which restore ignores; the next
Checkpointer on that directory removes it, unless a save this process abandoned
there (`close(wait=False)`) may still be writing into it.

A checkpoint that cannot be read stops the run with the step and directory named
and is left on disk: deleting it would lose the run's progress, and whether to
fall back to an earlier step is the user's call.
"""
from __future__ import annotations

import logging
import os
import re
import shutil

import jax
import orbax.checkpoint as ocp


def _quiet_orbax(record: logging.LogRecord) -> bool:
  # orbax narrates every save at INFO through absl's logger, burying the
  # progress line; its warnings and errors still pass.
  return record.levelno > logging.INFO or "/orbax/" not in record.pathname


logging.getLogger("absl").addFilter(_quiet_orbax)


# orbax's name for a save not yet committed: '<step>.orbax-checkpoint-tmp-<time>'.
_TORN_SAVE = re.compile(r"^\d+\.orbax-checkpoint-tmp")

# Managers abandoned with a save possibly in flight, by directory: their saves
# may still be writing, so their folders are not torn and must not be removed.
_abandoned: dict[str, list] = {}


def _saving_abandoned(directory: str) -> bool:
  # A manager whose save ended is forgotten, whatever its directory: the registry
  # must not keep finished managers (and their threads) alive for the process.
  for path in list(_abandoned):
    _abandoned[path] = [m for m in _abandoned[path] if m.is_saving_in_progress()]
    if not _abandoned[path]:
      del _abandoned[path]
  return directory in _abandoned


def remove_torn_saves(directory: str) -> list[str]:
  """Removes the temporary folders of saves that were cut off; returns their
  names. Only the primary process removes (the directory is shared)."""
  if (jax.process_index() != 0 or not os.path.isdir(directory)
      or _saving_abandoned(directory)):
    return []
  torn = sorted(name for name in os.listdir(directory) if _TORN_SAVE.match(name))
  for name in torn:
    shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
  return torn


class CheckpointError(RuntimeError):
  """A checkpoint exists but cannot be restored."""


class Checkpointer:
  """Saves when orbax's policy says so (see the module docstring) or when asked,
  keeping the newest `keep`."""

  def __init__(self, directory: str | os.PathLike, every_steps: int, keep: int | None = 2,
               use_async: bool = True, read_only: bool = False):
    """`keep=None` keeps every save; `read_only` reads another process's directory
    (a ladder branch reading its trunk's): it neither saves nor removes the
    temporary folders of saves that process may still be writing."""
    self.directory = os.path.abspath(os.fspath(directory))
    torn = [] if read_only else remove_torn_saves(self.directory)
    if torn:
      logging.warning("removed %d checkpoint save(s) cut off before they were "
                      "committed in %s: %s", len(torn), self.directory,
                      ", ".join(torn))
    options = ocp.CheckpointManagerOptions(
        save_interval_steps=max(int(every_steps), 1), max_to_keep=keep,
        create=not read_only, enable_async_checkpointing=use_async,
        read_only=read_only)
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    self._manager.reload()  # another process may have saved since
    return list(self._manager.all_steps())

  def restore(self, abstract_state, step: int | None = None):
    """Checkpoint `step` (default: the newest), laid out like `abstract_state`;
    None if there is none.

    `abstract_state` holds jax.ShapeDtypeStructs with shardings, so each array is
    read straight into its shards.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      return None
    try:
      state = self._manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
    except Exception as e:  # orbax raises many types for a damaged checkpoint
      raise CheckpointError(
          f"cannot restore checkpoint step {step} from {self.directory}: "
          f"{type(e).__name__}: {str(e)[:500]}. It was left in place. To resume "
          f"from an earlier step, move {os.path.join(self.directory, str(step))} "
          f"aside; to start over, use a new workdir. A checkpoint of an older "
          f"train state (e.g. one saved before the optimiser state gained its "
          f"learning rate, optax.inject_hyperparams) cannot be restored: that "
          f"unit must start over.") from e
    if jax.tree.structure(state) != jax.tree.structure(abstract_state):
      raise CheckpointError(f"checkpoint step {step} in {self.directory} does not "
                            f"match this config's train state (the model, or the "
                            f"optimiser state's layout, changed since it was "
                            f"saved); train this unit again in a new workdir, or "
                            f"move {self.directory} aside to start it over")
    return state

  def maybe_save(self, step: int, state, force: bool = False) -> bool:
    """Starts an async save when orbax's policy wants `step` (or `force`);
    returns whether it did. Called after every step: orbax's preemption check
    must see every step."""
    if force and self.latest_step() != step:
      return self._manager.save(step, args=ocp.args.StandardSave(state), force=True)
    return self._manager.save(step, args=ocp.args.StandardSave(state))

  def save_now(self, step: int, state) -> None:
    """Saves `step` (unless it is saved) and waits until it is committed."""
    self.maybe_save(step, state, force=True)
    self._manager.wait_until_finished()

  def reached_preemption(self, step: int) -> bool:
    """Whether every process reached orbax's preemption sync point at `step`
    (always False in a single-process run, which jax.distributed does not
    watch; scaling_jax.preemption stops those)."""
    return self._manager.reached_preemption(step)

  def close(self, wait: bool = True) -> None:
    """Waits for pending saves to be committed, then releases the manager.

    `wait=False` abandons the manager instead, with any save in flight (left as
    a temporary directory that restore ignores): for a run interrupted at an
    arbitrary point, where orbax's own state may be half updated.
    """
    if wait:
      self._manager.wait_until_finished()
      self._manager.close()
    else:
      _abandoned.setdefault(self.directory, []).append(self._manager)
