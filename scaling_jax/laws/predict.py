"""Predictions with intervals: one law, the (C, M) -> L -> Err chain, and M*, N*, D*.

Point predictions come from the point fit; intervals are percentiles over bootstrap
replicates. In the chain, replicate b of the loss law feeds replicate b of the error
law, so both fits' uncertainty reaches the predicted error.

Predictions, replicates and so intervals are clipped to the law's physical range
(`Law.output_range`: a loss >= 0, an error rate in [0, 1]). Clipping is monotone,
so a clipped interval is the interval of the clipped replicates: an end that
reaches a limit says the data cannot rule out the limit, not that the law predicts
it. The t-corrected intervals of a small design reach such limits often.

Two kinds of interval (README, "Intervals"):
- `mean` (predict, predict_chain): the law's value at a point (the mean over seeds
  of a run there), under the assumption that the law's form is exactly right;
- `prediction` (predict_run_chain): where one run trained there will land: the
  law's replicates widened by the run's own noise and the extrapolation error
  (laws/prediction_interval.py).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms
from scaling_jax.laws import prediction_interval as pi_lib


@dataclasses.dataclass
class Prediction:
  value: np.ndarray  # point prediction [n]
  lo: np.ndarray     # lower end of the interval [n]
  hi: np.ndarray     # upper end [n]
  samples: np.ndarray  # [B, n] bootstrap replicates (NaN where invalid)


@functools.partial(jax.jit, static_argnames="law")
def _over_params(law, params, x):
  return jax.vmap(lambda p: law(p, x))(params)


def law_samples(law: forms.Law, params, x) -> np.ndarray:
  """law evaluated at x for each row of params [B, P] -> [B, n]."""
  with jax.enable_x64(True):
    return np.asarray(_over_params(law, jnp.asarray(params), fit_lib.as_inputs(x)))


def _clip(law: forms.Law, values):
  return np.clip(values, *law.output_range)


def predict(result: fit_lib.FitResult, boot: bootstrap_lib.BootstrapResult,
            x: Mapping[str, np.ndarray], level: float = 0.95) -> Prediction:
  samples = _clip(result.law, law_samples(result.law, boot.params, x))
  lo, hi = bootstrap_lib.interval(samples, level)
  return Prediction(_clip(result.law, result.predict(x)), lo, hi, samples)


def predict_chain(loss_fit: fit_lib.FitResult, loss_boot: bootstrap_lib.BootstrapResult,
                  err_fit: fit_lib.FitResult, err_boot: bootstrap_lib.BootstrapResult,
                  x: Mapping[str, np.ndarray], level: float = 0.95):
  """(loss, error) predictions for inputs x of the loss law, through Err(L)."""
  loss = predict(loss_fit, loss_boot, x, level)
  if len(loss_boot.params) != len(err_boot.params):
    raise ValueError("chained intervals pair replicate b of each law: bootstrap both "
                     "with the same number of resamples")
  err_samples = _clip(err_fit.law, _chain_samples(err_fit.law, err_boot.params,
                                                  loss.samples))
  lo, hi = bootstrap_lib.interval(err_samples, level)
  err = Prediction(_clip(err_fit.law, err_fit.predict({"L": loss.value})), lo, hi,
                   err_samples)
  return loss, err


@functools.partial(jax.jit, static_argnames="err_law")
def _over_pairs(err_law, err_params, loss_samples):
  return jax.vmap(lambda p, l: err_law(p, {"L": l}))(err_params, loss_samples)


def _chain_samples(err_law: forms.Law, err_params, loss_samples) -> np.ndarray:
  with jax.enable_x64(True):
    return np.asarray(_over_pairs(err_law, jnp.asarray(err_params),
                                  jnp.asarray(loss_samples, jnp.float64)))


@dataclasses.dataclass(frozen=True)
class RunSpread:
  """What a `prediction` interval adds to a law's replicates (prediction_interval.py)."""
  noise: pi_lib.RunNoise       # the run-level noise scale
  decades: np.ndarray | None   # [n] extrapolation distance (loss law only)
  growth: float = 0.0          # extrapolation error per decade


