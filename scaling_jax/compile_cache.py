"""JAX's persistent compilation cache, so units of one shape compile their step once.

A sweep's units share `<sweep workdir>/.jax_cache` (launch/units.py writes it into
each unit's `config.train.compilation_cache_dir`): the second unit of a shape reads
its compiled programs from disk instead of compiling them. Keys are JAX's: the
program text (constants included), devices and compile options, so only an
identical program is reused, and the results are those of a fresh compile.
"""
from __future__ import annotations

import os

import jax
from jax.experimental.compilation_cache import compilation_cache as jax_cache


def configure(train_config) -> str | None:
  """Points JAX's persistent cache at this run's directory; returns it (None: off).

  `train_config.compilation_cache` False turns the cache off for this run; an
  empty `compilation_cache_dir` (a run started outside a sweep) leaves JAX's own
  settings (e.g. JAX_COMPILATION_CACHE_DIR) alone.
  """
  directory = None
  if train_config.compilation_cache:
    if not train_config.compilation_cache_dir:
      return jax.config.jax_compilation_cache_dir
    directory = os.path.abspath(train_config.compilation_cache_dir)
    os.makedirs(directory, exist_ok=True)
  if jax.config.jax_compilation_cache_dir != directory:
    # JAX opens its cache once per process, at the first compile: a process that
    # trains units of several sweeps (inline runs, tests) must reopen it.
    jax_cache.reset_cache()
    jax.config.update("jax_compilation_cache_dir", directory)
  # JAX's defaults skip programs that compile in under a second: most of a tiny
  # CPU model's, whose start-up is then mostly compiling.
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
  return directory
