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
from typing import Iterable, Iterator

import numpy as np

from scaling_jax.data import config as config_lib
from scaling_jax.data import source_registry
from scaling_jax.data import tokenization

METADATA = "metadata.json"
ENCODE_BATCH = 64  # documents per encode_batch call: amortises Python overhead


class ShardWriter:
  """Appends documents (token arrays) to one split's shards."""

  def __init__(self, out_dir: pathlib.Path, split: str, dtype, shard_tokens: int):
    self.out_dir, self.split, self.dtype = out_dir, split, np.dtype(dtype)
    self.shard_tokens = shard_tokens
    self._pending: list[np.ndarray] = []
    self._pending_tokens = 0
    self._doc_starts: list[int] = []
    self._doc_start_blocks: list[np.ndarray] = []  # from add_packed, in order
    self.shards: list[dict] = []
    self.num_tokens = 0

  def add(self, ids: np.ndarray, eos_id: int) -> None:
    self._doc_starts.append(self.num_tokens)
    doc = np.empty(len(ids) + 1, self.dtype)
    doc[:-1] = ids
    doc[-1] = eos_id
    self._pending.append(doc)
    self._pending_tokens += len(doc)
    self.num_tokens += len(doc)
    while self._pending_tokens >= self.shard_tokens:
      self._flush(self.shard_tokens)

  def add_packed(self, stream: np.ndarray, doc_lengths: np.ndarray) -> None:
    """Appends documents already joined with their eos (as a worker of
    parallel_prepare packs them): `stream` back to back, `doc_lengths` with eos."""
    if self._doc_starts:  # keep document order across add and add_packed
      self._doc_start_blocks.append(np.asarray(self._doc_starts, np.int64))
      self._doc_starts = []
    offsets = np.cumsum(doc_lengths, dtype=np.int64) - doc_lengths
    self._doc_start_blocks.append(self.num_tokens + offsets)
    self._pending.append(np.asarray(stream, self.dtype))
    self._pending_tokens += len(stream)
    self.num_tokens += len(stream)
    while self._pending_tokens >= self.shard_tokens:
      self._flush(self.shard_tokens)

  def _flush(self, count: int) -> None:
    stream = np.concatenate(self._pending)
    name = f"{self.split}-{len(self.shards):05d}.npy"
    np.save(self.out_dir / name, stream[:count])
    self.shards.append({"file": name, "num_tokens": int(count)})
    rest = stream[count:]
    self._pending = [rest] if len(rest) else []
    self._pending_tokens = len(rest)

  def close(self) -> dict:
    if self._pending_tokens:
      self._flush(self._pending_tokens)
    doc_starts = np.concatenate(
        self._doc_start_blocks + [np.asarray(self._doc_starts, np.int64)])
    np.save(self.out_dir / f"{self.split}-doc_starts.npy", doc_starts)
    return {"num_tokens": self.num_tokens, "num_documents": len(doc_starts),
            "shards": self.shards, "dtype": self.dtype.name}


def batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
  batch = []
  for item in items:
    batch.append(item)
    if len(batch) == size:
      yield batch
      batch = []
  if batch:
    yield batch


def token_dtype(tokenizer) -> np.dtype:
  return np.dtype(np.uint16 if tokenizer.vocab_size <= 1 << 16 else np.uint32)


def close_split(writer: ShardWriter, source, split: str) -> dict:
  """Closes the split's writer; raises if the split had no documents."""
  info = writer.close()
  if info["num_tokens"] == 0:
    raise ValueError(f"split {split!r} of source {source.name!r} has no documents; "
                     "check the source config (paths, split names)")
  return info


def _pack_split(source, split: str, tokenizer, out_dir: pathlib.Path,
                shard_tokens: int) -> dict:
  writer = ShardWriter(out_dir, split, token_dtype(tokenizer), shard_tokens)
  for texts in batched(source.documents(split), ENCODE_BATCH):
    for ids in tokenizer.encode_batch(texts):
      writer.add(ids, tokenizer.eos_id)
  return close_split(writer, source, split)


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
    from scaling_jax.data import parallel_prepare  # pylint: disable=g-import-not-at-top
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
