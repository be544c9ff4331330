"""Checkpointer: save cadence, retention, newest-step restore, damaged checkpoints."""
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaling_jax import checkpoint

# A failed orbax restore leaves its aborted read coroutines to the garbage collector.
pytestmark = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning")


def _state(step: int):
  """A small train-state-like tree whose every value encodes `step`."""
  return dict(params=dict(w=jnp.arange(24, dtype=jnp.float32).reshape(8, 3) + step,
                          gain=jnp.full((3,), step, jnp.bfloat16)),
              opt_state=(jnp.full((8, 3), -step, jnp.float32),),
              step=jnp.asarray(step, jnp.int32))


def _abstract(state, sharding=None):
  sharding = sharding or jax.sharding.SingleDeviceSharding(jax.devices()[0])
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                      state)


def _assert_same(got, want):
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    assert g.dtype == w.dtype and g.shape == w.shape
    np.testing.assert_array_equal(np.asarray(g, np.float32), np.asarray(w, np.float32))


def _saved_steps(directory):
  return sorted(int(p) for p in os.listdir(directory) if p.isdigit())


@pytest.fixture
def saved(tmp_path):
  """Steps 1..7 offered with every_steps=2 and keep=2, then closed."""
  ckpt = checkpoint.Checkpointer(tmp_path, every_steps=2, keep=2)
  did = {step: ckpt.maybe_save(step, _state(step)) for step in range(1, 8)}
  did["again"] = ckpt.maybe_save(6, _state(6))
  did["forced"] = ckpt.maybe_save(7, _state(7), force=True)
  ckpt.close()  # must wait for the asynchronous saves to land
  return tmp_path, did


def test_saves_only_due_steps_or_forced_ones_and_keeps_the_newest(saved):
  directory, did = saved
  # orbax's policy: the first step of a fresh run, then every `every_steps`.
  assert [s for s in range(1, 8) if did[s]] == [1, 2, 4, 6]
  assert did["again"] is False  # a step already saved is not saved twice
  assert did["forced"] is True
  assert _saved_steps(directory) == [6, 7]


def test_a_new_checkpointer_restores_the_newest_step_exactly(saved):
  directory, _ = saved
  ckpt = checkpoint.Checkpointer(directory, every_steps=2)
  assert ckpt.latest_step() == 7
  _assert_same(ckpt.restore(_abstract(_state(0))), _state(7))
  ckpt.close()


def test_a_resumed_run_saves_on_the_interval_only(saved):
  directory, _ = saved
  ckpt = checkpoint.Checkpointer(directory, every_steps=2)
  did = [step for step in range(8, 12) if ckpt.maybe_save(step, _state(step))]
  ckpt.close()
  assert did == [8, 10]  # no "first step" save once checkpoints exist


def test_save_now_commits_an_off_interval_step_before_returning(tmp_path):
  ckpt = checkpoint.Checkpointer(tmp_path, every_steps=100)
  ckpt.maybe_save(1, _state(1))
  ckpt.save_now(37, _state(37))
  # Committed (renamed to its bare step number) before save_now returned,
  # without waiting for close().
  assert _saved_steps(tmp_path) == [1, 37]
  assert not ckpt.reached_preemption(38)  # single process: jax watches nothing
  ckpt.save_now(37, _state(37))  # saving a saved step again is a no-op
  ckpt.close()
  _assert_same(checkpoint.Checkpointer(tmp_path, every_steps=100).restore(
      _abstract(_state(0))), _state(37))


def test_restore_with_no_checkpoint_is_none(tmp_path):
  ckpt = checkpoint.Checkpointer(tmp_path / "fresh", every_steps=2)
  assert ckpt.latest_step() is None and ckpt.restore(_abstract(_state(0))) is None
  ckpt.close()


def test_restore_reads_straight_into_the_requested_shards(tmp_path):
  ckpt = checkpoint.Checkpointer(tmp_path, every_steps=1, use_async=False)
  ckpt.maybe_save(3, _state(3))
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
  rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  abstract = _abstract(_state(0))
  abstract["params"]["w"] = jax.ShapeDtypeStruct((8, 3), jnp.float32, sharding=rows)
  restored = ckpt.restore(abstract)
  ckpt.close()
  assert restored["params"]["w"].sharding == rows
  assert len(restored["params"]["w"].addressable_shards) == len(jax.devices())
  _assert_same(restored, _state(3))


