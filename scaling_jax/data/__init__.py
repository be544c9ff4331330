"""Data: sources -> tokenizer -> packed token shards -> deterministic batches.

  ds = data.prepare_dataset(data_cfg, cache_dir)   # once; cached by config key
  reader = data.BatchReader(ds, 'train', seq_len=..., global_batch=..., seed=...)
  tokens = reader.batch(step)                      # int32 [local_batch, seq_len + 1]
  for b in data.eval_batches(ds, 'validation', seq_len, batch_size, max_tokens): ...

Nothing here imports TensorFlow; the TFDS and seqio sources import it lazily, and
only while preparing.
"""
from __future__ import annotations

from typing import Iterator

from scaling_jax.data.config import dataset_name
from scaling_jax.data.config import default_data_config
from scaling_jax.data.config import resolve_config
from scaling_jax.data.config import SOURCES
from scaling_jax.data.config import TOKENIZERS
from scaling_jax.data.packing import prepare_dataset
from scaling_jax.data.packing import PreparedDataset
from scaling_jax.data.reader import BatchReader
from scaling_jax.data.reader import eval_batches
from scaling_jax.data.source_registry import make_source
from scaling_jax.data.tokenization import ByteTokenizer


def documents(data_cfg, split: str) -> Iterator[str]:
  """Raw text documents of `split`, in a fixed order, without preparing anything.

  For the embedded corpus, 'validation' reads only its held-out files and 'ood'
  only the reference docs, so both are cheap.
  """
  return make_source(resolve_config(data_cfg)).documents(split)


def split_names(data_cfg) -> tuple[str, ...]:
  """The splits the configured source provides (without preparing anything)."""
  return tuple(make_source(resolve_config(data_cfg)).split_names)


__all__ = [
    "BatchReader", "ByteTokenizer", "PreparedDataset", "SOURCES", "TOKENIZERS",
    "dataset_name", "default_data_config", "documents", "eval_batches", "make_source",
    "prepare_dataset", "resolve_config", "split_names",
]
