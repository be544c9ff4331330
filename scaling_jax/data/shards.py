"""Writing one split's token shards: the files packing.py and parallel_prepare.py
both produce, byte for byte (see packing.py for the layout)."""
from __future__ import annotations

import pathlib
from typing import Iterable, Iterator

import numpy as np

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
