"""Tests of grain_reader.batch_iterator: BatchReader's batches, with or without grain."""
import json

import numpy as np
import pytest

from scaling_jax import data
from scaling_jax.data import grain_reader

_BACKENDS = ["numpy", "grain"] if grain_reader.has_grain() else ["numpy"]


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
  root = tmp_path_factory.mktemp("grain")
  rng = np.random.default_rng(0)
  rows = [json.dumps({"text": "".join(rng.choice(list("abcdef \n"), 150))})
          for _ in range(400)]
  (root / "docs.jsonl").write_text("\n".join(rows) + "\n")
  return data.prepare_dataset({"source": "files", "validation_fraction": 0.1,
                               "files": {"path": str(root / "docs.jsonl")},
                               "shard_tokens": 4096, "cache_dir": str(root / "c")})


def _reader(ds, **kwargs):
  return data.BatchReader(ds, "train", seq_len=32, global_batch=8, seed=5, **kwargs)


@pytest.mark.parametrize("backend", _BACKENDS)
def test_batches_are_the_readers_in_step_order(ds, backend):
  reader = _reader(ds)
  got = list(grain_reader.batch_iterator(reader, 3, backend=backend, threads=2,
                                         prefetch=3))
  assert len(got) == reader.max_steps - 3 > 10
  for step, batch in enumerate(got, start=3):
    np.testing.assert_array_equal(batch, reader.batch(step))


@pytest.mark.parametrize("backend", _BACKENDS)
def test_processes_together_read_the_global_batch(ds, backend):
  whole = _reader(ds)
  parts = [grain_reader.batch_iterator(
      _reader(ds, process_index=i, process_count=2), 0, 4, backend=backend)
           for i in range(2)]
  for step, (first, second) in enumerate(zip(*parts)):
    assert first.shape == (4, 33)
    np.testing.assert_array_equal(np.concatenate([first, second]), whole.batch(step))


@pytest.mark.parametrize("backend", _BACKENDS)
def test_repeating_runs_go_past_the_first_epoch(ds, backend):
  reader = _reader(ds, allow_repeat=True)
  batches = grain_reader.batch_iterator(reader, reader.max_steps - 1, backend=backend)
  for step in range(reader.max_steps - 1, reader.max_steps + 2):
    np.testing.assert_array_equal(next(batches), reader.batch(step))


def test_without_grain_auto_falls_back_and_grain_says_how_to_install(ds, monkeypatch):
  monkeypatch.setattr(grain_reader, "has_grain", lambda: False)
  reader = _reader(ds)
  batches = grain_reader.batch_iterator(reader, 1, 3)
  assert [b.tolist() for b in batches] == [reader.batch(s).tolist() for s in (1, 2)]
  with pytest.raises(ImportError, match=r"scaling_jax\[grain\]"):
    grain_reader.batch_iterator(reader, backend="grain")
  with pytest.raises(ValueError, match="backend"):
    grain_reader.batch_iterator(reader, backend="tf.data")


@pytest.mark.skipif(not grain_reader.has_grain(), reason="grain is not installed")
def test_grain_backend_is_a_grain_iterator(ds):
  import grain
  batches = grain_reader.batch_iterator(_reader(ds), backend="auto")
  assert isinstance(batches, grain.DatasetIterator)
