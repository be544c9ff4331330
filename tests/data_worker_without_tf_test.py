"""A TFDS/seqio unit's worker reopens the launcher's prepared shards without TF.

Runs everywhere: the launcher reads a stand-in `tensorflow_datasets` module (the
real one is an extra), and the worker process has the real names refused by
tests/tf_free_worker.py. tests/data_tfds_seqio_real_test.py repeats this with the
real packages where they are installed.
"""
import sys
import types

import pytest

from scaling_jax import data
from tf_free_worker import synthetic_documents
from tf_free_worker import train_smoke_unit


def _fake_tfds(monkeypatch, splits: dict[str, list[str]]):
  """A `tensorflow_datasets` with random access to one dataset, 'fake_text'."""
  mod = types.ModuleType("tensorflow_datasets")

  def data_source(name, split, data_dir, download):
    assert name == "fake_text" and not download
    return [{"text": t.encode()} for t in splits[split]]

  mod.data_source = data_source
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", mod)


FAKE_TFDS = {"source": "tfds", "tfds": {"name": "fake_text", "ood_split": "test"}}


@pytest.fixture
def fake_tfds(monkeypatch):
  _fake_tfds(monkeypatch, {"train": synthetic_documents(300, 0),
                           "validation": synthetic_documents(70, 1),
                           "test": synthetic_documents(70, 2)})


def test_a_prepared_tfds_dataset_reopens_without_importing_tfds(
    fake_tfds, tmp_path, monkeypatch):
  cfg = dict(FAKE_TFDS, cache_dir=str(tmp_path))
  prepared = data.prepare_dataset(cfg)
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import fails
  assert data.prepare_dataset(cfg).path == prepared.path
  with pytest.raises(ImportError, match=r"scaling_jax\[tfds\]"):
    data.prepare_dataset(dict(cfg, validation_fraction=0.05))  # a new key: prepare


@pytest.mark.slow
def test_a_tfds_unit_trains_in_a_worker_that_cannot_import_tensorflow(
    fake_tfds, tmp_path, monkeypatch):
  final = train_smoke_unit(dict(FAKE_TFDS, cache_dir=str(tmp_path / "cache")),
                           tmp_path, monkeypatch)
  assert final["loss/validation"] < 5.5 and final["loss/ood"] < 5.5  # ln 258 = 5.55
