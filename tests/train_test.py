"""The training loop end to end on the embedded corpus, shrunk to seconds."""
import os
import pathlib
import subprocess
import sys

import pytest

import event_files
from conftest import tiny_train_config
from scaling_jax import checkpoint
from scaling_jax import plan as plan_lib
from scaling_jax.runs import table as runs_table
from scaling_jax import train

# Trains (or fits) a shared module fixture: every test here is of the full tier.
pytestmark = pytest.mark.slow




@pytest.fixture(scope="module")
def full_run(tmp_path_factory, data_cache):
  workdir = str(tmp_path_factory.mktemp("full"))
  return workdir, train.train_run(tiny_train_config(data_cache), workdir)


def test_plan_derives_steps_from_n_and_m(data_cache):
  plan = plan_lib.plan(tiny_train_config(data_cache))
  assert plan.num_params == 43_680 and plan.tokens_per_step == 256
  assert plan.steps == 26 and plan.eval_every_steps == 8
  assert plan_lib.eval_steps(plan) == [8, 16, 26]  # 24 is too near 26


def test_rows_have_runs_table_columns_and_loss_falls(full_run):
  workdir, rows = full_run
  assert [r["step"] for r in rows] == [8, 16, 26]
  assert [r["final"] for r in rows] == [False, False, True]
  assert runs_table.read_rows(os.path.join(workdir, "records.jsonl")) == rows
  last = rows[-1]
  assert last["N"] == 43_680 and last["M"] == 0.15 and last["tokens"] == 26 * 256
  assert last["flops"] == 6 * 43_680 * 26 * 256
  assert last["model"] == "tiny-1" and last["seed"] == 0 and last["dataset"]
  for split in ("validation", "ood"):
    assert 0 < last[f"loss_ci/{split}"] < 0.2
    assert last[f"loss/{split}"] < rows[0][f"loss/{split}"]
  assert '"tokens_per_param": 0.15' in last["config"]


def test_tensorboard_log_is_readable(full_run):
  workdir, _ = full_run
  (event_file,) = event_files.event_files(pathlib.Path(workdir, "tb"))
  scalars = event_files.scalars(event_files.read_file(event_file))
  tags = {tag for _, tag, _ in scalars}
  assert {"train/loss", "train/lr", "loss/validation", "loss/ood"} <= tags
  assert max(step for step, tag, _ in scalars if tag == "train/loss") == 26


def _fresh_starts(monkeypatch) -> list:
  """Records each Program.init from here on: a unit that resumes makes none."""
  calls, init = [], train.Program.init
  monkeypatch.setattr(train.Program, "init",
                      lambda self, seed: calls.append(seed) or init(self, seed))
  return calls


def test_killed_run_resumes_bit_identically_without_duplicate_rows(
    full_run, tmp_path, data_cache, monkeypatch):
  _, full_rows = full_run
  workdir = str(tmp_path)
  first = train.train_run(tiny_train_config(data_cache, stop_after_steps=12), workdir)
  assert [r["step"] for r in first] == [8]
  assert checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"),
                                 1).latest_step() == 12
  fresh_starts = _fresh_starts(monkeypatch)
  second = train.train_run(tiny_train_config(data_cache), workdir)
  # Restored, not retrained from step 0 (which would reach the same rows and losses).
  assert not fresh_starts
  assert [r["step"] for r in second] == [16, 26]
  table = runs_table.read_rows(os.path.join(workdir, "records.jsonl"))
  assert [r["step"] for r in table] == [8, 16, 26]
  for resumed, uninterrupted in zip(table, full_rows):
    for key in ("loss/validation", "loss/ood"):
      assert resumed[key] == uninterrupted[key]  # bit-identical on CPU


def test_a_run_resumes_on_a_different_mesh(full_run, tmp_path, data_cache,
                                           monkeypatch):
  """A unit stopped on one layout resumes on another (as when a launch changes
  cpu_devices_per_unit or a unit moves to a slice of another size): its checkpoint
  restores into the new mesh's shardings, at its step, and training goes on to the
  losses of an uninterrupted run up to float32 summation order."""
  _, full_rows = full_run
  workdir = str(tmp_path)

  def on_mesh(config, **mesh):
    config.mesh.update(mesh)
    # Validation losses only: in-context scoring on an fsdp mesh is tested in a
    # child process (icl_scoring_in_flight_test.py), where an XLA abort, should
    # that bug return, cannot end this test run.
    del config.evals["icl"]
    return config
  config = on_mesh(tiny_train_config(data_cache, stop_after_steps=12), data=8, fsdp=1,
                   tensor=1)  # every parameter replicated
  assert [r["step"] for r in train.train_run(config, workdir)] == [8]
  config = on_mesh(tiny_train_config(data_cache), data=2, fsdp=4,
                   tensor=1)  # parameters sharded 4 ways
  fresh_starts = _fresh_starts(monkeypatch)
  assert [r["step"] for r in train.train_run(config, workdir)] == [16, 26]
  assert not fresh_starts  # restored into the new shardings, not retrained
  table = runs_table.read_rows(os.path.join(workdir, "records.jsonl"))
  assert [r["step"] for r in table] == [8, 16, 26]
  for resumed, uninterrupted in zip(table, full_rows):
    for key in ("loss/validation", "loss/ood"):
      assert resumed[key] == pytest.approx(uninterrupted[key], rel=1e-4)


def test_unreadable_checkpoint_fails_clearly_and_is_kept(tmp_path, data_cache):
  workdir = str(tmp_path)
  train.train_run(tiny_train_config(data_cache, stop_after_steps=8), workdir)
  step_dir = tmp_path / "checkpoints" / "8"
  damaged = [p for p in step_dir.rglob("*") if p.is_file() and p.stat().st_size]
  for path in damaged:
    path.write_bytes(b"\x00garbage")
  with pytest.raises(checkpoint.CheckpointError,
                     match="cannot restore checkpoint step 8.*left in place"):
    train.train_run(tiny_train_config(data_cache), workdir)
  assert all(p.exists() for p in damaged)


def test_run_longer_than_the_data_fails_before_training(tmp_path, data_cache):
  config = tiny_train_config(data_cache, tokens_per_param=1e6)
  with pytest.raises(ValueError, match="train split holds .* lower "
                     "config.train.tokens_per_param"):
    train.train_run(config, str(tmp_path))
  assert not (tmp_path / "checkpoints").exists()


def test_unknown_dataset_fails_with_field_name(tmp_path, data_cache):
  config = tiny_train_config(data_cache)
  config.data.source = "imaginary"
  with pytest.raises(ValueError, match="'source'.*imaginary"):
    train.train_run(config, str(tmp_path))


def test_unknown_model_field_and_vocab_too_small(tmp_path, data_cache):
  config = tiny_train_config(data_cache)
  config.model.vocab_size = 100
  with pytest.raises(ValueError, match="config.model.vocab_size"):
    train.train_run(config, str(tmp_path))
  config = tiny_train_config(data_cache)
  config.unlock()
  config.model.depth = 3
  with pytest.raises(ValueError, match="unknown field.*depth"):
    plan_lib.plan(config)


def test_training_stack_never_imports_tensorflow():
  code = ("import scaling_jax.train, scaling_jax.launch.sweep, sys; "
          "bad = [m for m in sys.modules if m.startswith('tensorflow')]; "
          "assert not bad, bad")
  subprocess.run([sys.executable, "-c", code], check=True, timeout=120,
                 cwd=pathlib.Path(__file__).resolve().parents[1])
