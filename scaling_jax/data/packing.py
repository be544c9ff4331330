"""Tokenize and pack a source once into shards; open the shards without TensorFlow.

Layout of one prepared dataset, `<cache_dir>/<source>-<tokenizer>-<key>/`:
  metadata.json                  fingerprint, source, tokenizer, per-split counts
  <split>-<i:05d>.npy            token shards (uint16, or uint32 past 65,536 ids)
  <split>-doc_starts.npy         int64 offset of each document's first token
  tokenizer.model | .json        the tokenizer's own file, when it has one
Each split is one stream: every document's tokens followed by eos, in source order.
With data.prepare_workers != 1, worker processes tokenise the source's document
shards (parallel_prepare.py) into these same files, byte for byte.
The directory is built under a temporary name and renamed into place when complete,
so a crash leaves no half-written dataset, and two processes preparing the same
dataset at once both end up reading the one that won the rename.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import tempfile
import time

import numpy as np

from scaling_jax.data import config as config_lib
from scaling_jax.data import parallel_prepare
from scaling_jax.data import shards
from scaling_jax.data import source_registry
from scaling_jax.data import tokenization

METADATA = "metadata.json"


def _pack_split(source, split: str, tokenizer, out_dir: pathlib.Path,
                shard_tokens: int) -> dict:
  writer = shards.ShardWriter(out_dir, split, shards.token_dtype(tokenizer),
                              shard_tokens)
  for texts in shards.batched(source.documents(split), shards.ENCODE_BATCH):
    for ids in tokenizer.encode_batch(texts):
      writer.add(ids, tokenizer.eos_id)
  return shards.close_split(writer, source, split)


def _tokenizer_content(cfg) -> dict:
  """What of the tokenizer goes into the cache key beyond its config fields."""
  if cfg.tokenizer == "sentencepiece":
    # Training output may change between releases: a new one trains a new model.
    spm = tokenization.import_extra("sentencepiece", "sentencepiece")
    return {"sentencepiece_version": getattr(spm, "__version__", "unknown")}
  if cfg.tokenizer != "hf" or not cfg.hf.path:
    return {}
  path = pathlib.Path(cfg.hf.path).expanduser()
  if not path.is_file():
    raise FileNotFoundError(f"data config field 'hf.path' is {cfg.hf.path!r}, which "
                            "is not a file; point it at a tokenizer.json")
  return {"hf_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def dataset_dir_name(cfg, source) -> str:
  """`<source>-<tokenizer>-<key>`: the key hashes every field that changes tokens."""
  payload = {"format_version": config_lib.FORMAT_VERSION,
             "config": config_lib.relevant_fields(cfg),
             "content": source.content_fingerprint(),
             "tokenizer_content": _tokenizer_content(cfg)}
  return f"{cfg.source}-{cfg.tokenizer}-{config_lib.fingerprint(payload)}"


def _build(cfg, source, out_dir: pathlib.Path, key: str) -> None:
  start = time.time()
  tokenizer = tokenization.build_tokenizer(
      cfg, lambda: source.documents("train"), out_dir)
  if cfg.prepare_workers == 1:
    splits = {split: _pack_split(source, split, tokenizer, out_dir, cfg.shard_tokens)
              for split in source.split_names}
  else:  # same files, tokenised by worker processes
    splits = parallel_prepare.pack_splits(cfg, source, tokenizer, out_dir)
  content = source.content_fingerprint()
  metadata = {
      "format_version": config_lib.FORMAT_VERSION,
      "key": key,
      "fingerprint": {
          "python_version": content.get("python_version"),
          "file_count": content.get("file_count"),
          "token_count": sum(s["num_tokens"] for s in splits.values()),
          "key": key,
      },
      "source": {"name": cfg.source, "config": config_lib.relevant_fields(cfg),
                 "content": content},
      "tokenizer": tokenizer.spec(),
      "split_names": list(source.split_names),  # in order; "splits" is key-sorted
      "splits": splits,
      "counts": {s: v["num_tokens"] for s, v in splits.items()},
      "prepare_seconds": round(time.time() - start, 3),
      "created_unix": int(time.time()),
  }
  # Written last: a directory without it is never taken for a prepared dataset.
  (out_dir / METADATA).write_text(json.dumps(metadata, indent=1, sort_keys=True))


def prepare_dataset(data_cfg=None, cache_dir: str | os.PathLike | None = None):
  """Tokenizes and packs the configured source once; returns the PreparedDataset.

  Idempotent: a dataset already prepared under the same key is opened, not rebuilt.
  `cache_dir` overrides `data_cfg.cache_dir` (see `config.cache_root`).
  """
  cfg = config_lib.resolve_config(data_cfg)
  source = source_registry.make_source(cfg)
  root = config_lib.cache_root(cfg, cache_dir)
  name = dataset_dir_name(cfg, source)
  final = root / name
  if (final / METADATA).is_file():
    return PreparedDataset(final)
  root.mkdir(parents=True, exist_ok=True)
  tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
  try:
    _build(cfg, source, tmp, name)
    try:
      os.rename(tmp, final)
    except OSError:
      if not (final / METADATA).is_file():
        raise
      # Another process finished the same dataset first; theirs is identical.
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return PreparedDataset(final)


class SplitTokens:
  """One split's token stream over its memory-mapped shards."""

  def __init__(self, dataset_dir: pathlib.Path, info: dict):
    self._shards = [np.load(dataset_dir / s["file"], mmap_mode="r")
                    for s in info["shards"]]
    sizes = [s["num_tokens"] for s in info["shards"]]
    self._starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    self.num_tokens = int(self._starts[-1])

  def __len__(self) -> int:
    return self.num_tokens

  def read(self, start: int, length: int) -> np.ndarray:
    """Tokens [start, start + length) as int32, across shard boundaries if need be."""
    if start < 0 or start + length > self.num_tokens:
      raise IndexError(f"tokens [{start}, {start + length}) outside the split's "
                       f"{self.num_tokens} tokens")
    out = np.empty(length, np.int32)
    shard = int(np.searchsorted(self._starts, start, side="right")) - 1
    filled = 0
    while filled < length:
      offset = start + filled - self._starts[shard]
      piece = self._shards[shard][offset:offset + length - filled]
      out[filled:filled + len(piece)] = piece
      filled += len(piece)
      shard += 1
    return out

  def windows(self, starts: np.ndarray, length: int) -> np.ndarray:
    """Rows tokens[s:s+length] for each s in `starts`, as int32 [len(starts), length]."""
    starts = np.asarray(starts, np.int64)
    if len(self._shards) == 1:  # one vectorised gather in the common case
      return np.asarray(self._shards[0][starts[:, None] + np.arange(length)], np.int32)
    return np.stack([self.read(int(s), length) for s in starts]) if len(starts) else (
        np.empty((0, length), np.int32))


