"""The data config: one default per field, resolution of partial configs, cache keys.

A study config usually sets only a few data fields (`source`, `tokenizer`, maybe
`files.path`); `resolve_config` lays them over `default_data_config()` so every other
module can read any field without guarding, and a misspelt field fails loudly here
instead of being silently ignored.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
from typing import Any, Mapping

import ml_collections

from scaling_jax.data import grain_reader

# Bump when the on-disk layout or the way documents are produced changes, so that
# caches written by older code are never read as if they were current.
FORMAT_VERSION = 1

SOURCES = ("embedded", "files", "tfds", "seqio")
TOKENIZERS = ("byte", "sentencepiece", "hf")
CACHE_ENV = "SCALING_JAX_DATA_CACHE"


def default_data_config() -> ml_collections.ConfigDict:
  """The data config with every field at its default (the embedded corpus, bytes)."""
  cfg = ml_collections.ConfigDict()
  cfg.source = "embedded"  # one of SOURCES
  cfg.tokenizer = "byte"  # one of TOKENIZERS
  # '' -> $SCALING_JAX_DATA_CACHE, else ~/.cache/scaling_jax/data.
  cfg.cache_dir = ""
  # Share of documents held out for validation where the source has no own split.
  # 3% keeps the embedded corpus's train split above 10M byte tokens on Python
  # 3.10-3.13 while leaving ~0.4M tokens (25-30 files) for validation.
  cfg.validation_fraction = 0.03
  # Tokens per shard file (2**26 uint16 tokens = 128 MiB).
  cfg.shard_tokens = 1 << 26
  # Worker processes that tokenise while preparing: 1 reads and tokenises in this
  # process; N > 1 spreads the source's document shards (files) over N processes;
  # 0 takes one per CPU core. The prepared files are the same for any value.
  cfg.prepare_workers = 1
  # How the train loop reads its batches (data/grain_reader.py): "auto" prefetches
  # through grain when it is installed, "numpy" reads each batch when asked,
  # "grain" requires grain. The batches are the same whichever reads them.
  cfg.reader = "auto"
  cfg.embedded = ml_collections.ConfigDict(dict(
      stdlib_dir="",  # '' -> this interpreter's standard library
      include_tests=False,  # the `test` packages, absent from many installs
  ))
  cfg.files = ml_collections.ConfigDict(dict(
      path="",  # glob of train files (or of all files, then split by hash)
      validation_path="",  # optional glob; '' -> hash split of `path`
      ood_path="",  # optional glob of an out-of-distribution eval set
      text_field="text",  # field holding the text in JSON lines
      format="auto",  # auto (by extension) | text (one file, one doc) | jsonl
  ))
  cfg.tfds = ml_collections.ConfigDict(dict(
      name="",  # e.g. 'lm1b' or 'c4/en:3.0.1'
      data_dir="",  # '' -> TFDS's default data dir
      text_field="text",
      train_split="train",
      validation_split="validation",
      ood_split="",
  ))
  cfg.seqio = ml_collections.ConfigDict(dict(
      task="",  # a registered seqio task or mixture name
      module="",  # optional module to import first, which registers the task
      feature="targets",
      train_split="train",
      validation_split="validation",
      ood_split="",
  ))
  cfg.sentencepiece = ml_collections.ConfigDict(dict(
      vocab_size=8192,
      model_type="bpe",  # bpe | unigram
      max_train_chars=20_000_000,  # text sampled from the train split to train on
      character_coverage=1.0,
      num_threads=2,
  ))
  cfg.hf = ml_collections.ConfigDict(dict(
      path="",  # a tokenizers' tokenizer.json (e.g. GPT-NeoX's)
      eos_token="<|endoftext|>",
  ))
  return cfg


def _overlay(base: ml_collections.ConfigDict, update: Mapping[str, Any],
             where: str) -> None:
  for key, value in update.items():
    name = f"{where}{key}"
    if key not in base:
      raise ValueError(f"data config field {name!r} is unknown; known fields"
                       f"{' of ' + repr(where[:-1]) if where else ''}: "
                       f"{sorted(base.keys())}")
    if isinstance(base[key], ml_collections.ConfigDict):
      if not isinstance(value, Mapping):
        raise ValueError(f"data config field {name!r} must be a dict of fields "
                         f"{sorted(base[key].keys())}, got {value!r}")
      _overlay(base[key], value, name + ".")
    else:
      base[key] = value


def resolve_config(cfg: Mapping[str, Any] | None) -> ml_collections.ConfigDict:
  """`cfg` laid over the defaults; raises on unknown fields and invalid values."""
  resolved = default_data_config()
  if cfg is not None:
    plain = cfg.to_dict() if isinstance(cfg, ml_collections.ConfigDict) else cfg
    _overlay(resolved, plain, "")
  if resolved.source not in SOURCES:
    raise ValueError(f"data config field 'source' is {resolved.source!r}; known "
                     f"sources: {list(SOURCES)}")
  if resolved.tokenizer not in TOKENIZERS:
    raise ValueError(f"data config field 'tokenizer' is {resolved.tokenizer!r}; "
                     f"known tokenizers: {list(TOKENIZERS)}")
  if not 0.0 <= resolved.validation_fraction < 1.0:
    raise ValueError("data config field 'validation_fraction' must be in [0, 1), "
                     f"got {resolved.validation_fraction!r}")
  if not isinstance(resolved.prepare_workers, int) or resolved.prepare_workers < 0:
    raise ValueError("data config field 'prepare_workers' must be an int >= 0 (0: one "
                     f"per CPU core), got {resolved.prepare_workers!r}")
  if resolved.reader not in grain_reader.BACKENDS:
    raise ValueError(f"data config field 'reader' is {resolved.reader!r}; expected "
                     f"one of {list(grain_reader.BACKENDS)}")
  if resolved.shard_tokens < 1024:
    raise ValueError("data config field 'shard_tokens' must be at least 1024, got "
                     f"{resolved.shard_tokens!r}")
  return resolved


def dataset_name(cfg: Mapping[str, Any] | None) -> str:
  """The name the runs table gives the data `cfg` names: the TFDS dataset (e.g.
  'c4/en:3.1.0'), the seqio task or mixture, else the source ('embedded', 'files')."""
  cfg = resolve_config(cfg)
  return {"tfds": cfg.tfds.name, "seqio": cfg.seqio.task}.get(cfg.source) or cfg.source


def unset_fields(cfg: Mapping[str, Any] | None) -> list[str]:
  """Fields (relative to the data config) that the chosen source or tokenizer needs
  and that are still empty, e.g. ['files.path'] for a files source with no path."""
  cfg = resolve_config(cfg)
  needed = {"files": "files.path", "tfds": "tfds.name", "seqio": "seqio.task"}
  fields = [needed[cfg.source]] if cfg.source in needed else []
  if cfg.tokenizer == "hf":
    fields.append("hf.path")
  return [f for f in fields if not cfg[f.split(".")[0]][f.split(".")[1]]]


def cache_root(cfg: ml_collections.ConfigDict, cache_dir: str | None) -> pathlib.Path:
  """Where prepared datasets live: the argument, the config, the env, or ~/.cache."""
  chosen = cache_dir or cfg.cache_dir or os.environ.get(CACHE_ENV)
  if not chosen:
    chosen = pathlib.Path.home() / ".cache" / "scaling_jax" / "data"
  return pathlib.Path(chosen).expanduser()


def relevant_fields(cfg: ml_collections.ConfigDict) -> dict:
  """The fields that change a prepared dataset's tokens (not where it is cached)."""
  fields = {"source": cfg.source, "tokenizer": cfg.tokenizer,
            "validation_fraction": cfg.validation_fraction,
            cfg.source: cfg[cfg.source].to_dict()}
  if cfg.tokenizer in cfg:
    fields[cfg.tokenizer] = cfg[cfg.tokenizer].to_dict()
  return fields


def fingerprint(payload: Mapping[str, Any]) -> str:
  """A short stable hash of a JSON-able payload (sorted keys, no whitespace)."""
  text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
  return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
