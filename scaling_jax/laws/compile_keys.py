"""What the solver is compiled for, chosen so that nearby fits share one program.

fit.solve_many's solver compiles once per law, settings and input shape, for
seconds each. Padding points and data sets to a few sizes (`padded`), and keying
bounds by which parameters are bounded rather than by their values
(`bound_pattern`), lets the advisor's growing designs, a backtest's cutoffs and a
suite of studies reuse what is already compiled. Neither changes a fit.
"""
from __future__ import annotations

import dataclasses

import numpy as np


def padded_size(k: int) -> int:
  """The size `k` points or data sets are padded to: a power of two up to 64, then a
  multiple of 64 (at most 2x the work for small k, under 1.07x above 64)."""
  if k <= 1:
    return k
  if k <= 64:
    return 1 << (k - 1).bit_length()
  return -(-k // 64) * 64


def padded(x, ys, ws):
  """(x, ys, ws) padded to padded_size points and data sets.

  The solver compiles once per shape, for seconds; padding lets fits of nearby sizes
  (the advisor adding one run at a time, a backtest's cutoffs, a suite of studies)
  share one compiled program. Padded points repeat the last point's inputs (so the
  law stays finite there) and weigh zero: every residual the solvers see is scaled by
  sqrt(w), so they change nothing. Padded data sets repeat the last and are dropped.
  """
  extra_sets = padded_size(ys.shape[0]) - ys.shape[0]
  extra_points = padded_size(ys.shape[1]) - ys.shape[1]
  x = {k: np.pad(np.asarray(v, np.float64), (0, extra_points), mode="edge")
       for k, v in x.items()}
  ys = np.pad(ys, ((0, extra_sets), (0, extra_points)), mode="edge")
  ws = np.pad(np.pad(ws, ((0, 0), (0, extra_points))), ((0, extra_sets), (0, 0)),
              mode="edge")
  return x, ys, ws


def bound_pattern(law, settings, lo, hi):
  """`settings` with bounds reduced to which are finite (lo, hi [P]: the bounds as
  fit.param_bounds gives them). The values reach the solver as arrays, so bounds
  differing in value only share one compiled solver."""
  pattern = tuple((n, 0.0 if np.isfinite(low) else -np.inf, 1.0 if np.isfinite(high) else np.inf)
                  for n, low, high in zip(law.param_names, lo, hi)
                  if np.isfinite(low) or np.isfinite(high))
  return dataclasses.replace(settings, bounds=pattern or "none")
