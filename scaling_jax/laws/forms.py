"""Scaling-law forms as pure jnp functions.

Every law here is *separable*: y = Phi(theta, x) @ c, where theta are the few
parameters that enter non-linearly (exponents) and c enter linearly (the
irreducible term and the coefficients). The fitter exploits this (variable
projection: for a fixed theta the best c is a small linear least-squares problem),
and everything else just calls `law(params, x)`.

Parameters are flat vectors ordered as `law.param_names`; inputs `x` are dicts of
arrays keyed by `law.inputs`.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import jax.numpy as jnp


_INF = float("inf")


@dataclasses.dataclass(frozen=True, eq=False)
class Law:
  """A separable scaling law. Instances are hashable (by identity): jit keys on them."""
  name: str
  formula: str
  inputs: tuple[str, ...]
  linear: tuple[str, ...]     # names of c, in the column order of `basis`
  nonlinear: tuple[str, ...]  # names of theta
  param_names: tuple[str, ...]  # the public order of the flat parameter vector
  basis: Callable             # basis(theta, x) -> [..., len(linear)] columns
  # Inputs the basis takes logs or powers of: a value <= 0 has no finite basis.
  positive_inputs: tuple[str, ...] = ()
  # The physical range of the output (a loss is >= 0, an error rate in [0, 1]):
  # predictions and their intervals are clipped to it.
  output_range: tuple[float, float] = (-float("inf"), float("inf"))
  # (name, lo, hi) ranges a fit may be held to (FitSettings(bounds="physical")):
  # irreducible terms and coefficients >= 0, exponents in a plausible range.
  physical_bounds: tuple[tuple[str, float, float], ...] = ()

  @property
  def num_params(self) -> int:
    return len(self.param_names)

  def split(self, params):
    """Flat params [..., P] -> (theta [..., T], c [..., K])."""
    index = {n: i for i, n in enumerate(self.param_names)}
    theta = jnp.stack([params[..., index[n]] for n in self.nonlinear], axis=-1)
    coef = jnp.stack([params[..., index[n]] for n in self.linear], axis=-1)
    return theta, coef

  def join(self, theta, coef):
    """(theta [..., T], c [..., K]) -> flat params [..., P] in `param_names` order."""
    by_name = {n: theta[..., i] for i, n in enumerate(self.nonlinear)}
    by_name.update({n: coef[..., i] for i, n in enumerate(self.linear)})
    return jnp.stack([by_name[n] for n in self.param_names], axis=-1)

  def __call__(self, params, x: Mapping[str, jnp.ndarray]):
    """Evaluates the law at inputs x (each [n]) for params [P] -> [n]."""
    theta, coef = self.split(params)
    return self.basis(theta, x) @ coef

  def as_dict(self, params) -> dict[str, float]:
    return {n: float(params[i]) for i, n in enumerate(self.param_names)}


def _pow(base, exponent):
  # exp/log form keeps huge bases (C ~ 1e23 FLOPs) finite for any sane exponent.
  return jnp.exp(exponent * jnp.log(base))


def _overtraining_basis(theta, x):
  eta = theta[0]
  log_c, log_m = jnp.log(x["C"]), jnp.log(x["M"])
  return jnp.stack([jnp.ones_like(log_c),
                    jnp.exp(eta * (log_m - log_c)),
                    jnp.exp(-eta * (log_m + log_c))], axis=-1)


def _chinchilla_basis(theta, x):
  alpha, beta = theta[0], theta[1]
  return jnp.stack([jnp.ones_like(x["N"]), _pow(x["N"], -alpha),
                    _pow(x["D"], -beta)], axis=-1)


def _downstream_basis(theta, x):
  gamma = theta[0]
  return jnp.stack([jnp.ones_like(x["L"]), -jnp.exp(-gamma * x["L"])], axis=-1)


def _power_basis(theta, x):
  return jnp.stack([jnp.ones_like(x["X"]), _pow(x["X"], -theta[0])], axis=-1)


# Eq. 4 of Gadre et al. 2024: loss from compute C = 6ND and token multiplier M = D/N.
OVERTRAINING = Law(
    name="overtraining", formula="L(C, M) = E + (a M^eta + b M^-eta) C^-eta",
    inputs=("C", "M"), linear=("E", "a", "b"), nonlinear=("eta",),
    param_names=("E", "a", "b", "eta"), basis=_overtraining_basis,
    positive_inputs=("C", "M"), output_range=(0.0, _INF),
    physical_bounds=(("E", 0.0, _INF), ("a", 0.0, _INF), ("b", 0.0, _INF),
                     ("eta", 0.0, 1.0)))

# Eq. 3 (Chinchilla): loss from parameters N and tokens D.
CHINCHILLA = Law(
    name="chinchilla", formula="L(N, D) = E + A N^-alpha + B D^-beta",
    inputs=("N", "D"), linear=("E", "A", "B"), nonlinear=("alpha", "beta"),
    param_names=("E", "A", "B", "alpha", "beta"), basis=_chinchilla_basis,
    positive_inputs=("N", "D"), output_range=(0.0, _INF),
    physical_bounds=(("E", 0.0, _INF), ("A", 0.0, _INF), ("B", 0.0, _INF),
                     ("alpha", 0.0, 2.0), ("beta", 0.0, 2.0)))

# Eq. 5: average top-1 error from loss.
DOWNSTREAM = Law(
    name="downstream", formula="Err(L) = eps - k exp(-gamma L)",
    inputs=("L",), linear=("eps", "k"), nonlinear=("gamma",),
    param_names=("eps", "k", "gamma"), basis=_downstream_basis,
    output_range=(0.0, 1.0),
    physical_bounds=(("eps", 0.0, 1.0), ("k", 0.0, _INF), ("gamma", 0.0, 10.0)))

# A plain power law with an irreducible term.
POWER = Law(
    name="power", formula="y(X) = E + A X^-alpha",
    inputs=("X",), linear=("E", "A"), nonlinear=("alpha",),
    param_names=("E", "A", "alpha"), basis=_power_basis,
    positive_inputs=("X",),
    physical_bounds=(("E", 0.0, _INF), ("A", 0.0, _INF), ("alpha", 0.0, 3.0)))

LAWS = {law.name: law for law in (OVERTRAINING, CHINCHILLA, DOWNSTREAM, POWER)}


def get_law(name: str) -> Law:
  if name not in LAWS:
    raise ValueError(f"unknown law {name!r}; known laws: {sorted(LAWS)}")
  return LAWS[name]


def compute_optimal_multiplier(params):
  """M* = (b/a)^(1/(2 eta)) for Eq. 4 params [..., 4] (E, a, b, eta)."""
  _, a, b, eta = (params[..., i] for i in range(4))
  return jnp.exp(jnp.log(b / a) / (2.0 * eta))


def compute_optimal_allocation(params, flops):
  """(M*, N*, D*) for a FLOP budget: N* = sqrt(C / (6 M*)), D* = sqrt(C M* / 6)."""
  m_star = compute_optimal_multiplier(params)
  return m_star, jnp.sqrt(flops / (6.0 * m_star)), jnp.sqrt(flops * m_star / 6.0)


def chinchilla_allocation(params, flops):
  """(M*, N*, D*) of Eq. 3 params [..., 5] (E, A, B, alpha, beta) for a budget C = 6 N D.

  Minimising E + A N^-alpha + B D^-beta along 6 N D = C balances the two terms'
  slopes, alpha A N^-alpha = beta B D^-beta, so N* = G (C/6)^(beta/(alpha+beta))
  with G = (alpha A / (beta B))^(1/(alpha+beta)), and D* = C / (6 N*).
  """
  _, a, b, alpha, beta = (params[..., i] for i in range(5))
  total = alpha + beta
  n_star = jnp.exp((jnp.log(alpha * a / (beta * b)) + beta * jnp.log(flops / 6.0)) / total)
  d_star = flops / (6.0 * n_star)
  return d_star / n_star, n_star, d_star
