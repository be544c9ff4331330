"""The leave-future-out backtest of a curve fit: fit the smaller sizes, predict the larger.

The final-point study's backtest (laws/backtest.py) refits below each compute
cutoff. A curve fit's checkpoints span compute within every run, so here the
cutoffs are model sizes, as the curve-fitting guide (Choshen et al. 2024) predicts
a larger model from smaller ones: at each size that leaves the runs at or below it
able to determine Eq. 3 (three sizes, three token counts, a residual degree of
freedom), Eq. 3 is refitted on those runs' checkpoints (the fit's own cut, weights
and objective) and predicts the final checkpoint of every larger fit run. One row
per (cutoff, run): a run's later checkpoints would repeat its error.

Its growth per decade feeds the curve fit's prediction intervals under
config.study.extrapolation='backtest', as it does the final-point study's.
"""
from __future__ import annotations

import numpy as np

from scaling_jax.laws import backtest as backtest_lib
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import prediction_interval as pi_lib

MIN_SIZES = 3  # E + A N^-alpha takes one value per size
MIN_LENGTHS = 3  # B D^-beta one per token count
# A table of dense sizes (70 in the README's published-table recipe) would give a
# cutoff at nearly every one; eight, evenly spread over the usable ones and always
# including the largest (the longest extrapolations' source), say as much for a
# fixed cost: the eight refits are one solve, compiled once per design size.
MAX_CUTOFFS = 8


def size_cutoffs(result: fit_lib.FitResult) -> list[np.ndarray]:
  """Fit masks [n] bool, one per usable size cutoff, smallest first."""
  n, d = np.asarray(result.x["N"]), np.asarray(result.x["D"])
  masks = []
  for size in np.unique(n)[:-1]:
    mask = n <= size * (1 + 1e-9)
    if (len(np.unique(n[mask])) >= MIN_SIZES and len(np.unique(d[mask])) >= MIN_LENGTHS
        and mask.sum() >= result.law.num_params + backtest_lib.MIN_REFIT_DF):
      masks.append(mask)
  if len(masks) > MAX_CUTOFFS:
    keep = np.unique(np.round(np.linspace(0, len(masks) - 1, MAX_CUTOFFS)).astype(int))
    masks = [masks[i] for i in keep]
  return masks


def final_checkpoints(names, tokens) -> np.ndarray:
  """[n] bool: each run's last point (the most tokens) of the fit's design."""
  names, tokens = np.asarray(names), np.asarray(tokens, float)
  last = {}
  for i, (name, t) in enumerate(zip(names, tokens)):
    if name not in last or t > tokens[last[name]]:
      last[name] = i
  scored = np.zeros(len(names), bool)
  scored[list(last.values())] = True
  return scored


def backtest(result: fit_lib.FitResult, names, run_noise: float) -> backtest_lib.Backtest:
  """The backtest of `result` (Eq. 3 on checkpoints whose runs are `names`)."""
  masks = size_cutoffs(result)
  if not masks:
    sizes = len(np.unique(result.x["N"]))
    return backtest_lib.no_backtest(
        pi_lib.LOSS_PRIOR, f"the fit runs' {sizes} sizes are too few to refit below "
                           f"one of them: it takes {MIN_SIZES} sizes and "
                           f"{MIN_LENGTHS} token counts below a larger size")
  return backtest_lib.leave_future_out(
      result, list(names), run_noise, pi_lib.LOSS_PRIOR, batch=MAX_CUTOFFS, masks=masks,
      scored=final_checkpoints(names, result.x["D"]))