class PreparedDataset:
  """A prepared dataset on disk: tokenizer, split streams and metadata."""

  def __init__(self, path: str | os.PathLike):
    self.path = pathlib.Path(path)
    meta_file = self.path / METADATA
    if not meta_file.is_file():
      raise FileNotFoundError(f"{meta_file} is missing: {self.path} is not a prepared "
                              "dataset; make one with data.prepare_dataset(cfg)")
    self.metadata = json.loads(meta_file.read_text())
    if self.metadata.get("format_version") != config_lib.FORMAT_VERSION:
      raise ValueError(f"{meta_file}: format_version "
                       f"{self.metadata.get('format_version')} is not "
                       f"{config_lib.FORMAT_VERSION}; delete {self.path} to re-prepare")
    self.tokenizer = tokenization.load_tokenizer(self.metadata["tokenizer"], self.path)
    self.split_names = tuple(self.metadata["split_names"])
    self._tokens: dict[str, SplitTokens] = {}

  def _info(self, split: str) -> dict:
    if split not in self.metadata["splits"]:
      raise ValueError(f"unknown split {split!r}; dataset {self.path.name} has "
                       f"{list(self.split_names)}")
    return self.metadata["splits"][split]

  def num_tokens(self, split: str) -> int:
    return int(self._info(split)["num_tokens"])

  def num_documents(self, split: str) -> int:
    return int(self._info(split)["num_documents"])

  def tokens(self, split: str) -> SplitTokens:
    if split not in self._tokens:
      self._tokens[split] = SplitTokens(self.path, self._info(split))
    return self._tokens[split]

  def document_starts(self, split: str) -> np.ndarray:
    """Offset of each document's first token in the split's stream (int64)."""
    self._info(split)
    return np.load(self.path / f"{split}-doc_starts.npy", mmap_mode="r")

  def __repr__(self) -> str:
    return f"PreparedDataset({str(self.path)!r}, tokens={self.metadata['counts']})"
