"""Tests of preparing with worker processes (parallel_prepare) and of the default
study's batches, which must not change."""
import hashlib
import json
import multiprocessing
import os
import pathlib
import time

import numpy as np
import pytest

from scaling_jax import data
from scaling_jax.data import packing
from scaling_jax.data import parallel_prepare
from scaling_jax.data import source_registry


def _write_corpus(root: pathlib.Path, num_files=5, docs_per_file=60):
  rng = np.random.default_rng(0)
  letters = np.array(list("abcdefghij klmnopqrstuvwxyz\néü"))
  for f in range(num_files):
    rows = [json.dumps({"text": "".join(rng.choice(letters, rng.integers(0, 300)))})
            for _ in range(docs_per_file)]
    (root / f"part-{f}.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")


@pytest.fixture
def files_cfg(tmp_path):
  (tmp_path / "corpus").mkdir()
  _write_corpus(tmp_path / "corpus")
  # Tiny shards: worker blocks straddle shard files.
  return {"source": "files", "files": {"path": str(tmp_path / "corpus" / "*.jsonl")},
          "validation_fraction": 0.2, "shard_tokens": 1024}


def _contents(ds) -> dict:
  """Every file of a prepared dataset; metadata without its timings."""
  out = {f.name: f.read_bytes() for f in ds.path.iterdir() if f.suffix == ".npy"}
  meta = dict(ds.metadata)
  for timing in ("prepare_seconds", "created_unix"):
    meta.pop(timing)
  out["metadata"] = meta
  return out


def test_files_are_the_same_for_any_number_of_workers(files_cfg, tmp_path):
  one = data.prepare_dataset(files_cfg, tmp_path / "one")
  two = data.prepare_dataset(dict(files_cfg, prepare_workers=2), tmp_path / "two")
  # Same key: a dataset prepared either way is found by both.
  assert one.path.name == two.path.name
  expected = _contents(one)
  assert len([n for n in expected if n.startswith("train-0")]) > 3
  assert _contents(two) == expected
  # In this process (the benchmark's one-core baseline), with the worker code path.
  cfg = data.resolve_config(files_cfg)
  source = source_registry.make_source(cfg)
  out = tmp_path / "inproc"
  out.mkdir()
  splits = parallel_prepare.pack_splits(cfg, source, data.ByteTokenizer(), out,
                                        workers=1)
  assert splits == one.metadata["splits"]
  for name in ("train-00002.npy", "validation-doc_starts.npy"):
    assert (out / name).read_bytes() == expected[name]


def test_sources_read_in_one_piece_are_tokenised_in_workers(files_cfg, tmp_path,
                                                            monkeypatch):
  cfg = data.resolve_config(files_cfg)
  files = source_registry.make_source(cfg)

  class OnePiece:  # like TFDS and seqio: no shard_documents
    name, split_names, documents = files.name, files.split_names, files.documents
  monkeypatch.setattr(parallel_prepare, "TEXTS_PER_TASK", 7)  # many tasks
  out = tmp_path / "onepiece"
  out.mkdir()
  splits = parallel_prepare.pack_splits(cfg, OnePiece(), data.ByteTokenizer(), out,
                                        workers=2)
  expected = data.prepare_dataset(files_cfg, tmp_path / "serial")
  assert splits == expected.metadata["splits"]
  for f in expected.path.glob("*.npy"):
    assert (out / f.name).read_bytes() == f.read_bytes(), f.name


def test_shards_of_a_source_concatenate_to_its_documents(files_cfg):
  for cfg in (files_cfg, {}):  # files: one shard per file; embedded: runs of files
    source = source_registry.make_source(data.resolve_config(cfg))
    for split in source.split_names:
      shards = [list(source.shard_documents(split, i))
                for i in range(source.num_document_shards(split))]
      assert sum(shards, []) == list(source.documents(split)), (cfg, split)
      if split == "train":
        assert len(shards) > 3


def test_a_worker_error_names_the_file(files_cfg, tmp_path):
  bad = pathlib.Path(files_cfg["files"]["path"]).parent / "part-3.jsonl"
  bad.write_text('{"text": "fine"}\n{"text": \n', encoding="utf-8")
  with pytest.raises(ValueError, match=r"part-3.jsonl:2: not valid JSON"):
    data.prepare_dataset(dict(files_cfg, prepare_workers=2), tmp_path / "cache")


def _die_in_worker(task):
  """Stands in for _pack_shard in the workers: a worker the OS kills mid-part."""
  os._exit(9)


def test_a_killed_worker_fails_the_prepare_instead_of_hanging(files_cfg, tmp_path,
                                                              monkeypatch):
  # Spawned workers unpickle the function by name from this module, so they run it.
  monkeypatch.setattr(parallel_prepare, "_pack_shard", _die_in_worker)
  start = time.monotonic()
  with pytest.raises(RuntimeError, match="worker died .*out of memory"):
    data.prepare_dataset(dict(files_cfg, prepare_workers=2), tmp_path / "cache")
  assert time.monotonic() - start < 60
  assert not list((tmp_path / "cache").glob("*/*.npy"))  # nothing half written
  assert not multiprocessing.active_children()


def test_prepare_workers_is_checked_and_not_in_the_key(files_cfg):
  with pytest.raises(ValueError, match="prepare_workers"):
    data.resolve_config(dict(files_cfg, prepare_workers=-1))
  assert data.resolve_config(None).prepare_workers == 1
  names = set()
  for workers in (1, 2, 0):
    cfg = data.resolve_config(dict(files_cfg, prepare_workers=workers))
    names.add(packing.dataset_dir_name(cfg, source_registry.make_source(cfg)))
  assert len(names) == 1


# Batches of the default study (embedded corpus, byte tokenizer), hashed before
# parallel preparation and the grain reader were added: (seq_len, global_batch,
# seed, process_index, process_count) -> sha256 of steps 0-4, 100 and the last.
_DEFAULT_DATASET = "embedded-byte-22b5334000d8cef7"  # CPython 3.11.7's stdlib
_DEFAULT_BATCHES = {
    (128, 8, 0, 0, 1):
        "16885586a1007fe057cf234e8403254633bc7d156e3dcf8b87fa4ee7657993e5",
    (256, 32, 3, 1, 2):
        "7e8989f8468eb176ee5b4a7531593b9d8e743b5db8f0d0b109ef31b3f4ca128b",
    (1024, 4, 0, 0, 1):
        "982de309675acffe22b52f514fb02d5a59503029304fd5e982d8c30f7eb21f13",
}


def test_default_study_batches_are_unchanged():
  ds = data.prepare_dataset(None)
  if ds.path.name != _DEFAULT_DATASET:
    pytest.skip(f"another standard library ({ds.path.name}): hashes are for "
                f"{_DEFAULT_DATASET}")
  for (seq_len, batch, seed, index, count), expected in _DEFAULT_BATCHES.items():
    reader = data.BatchReader(ds, "train", seq_len=seq_len, global_batch=batch,
                              seed=seed, process_index=index, process_count=count)
    h = hashlib.sha256()
    for step in (0, 1, 2, 3, 4, 100, reader.max_steps - 1):
      h.update(reader.batch(step).tobytes())
    assert h.hexdigest() == expected, (seq_len, batch, seed, index, count)
  h = hashlib.sha256()
  for b in data.eval_batches(ds, "validation", 128, 4, 4096):
    h.update(b.tobytes())
  assert h.hexdigest() == (
      "9de1a7a961907bd149387d734a3b591abfe6b7f335c9255bbd46350b26a89f8f")
