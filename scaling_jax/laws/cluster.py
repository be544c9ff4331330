"""Fits on training curves: a cluster bootstrap over runs, and borrowed parameters.

Checkpoints of one run share its data order, initialisation and schedule, so they
are not independent draws: the bootstrap here resamples whole clusters (a run and
its seeds) with replacement, as integer weights on their checkpoints, and refits
every resample in one `fit.solve_many` call.

Borrowed parameters (Choshen et al. 2024): a family's exponents (and optionally E)
are fixed to another fit's values, which leaves a linear least-squares problem for
the rest; replicate b of the donor's bootstrap is used with resample b of this
family's clusters, so the borrowed values' uncertainty reaches the intervals.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms
from scaling_jax.laws import linear


@dataclasses.dataclass
class Replicates:
  """Bootstrap replicates of one law's parameters."""
  params: np.ndarray  # [B, P]; NaN rows where a resample cannot identify the law
  valid: np.ndarray   # [B] bool
  method: str

  @property
  def num_valid(self) -> int:
    return int(self.valid.sum())


def cluster_weights(clusters, num_resamples: int, seed: int) -> np.ndarray:
  """[B, n] integer weights: each point weighted by how often its cluster was drawn."""
  names, index = np.unique(np.asarray(clusters), return_inverse=True)
  rng = np.random.default_rng(seed)
  draws = rng.integers(0, len(names), size=(num_resamples, len(names)))
  counts = np.stack([np.bincount(d, minlength=len(names)) for d in draws])
  return counts[:, index].astype(np.float64)


# A term c X^-e of one input, with the constant beside it, needs three distinct
# values of X to pin (constant, c, e) down.
MIN_DISTINCT = 3


def _identifiable(law: forms.Law, x, weights) -> np.ndarray:
  """[B] bool: every input takes MIN_DISTINCT or more values among weighted points."""
  ok = np.ones(len(weights), bool)
  for name in law.inputs:
    values = np.asarray(x[name])
    for b, w in enumerate(weights):
      if len(np.unique(values[w > 0])) < MIN_DISTINCT:
        ok[b] = False
  return ok


def cluster_bootstrap(result: fit_lib.FitResult, clusters, *, num_resamples: int,
                      seed: int = 0, starts=None) -> Replicates:
  """Refits `result`'s data on cluster resamples (weights x the fit's own weights).

  Each resample starts from the full-data optimum (a resample perturbs the data, so
  its optimum lies near), plus any `starts` given: one problem per resample instead
  of the grid's sixteen for Eq. 3.
  """
  if not isinstance(num_resamples, int) or num_resamples < 2:
    raise ValueError(f"num_resamples must be an integer >= 2, got {num_resamples!r}")
  weights = cluster_weights(clusters, num_resamples, seed) * result.weights[None]
  ys = np.broadcast_to(result.y, weights.shape)
  warm = result.params[None] if starts is None else np.concatenate(
      [result.params[None], np.asarray(starts, np.float64)])
  many = fit_lib.solve_many(result.law, result.x, ys, weights, starts=warm,
                            settings=result.settings)
  valid = np.isfinite(many.objective) & _identifiable(result.law, result.x, weights)
  params = np.where(valid[:, None], many.params, np.nan)
  return Replicates(params=params, valid=valid, method="cluster")


@jax.jit
def _solve_fixed(basis, ys, ws):
  return linear.solve_linear(basis, ys, ws)


def fixed_fit(law: forms.Law, fixed: dict[str, np.ndarray], x, ys, ws) -> np.ndarray:
  """Parameters [B, P] of `law` with every exponent (and optionally E) fixed.

  `fixed` maps parameter names to values [B] (one per data set in ys, ws [B, n]);
  it must hold all of law.nonlinear, and may hold linear ones (e.g. 'E'), which
  are subtracted from y before the remaining coefficients are solved for.
  """
  missing = [n for n in law.nonlinear if n not in fixed]
  if missing:
    raise ValueError(f"borrowing fixes every exponent of {law.formula}; missing "
                     f"{missing} (fixing some exponents alone is not supported)")
  unknown = [n for n in fixed if n not in law.param_names]
  if unknown:
    raise ValueError(f"{law.formula} has no parameter(s) {unknown}")
  ys, ws = np.asarray(ys, np.float64), np.asarray(ws, np.float64)
  batch = ys.shape[0]
  value = {n: np.broadcast_to(np.asarray(v, np.float64), (batch,)) for n, v in fixed.items()}
  theta = np.stack([value[n] for n in law.nonlinear], axis=-1)
  with jax.enable_x64(True):
    xs = fit_lib.as_inputs(x)
    basis = np.asarray(jax.vmap(lambda t: law.basis(t, xs))(jnp.asarray(theta)))
    free = [i for i, n in enumerate(law.linear) if n not in value]
    offset = sum(basis[..., i] * value[n][:, None]
                 for i, n in enumerate(law.linear) if n in value)
    coef_free = np.asarray(_solve_fixed(jnp.asarray(basis[..., free]),
                                        jnp.asarray(ys - offset), jnp.asarray(ws)))
  coef = np.zeros((batch, len(law.linear)))
  coef[:, free] = coef_free
  for i, n in enumerate(law.linear):
    if n in value:
      coef[:, i] = value[n]
  return np.asarray(law.join(jnp.asarray(theta), jnp.asarray(coef)))