def predict_run_chain(loss_fit: fit_lib.FitResult, loss_boot: bootstrap_lib.BootstrapResult,
                      loss_spread: RunSpread, err_fit: fit_lib.FitResult | None,
                      err_boot: bootstrap_lib.BootstrapResult | None,
                      err_spread: RunSpread | None, x: Mapping[str, np.ndarray],
                      level: float = 0.95, seed: int = 0):
  """`prediction` intervals of (loss, error) for one run at each of inputs x.

  Replicate b of the loss law, widened by a draw of the run's noise and the
  extrapolation error, is the loss of one run there; replicate b of the error law
  at that loss, widened by the error's own run noise, is its error. `err_fit` None:
  the loss alone (error None).
  """
  rng = np.random.default_rng([seed, 0x5052])  # 'PR': apart from the bootstrap's streams
  mean = law_samples(loss_fit.law, loss_boot.params, x)
  decades = (np.zeros(mean.shape[1]) if loss_spread.decades is None
             else loss_spread.decades)
  runs = _clip(loss_fit.law, pi_lib.spread_loss(mean, loss_spread.noise, decades,
                                                loss_spread.growth, rng))
  lo, hi = bootstrap_lib.interval(runs, level)
  loss = Prediction(_clip(loss_fit.law, loss_fit.predict(x)), lo, hi, runs)
  if err_fit is None:
    return loss, None
  if len(loss_boot.params) != len(err_boot.params):
    raise ValueError("chained intervals pair replicate b of each law: bootstrap both "
                     "with the same number of resamples")
  err_runs = _clip(err_fit.law, pi_lib.spread_error(
      _chain_samples(err_fit.law, err_boot.params, runs), err_spread.noise, rng))
  lo, hi = bootstrap_lib.interval(err_runs, level)
  err = Prediction(_clip(err_fit.law, err_fit.predict({"L": loss.value})), lo, hi,
                   err_runs)
  return loss, err


@dataclasses.dataclass
class ComputeOptimal:
  multiplier: tuple[float, float, float]  # (point, lo, hi) for M*
  params: tuple[float, float, float]      # N* for the budget
  tokens: tuple[float, float, float]      # D* for the budget
  flops: float


ALLOCATIONS = {forms.OVERTRAINING: forms.compute_optimal_allocation,
               forms.CHINCHILLA: forms.chinchilla_allocation}


def compute_optimal(loss_fit: fit_lib.FitResult, loss_boot: bootstrap_lib.BootstrapResult,
                    flops: float, level: float = 0.95) -> ComputeOptimal:
  """M* and the N*, D* it implies for a budget, with intervals (see allocation)."""
  return allocation(loss_fit.law, loss_fit.params, loss_boot.params, flops, level)


def allocation(law: forms.Law, params, replicate_params, flops: float,
               level: float = 0.95) -> ComputeOptimal:
  """(M*, N*, D*) for a FLOP budget from a loss law's point params [P] and its
  bootstrap replicates [B, P] (invalid ones NaN): the intervals are the replicates'.

  Eq. 4: M* = (b/a)^(1/(2 eta)) (its alpha = beta makes M* one constant for every
  budget); Eq. 3: N* = G (C/6)^(beta/(alpha+beta)), so M* moves with C unless
  alpha = beta.
  """
  if law not in ALLOCATIONS:
    raise ValueError(f"compute-optimal allocation needs Eq. 3 or Eq. 4, not {law.name}")
  with jax.enable_x64(True):
    point = [float(v) for v in ALLOCATIONS[law](jnp.asarray(params, jnp.float64), flops)]
    samples = [np.asarray(v) for v in ALLOCATIONS[law](
        jnp.asarray(replicate_params, jnp.float64), flops)]
  triples = []
  for value, sample in zip(point, samples):
    lo, hi = bootstrap_lib.interval(sample, level)
    triples.append((value, float(lo), float(hi)))
  return ComputeOptimal(*triples, flops=flops)
