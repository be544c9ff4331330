"""What a training unit writes to watch it by: TensorBoard scalars and HParams, the
train-metrics JSONL across a resume, and the runs table's dataset column.

The unit trains on a TFDS dataset served by a fake `tensorflow_datasets` module (the
calls TfdsSource makes), so the dataset column can be checked against its name.
"""
import sys
import types

import ml_collections
import numpy as np
import pytest

import event_files
from conftest import tiny_train_config
from scaling_jax import plan as plan_lib
from scaling_jax import data
from scaling_jax import train
from scaling_jax import train_metrics
from scaling_jax.runs import table as runs_table

# Trains (or fits) a shared module fixture: every test here is of the full tier.
pytestmark = pytest.mark.slow

TFDS_NAME = "fake_c4/en:3.1.0"
STALE_LOSS = -123.0  # a row the killed first process logged after its checkpoint


def _documents(rng, count: int) -> list[dict]:
  words = ["alpha", "beta", "gamma", "delta", "def", "return", "(x)", "+", "1", "\n"]
  return [{"text": " ".join(rng.choice(words, 200)).encode()} for _ in range(count)]


def _fake_tfds() -> types.ModuleType:
  rng = np.random.default_rng(0)
  splits = {"train": _documents(rng, 40), "validation": _documents(rng, 6)}
  mod = types.ModuleType("tensorflow_datasets")
  mod.data_source = lambda name, split, data_dir, download: list(splits[split])
  mod.list_builders = lambda with_community_datasets: [TFDS_NAME]
  return mod


def _config(cache_dir, **train_overrides):
  # tiny-1 has 43,680 parameters; M = 0.15 -> 26 steps of 256 tokens, evaluated at
  # 8, 16 and 26, checkpointed every 8 steps and at a stop.
  config = tiny_train_config(cache_dir, **train_overrides)
  config.data.source = "tfds"
  config.data.tfds.name = TFDS_NAME
  config.evals = ml_collections.ConfigDict(dict(val=dict(
      kind="val_loss", splits=("validation",), max_tokens=1024, batch_size=8)))
  return config


@pytest.fixture(scope="module")
def resumed_unit(tmp_path_factory):
  """A unit stopped at step 12, with a stale row after it, then resumed to 26."""
  workdir = tmp_path_factory.mktemp("unit")
  cache = str(tmp_path_factory.mktemp("cache"))
  with pytest.MonkeyPatch.context() as mp:
    mp.setitem(sys.modules, "tensorflow_datasets", _fake_tfds())
    train.train_run(_config(cache, stop_after_steps=12), str(workdir))
    with open(workdir / train_metrics.FILENAME, "a") as f:
      f.write(f'{{"step": 15, "loss": {STALE_LOSS}}}\n{{"step": 16, "lo')
    train.train_run(_config(cache), str(workdir))
  return workdir, plan_lib.plan(_config(cache))


LOGGED_STEPS = [5, 8, 10, 12, 15, 16, 20, 25, 26]  # every 5th, evals, stops


def test_dataset_column_and_hparams_hold_the_tfds_name(resumed_unit):
  workdir, _ = resumed_unit
  rows = runs_table.read_rows(workdir / runs_table.RECORDS_FILENAME)
  assert [r["step"] for r in rows] == [8, 16, 26]
  assert {r["dataset"] for r in rows} == {TFDS_NAME}
  session = event_files.hparams_session(event_files.read_events(workdir / "tb"))
  assert session["hparams"]["dataset"] == TFDS_NAME


def test_train_metrics_jsonl_has_each_logged_step_once_across_the_resume(resumed_unit):
  workdir, plan = resumed_unit
  rows = train_metrics.read_rows(workdir / train_metrics.FILENAME)
  assert [r["step"] for r in rows] == LOGGED_STEPS
  assert STALE_LOSS not in [r["loss"] for r in rows]
  for r in rows:
    assert set(r) == {"step", "tokens", "wall_time", "loss", "z_loss", "total_loss",
                      "grad_norm", "lr", "tokens_per_s"}
    assert r["tokens"] == plan.tokens_at(r["step"]) == 256 * r["step"]
    assert 0 < r["loss"] < 10 and r["grad_norm"] > 0 and r["lr"] > 0
  # Each process's first logged step includes compilation: no throughput there.
  assert [r["step"] for r in rows if r["tokens_per_s"] is None] == [5, 15]
  assert all(r["tokens_per_s"] > 0 for r in rows if r["tokens_per_s"] is not None)
  times = [r["wall_time"] for r in rows]
  assert times == sorted(times)


def test_tensorboard_scalars_match_the_jsonl_and_the_records(resumed_unit):
  workdir, _ = resumed_unit
  assert len(event_files.event_files(workdir / "tb")) == 2  # one per process
  scalars = event_files.scalars(event_files.read_events(workdir / "tb"))
  jsonl = train_metrics.read_rows(workdir / train_metrics.FILENAME)
  for tag, key in (("train/loss", "loss"), ("train/lr", "lr"),
                   ("train/grad_norm", "grad_norm")):
    assert [(s, v) for s, t, v in scalars if t == tag] == [
        (r["step"], float(np.float32(r[key]))) for r in jsonl]
  assert [s for s, t, _ in scalars if t == "train/tokens_per_s"] == [
      8, 10, 12, 16, 20, 25, 26]
  records = runs_table.read_rows(workdir / runs_table.RECORDS_FILENAME)
  assert [(s, v) for s, t, v in scalars if t == "loss/validation"] == [
      (r["step"], float(np.float32(r["loss/validation"]))) for r in records]


def test_hparams_session_is_written_once_when_the_unit_finishes(resumed_unit):
  workdir, plan = resumed_unit
  (first, second) = event_files.event_files(workdir / "tb")
  assert not event_files.hparams_plugin_data(event_files.read_file(first))
  events = event_files.read_file(second)
  session = event_files.hparams_session(events)
  config = _config("")
  assert session["hparams"] == dict(
      N=float(plan.num_params), M=0.15, model="tiny-1", dataset=TFDS_NAME, seed=0.0,
      peak_lr=config.optim.peak_lr, steps=26.0, global_batch=8.0)
  assert session["metrics"] == {"loss/validation", "loss_ci/validation"}
  assert session["status"] == "STATUS_SUCCESS"
  hparams_steps = {e.step for e in events if e.summary.value
                   and e.summary.value[0].tag.startswith("_hparams_/")}
  assert hparams_steps == {26}


@pytest.mark.parametrize("cfg, name", [
    ({"source": "tfds", "tfds": {"name": "c4/en:3.1.0"}}, "c4/en:3.1.0"),
    ({"source": "seqio", "seqio": {"task": "c4_v220_span_corruption"}},
     "c4_v220_span_corruption"),
    ({"source": "embedded"}, "embedded"),
    ({"source": "files", "files": {"path": "/data/*.txt"}}, "files"),
])
def test_dataset_name_reads_the_config_without_importing_tfds_or_seqio(
    monkeypatch, cfg, name):
  for module in ("tensorflow_datasets", "seqio"):
    monkeypatch.setitem(sys.modules, module, None)  # an import would now fail
  assert data.dataset_name(cfg) == name
