"""Predictions with intervals: one law, the (C, M) -> L -> Err chain, and M*, N*, D*.

Point predictions come from the point fit; intervals are percentiles over bootstrap
replicates. In the chain, replicate b of the loss law feeds replicate b of the error
law, so both fits' uncertainty reaches the predicted error.

Predictions, replicates and so intervals are clipped to the law's physical range
(`Law.output_range`: a loss >= 0, an error rate in [0, 1]). Clipping is monotone,
so a clipped interval is the interval of the clipped replicates: an end that
reaches a limit says the data cannot rule out the limit, not that the law predicts
it. The t-corrected intervals of a small design reach such limits often.

An interval is for the law's value at a point (the mean over seeds of a run
there), not for one run's measured value, which adds its own noise: comparing a
measured target with it, a miss rate above 5% can come from that noise as well.
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


@dataclasses.dataclass
class ComputeOptimal:
  multiplier: tuple[float, float, float]  # (point, lo, hi) for M*
  params: tuple[float, float, float]      # N* for the budget
  tokens: tuple[float, float, float]      # D* for the budget
  flops: float


def compute_optimal(loss_fit: fit_lib.FitResult, loss_boot: bootstrap_lib.BootstrapResult,
                    flops: float, level: float = 0.95) -> ComputeOptimal:
  """M* = (b/a)^(1/(2 eta)) and the N*, D* it implies for a budget, with intervals."""
  if loss_fit.law is not forms.OVERTRAINING:
    raise ValueError("compute-optimal allocation needs the Eq. 4 (overtraining) law")
  with jax.enable_x64(True):
    point = [float(v) for v in forms.compute_optimal_allocation(
        jnp.asarray(loss_fit.params), flops)]
    samples = [np.asarray(v) for v in forms.compute_optimal_allocation(
        jnp.asarray(loss_boot.params), flops)]
  triples = []
  for value, sample in zip(point, samples):
    lo, hi = bootstrap_lib.interval(sample, level)
    triples.append((value, float(lo), float(hi)))
  return ComputeOptimal(*triples, flops=flops)
