"""Training batches in step order, prefetched by grain when it is installed.

  reader = data.BatchReader(ds, 'train', seq_len=..., global_batch=..., seed=...,
                            process_index=jax.process_index(),
                            process_count=jax.process_count())
  for tokens in grain_reader.batch_iterator(reader, start_step=step): ...

The batches are exactly BatchReader.batch(step), step after step: the window order
is its keyed permutation, a pure function of (seed, step), and each process reads
its own rows of the global batch, so a run resumes at any step and its data does not
depend on whether grain is installed. grain (`pip install 'scaling_jax[grain]'`)
adds the pipeline: `threads` threads read the next batches from the memory-mapped
shards into a buffer of `prefetch` batches while the accelerator trains. Without it
(the GPU images have none) the iterator reads each batch when asked, as
BatchReader always has.

The prepared data stays the token-stream .npy shards of packing.py rather than
ArrayRecord: they are random access through mmap with numpy alone, so the same
files serve grain and the fallback, and any seq_len reads them (windows are cut
when read, not when prepared).
"""
from __future__ import annotations

import importlib.util
from typing import Iterator

import numpy as np

BACKENDS = ("auto", "grain", "numpy")
# Past any run's length: the end of an unbounded (allow_repeat) iteration.
_UNBOUNDED_STEPS = 1 << 62


def has_grain() -> bool:
  return importlib.util.find_spec("grain") is not None


def _stop(reader, stop_step: int | None) -> int:
  if stop_step is not None:
    return stop_step
  return _UNBOUNDED_STEPS if reader.allow_repeat else reader.max_steps


def _grain_batches(reader, start: int, stop: int, threads: int,
                   prefetch: int) -> Iterator[np.ndarray]:
  import grain  # pylint: disable=g-import-not-at-top
  steps = grain.MapDataset.range(start, stop).map(reader.batch)
  options = grain.ReadOptions(num_threads=threads, prefetch_buffer_size=prefetch)
  return iter(steps.to_iter_dataset(options))


def batch_iterator(reader, start_step: int = 0, stop_step: int | None = None, *,
                   backend: str = "auto", threads: int = 2,
                   prefetch: int = 4) -> Iterator[np.ndarray]:
  """reader.batch(step) for step in [start_step, stop_step), in order.

  stop_step defaults to the end of the split's first epoch (without repeats) or
  never (`allow_repeat`). backend 'auto' takes grain when it is installed, 'numpy'
  never does, 'grain' requires it.
  """
  if backend not in BACKENDS:
    raise ValueError(f"backend is {backend!r}; expected one of {list(BACKENDS)}")
  if backend == "grain" and not has_grain():
    raise ImportError("backend='grain' needs the 'grain' package, which is not "
                      "installed; fix: pip install 'scaling_jax[grain]', or use "
                      "backend='auto' to read without it")
  if threads < 0 or prefetch < 0:
    raise ValueError(f"threads and prefetch must be >= 0, got {threads}, {prefetch}")
  stop = _stop(reader, stop_step)
  if backend != "numpy" and has_grain():
    return _grain_batches(reader, start_step, stop, threads, prefetch)
  return (reader.batch(step) for step in range(start_step, stop))