@pytest.mark.parametrize("change", ["shape", "missing_leaf", "extra_leaf"])
def test_a_checkpoint_of_another_state_layout_is_refused(saved, change):
  directory, _ = saved
  abstract = _abstract(_state(0))
  if change == "shape":
    abstract["params"]["w"] = jax.ShapeDtypeStruct((3, 8), jnp.float32,
                                                   sharding=abstract["step"].sharding)
  elif change == "missing_leaf":
    del abstract["params"]["gain"]
  else:
    abstract["params"]["bias"] = abstract["params"]["gain"]
  ckpt = checkpoint.Checkpointer(directory, every_steps=2)
  with pytest.raises(checkpoint.CheckpointError, match="step 7"):
    ckpt.restore(abstract)


def test_damaged_newest_checkpoint_stops_the_run_and_is_left_in_place(saved):
  directory, _ = saved
  step_dir = directory / "7"
  damaged = [p for p in step_dir.rglob("*") if p.is_file() and p.stat().st_size]
  assert damaged
  for path in damaged:
    path.write_bytes(b"\x00garbage")
  ckpt = checkpoint.Checkpointer(directory, every_steps=2)
  # No silent fall-back to step 6 and no fresh start: the user decides.
  with pytest.raises(checkpoint.CheckpointError,
                     match=f"step 7 from {directory}.*left in place.*move "
                           f"{step_dir} aside"):
    ckpt.restore(_abstract(_state(0)))
  assert all(p.read_bytes() == b"\x00garbage" for p in damaged)
  assert _saved_steps(directory) == [6, 7]
  # Following the message's advice resumes from the earlier step.
  shutil.move(step_dir, directory.parent / "step7_aside")
  _assert_same(checkpoint.Checkpointer(directory, every_steps=2).restore(
      _abstract(_state(0))), _state(6))



def test_a_save_cut_off_leaves_no_temporary_folder_after_the_resume(tmp_path):
  # A kill or a full disk mid-save leaves orbax's temporary folder
  # ('<step>.orbax-checkpoint-tmp-<time>'); the resumed run's checkpointer removes it.
  ckpt = checkpoint.Checkpointer(tmp_path, every_steps=100)
  ckpt.save_now(1, _state(1))
  ckpt.close()
  torn = tmp_path / "2.orbax-checkpoint-tmp-1765000000000000"
  torn.mkdir()
  (torn / "half_written").write_bytes(b"\0" * 64)
  unrelated = tmp_path / "notes.orbax-checkpoint-tmp-kept"  # not a step's folder
  unrelated.mkdir()
  resumed = checkpoint.Checkpointer(tmp_path, every_steps=100)
  assert not torn.exists() and unrelated.exists() and resumed.latest_step() == 1
  resumed.close()


def test_a_save_this_process_abandoned_is_not_removed_while_it_writes(tmp_path):
  # A Colab cell interrupted mid-save abandons its manager; re-running the cell
  # must not delete the folder that save is still writing into.
  class Writing:
    def is_saving_in_progress(self):
      return self.busy

  ckpt = checkpoint.Checkpointer(tmp_path, every_steps=100)
  ckpt.close()
  in_flight = tmp_path / "3.orbax-checkpoint-tmp-1765000000000001"
  in_flight.mkdir()
  writer = Writing()
  writer.busy = True
  checkpoint._abandoned[str(tmp_path)] = [writer]
  try:
    checkpoint.Checkpointer(tmp_path, every_steps=100).close()
    assert in_flight.exists()
    writer.busy = False  # the abandoned save ended (or failed): the folder is torn
    checkpoint.Checkpointer(tmp_path, every_steps=100).close()
    assert not in_flight.exists()
    assert str(tmp_path) not in checkpoint._abandoned  # finished managers let go
  finally:
    checkpoint._abandoned.pop(str(tmp_path), None)
