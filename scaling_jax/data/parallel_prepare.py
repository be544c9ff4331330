"""Preparing a dataset with several worker processes, into the same files as one.

A source that can be read in parts (`num_document_shards`, `shard_documents`: the
embedded corpus in runs of files, a files source one file per part, as C4, RedPajama
and RefinedWeb ship) has each part read and tokenised by a worker, which sends back
the part's documents packed back to back with their eos. The parent appends the
parts in source order through the one ShardWriter (shards.py), so the shards, document
starts and metadata are byte for byte those of a one-process preparation whatever
the number of workers, and no reader can tell how a dataset was prepared. Sources
read in one piece (TFDS, seqio) are read by the parent and only tokenised by the
workers.

Workers are spawned, not forked: the launcher has JAX and its threads loaded, and a
forked copy of a threaded process can deadlock. They run under a ProcessPoolExecutor,
not multiprocessing.Pool: a worker killed by the OS (out of memory, say) then fails
the preparation with a message instead of leaving the parent waiting forever for a
result that will never come.
"""
from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing
import os
import pathlib
from typing import Callable, Iterable, Iterator

import numpy as np

from scaling_jax.data import config as config_lib
from scaling_jax.data import shards
from scaling_jax.data import source_registry
from scaling_jax.data import tokenization

# Documents per task for sources read in one piece: big enough to amortise the
# round trip, small enough that the parent never holds much of the corpus.
TEXTS_PER_TASK = 2048

_worker: dict = {}  # this process's source, tokenizer and token dtype


def _init_worker(cfg_dict: dict, tokenizer_spec: dict, dataset_dir: str,
                 dtype_name: str) -> None:
  cfg = config_lib.resolve_config(cfg_dict)
  _worker.update(
      source=source_registry.make_source(cfg),
      tokenizer=tokenization.load_tokenizer(tokenizer_spec, pathlib.Path(dataset_dir)),
      dtype=np.dtype(dtype_name))


def _init_pool_worker(*init_args) -> None:
  # One tokenizer thread per worker: `tokenizers` would otherwise spread every
  # call over all cores, in each of the workers at once.
  os.environ["TOKENIZERS_PARALLELISM"] = "false"
  _init_worker(*init_args)


def _pack(texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
  """The texts' tokens, each document followed by eos, and each one's length."""
  tokenizer, dtype = _worker["tokenizer"], _worker["dtype"]
  eos = np.array([tokenizer.eos_id], dtype)
  pieces, lengths = [], []
  for batch in shards.batched(texts, shards.ENCODE_BATCH):
    for ids in tokenizer.encode_batch(batch):
      pieces += [np.asarray(ids).astype(dtype, copy=False), eos]
      lengths.append(len(ids) + 1)
  stream = np.concatenate(pieces) if pieces else np.empty(0, dtype)
  return stream, np.asarray(lengths, np.int64)


def _pack_shard(task: tuple[str, int]) -> tuple[np.ndarray, np.ndarray]:
  split, index = task
  return _pack(_worker["source"].shard_documents(split, index))


def _in_order(pool, fn: Callable, items: Iterable, max_pending: int) -> Iterator:
  """fn(item) for each item, computed by the pool, yielded in the items' order.

  Unlike Pool.imap, submits only `max_pending` items ahead, so a source read in one
  piece is not pulled into memory faster than the workers tokenise it.
  """
  if pool is None:
    yield from map(fn, items)
    return
  pending = collections.deque()
  for item in items:
    pending.append(pool.submit(fn, item))
    if len(pending) >= max_pending:
      yield _result(pending.popleft())
  while pending:
    yield _result(pending.popleft())


def _result(future: concurrent.futures.Future):
  try:
    return future.result()
  except concurrent.futures.process.BrokenProcessPool as e:
    raise RuntimeError(
        "a data preparation worker died without a Python error (killed by the OS, "
        "perhaps out of memory: try fewer data.prepare_workers or smaller "
        "data.shard_tokens); nothing was written to the cache") from e


def _pack_split(pool, workers: int, source, split: str, dtype: np.dtype,
                out_dir: pathlib.Path, shard_tokens: int) -> dict:
  if hasattr(source, "shard_documents"):
    fn, items = _pack_shard, [(split, i) for i in range(source.num_document_shards(split))]
  else:
    fn, items = _pack, shards.batched(source.documents(split), TEXTS_PER_TASK)
  writer = shards.ShardWriter(out_dir, split, dtype, shard_tokens)
  for stream, lengths in _in_order(pool, fn, items, max_pending=workers + 1):
    writer.add_packed(stream, lengths)
  return shards.close_split(writer, source, split)


def resolve_workers(prepare_workers: int) -> int:
  """The config's `prepare_workers` as a count (0: one per CPU core)."""
  if prepare_workers:
    return prepare_workers
  if hasattr(os, "sched_getaffinity"):  # the cores this process may use (Linux)
    return len(os.sched_getaffinity(0))
  return os.cpu_count() or 1


def pack_splits(cfg, source, tokenizer, out_dir: pathlib.Path,
                workers: int | None = None) -> dict:
  """Packs every split of `source` into `out_dir` as packing._build does, with
  `workers` processes (default: the config's `prepare_workers`); 1 tokenises in
  this process. `tokenizer`'s files must already be in `out_dir`."""
  workers = resolve_workers(cfg.prepare_workers if workers is None else workers)
  dtype = shards.token_dtype(tokenizer)
  init_args = (cfg.to_dict(), tokenizer.spec(), str(out_dir), dtype.name)
  if workers == 1:
    _init_worker(*init_args)
    pool = None
  else:
    pool = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_pool_worker, initargs=init_args)
  try:
    return {split: _pack_split(pool, workers, source, split, dtype, out_dir,
                               cfg.shard_tokens)
            for split in source.split_names}
  finally:
    if pool is not None:
      # On an error, tasks not yet started are dropped; at most one part per
      # worker is still being read, and waiting for it leaves no stray process.
      pool.shutdown(wait=True, cancel_futures=True)
