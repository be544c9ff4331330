"""Whether the model's loops (the layer scan, blockwise attention's key-block scan)
are traced unrolled.

XLA's cost analysis counts a loop body once whatever its trip count, so the compile
dry run (scaling_jax/aot) counts a step's costs on unrolled copies of the model,
traced inside `unrolled_loops()`; training never unrolls.
"""
from __future__ import annotations

import contextlib
import contextvars

import jax

_UNROLL_LOOPS = contextvars.ContextVar("unroll_loops", default=False)


@contextlib.contextmanager
def unrolled_loops():
  """Traces inside this block unroll the model's scans (same values, no loops).

  jax caches traces by function and input shapes, not by this context, so a trace
  made outside was reused inside (the dry run's count then saw a loop body once:
  0.86 instead of 1.12 of 6N'+12LTD for the paper's 11M): caches are cleared on
  entry and exit."""
  jax.clear_caches()
  token = _UNROLL_LOOPS.set(True)
  try:
    yield
  finally:
    _UNROLL_LOOPS.reset(token)
    jax.clear_caches()


def unrolling() -> bool:
  """Whether the current trace is inside `unrolled_loops()`."""
  return _UNROLL_LOOPS.get()


def scan_unroll() -> bool | int:
  """`jax.lax.scan`'s unroll argument for the model's loops."""
  return True if unrolling() else 1
