"""Flags for fitted laws that contradict the premise they were fitted under.

A least-squares optimum need not be a scaling law: with few or noisy points the best
coefficients can make loss rise with compute, or the exponent run off. The fit still
stands (it is the optimum asked for); `premise_warnings` says in sentences what a
reader should distrust before extrapolating with it.
"""
from __future__ import annotations

import numpy as np

from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms

# Sane exponents for loss against compute, parameters, tokens or X: (0, 1). At or below
# 0 the reducible term does not shrink with scale at all. At or above 1 it shrinks
# at least as fast as 1/scale (doubling compute halves it or better), faster than any
# published language-model fit: Kaplan et al. find ~0.05-0.1, Chinchilla's alpha and
# beta are ~0.3, Gadre et al.'s eta ~0.12-0.14. So (0, 1) flags runaway exponents
# without ever flagging a fit in the literature's range.
EXPONENT_RANGE = (0.0, 1.0)

# Each loss law: its reducible terms' coefficients with the input they shrink in,
# and its exponents.
_LOSS_LAWS = {
    forms.OVERTRAINING.name: (
        {"a": "compute C (the a M^eta C^-eta term)",
         "b": "compute C (the b M^-eta C^-eta term)"}, ("eta",)),
    forms.CHINCHILLA.name: (
        {"A": "parameters N, and so with compute", "B": "tokens D, and so with compute"},
        ("alpha", "beta")),
    forms.POWER.name: ({"A": "X (compute or whatever X scales)"}, ("alpha",)),
}


def _fmt(value: float) -> str:
  return f"{value:.4g}"


def _non_finite(params: dict[str, float]) -> list[str]:
  return [f"{name} is not a finite number ({value}): the fit gives no usable law"
          for name, value in params.items() if not np.isfinite(value)]


def _loss_warnings(law: forms.Law, p: dict[str, float]) -> list[str]:
  coefficients, exponents = _LOSS_LAWS[law.name]
  out = []
  for name, shrinks_in in coefficients.items():
    if p[name] <= 0:
      out.append(f"{name} = {_fmt(p[name])} <= 0: the loss law's {name} term does not "
                 f"fall with {shrinks_in}, so the fitted loss does not decrease as "
                 f"compute grows, against the premise of a scaling law")
  lo, hi = EXPONENT_RANGE
  for name in exponents:
    if not lo < p[name] < hi:
      effect = ("the reducible loss would not fall with scale" if p[name] <= lo else
                "the reducible loss would fall at least as fast as 1/scale")
      out.append(f"exponent {name} = {_fmt(p[name])} lies outside ({lo:g}, {hi:g}): "
                 f"{effect}, which no language-model fit has shown; extrapolations "
                 f"from it are not to be trusted")
  if p["E"] < 0:
    out.append(f"E = {_fmt(p['E'])} < 0: the irreducible loss is negative, but a loss "
               f"(cross-entropy) cannot be, so the fit's floor is unphysical")
  return out


def _downstream_warnings(p: dict[str, float]) -> list[str]:
  out = []
  for name in ("k", "gamma"):
    if p[name] <= 0:
      out.append(f"{name} = {_fmt(p[name])} <= 0: Err(L) = eps - k exp(-gamma L) then "
                 f"does not fall as loss falls (dErr/dL = k gamma exp(-gamma L) must be "
                 f"> 0), so lower loss would not mean lower error")
  if not 0 < p["eps"] <= 1:
    out.append(f"eps = {_fmt(p['eps'])} lies outside (0, 1]: eps is the error the law "
               f"approaches at high loss (chance level), and an error rate lies in "
               f"(0, 1]")
  return out


def premise_warnings(result: fit_lib.FitResult) -> list[str]:
  """Sentences, one per contradiction of the law's premise; [] for a sane fit."""
  params = result.named_params
  bad = _non_finite(params)
  if bad:
    return bad  # every comparison below would be meaningless
  if result.law.name in _LOSS_LAWS:
    return _loss_warnings(result.law, params)
  if result.law.name == forms.DOWNSTREAM.name:
    return _downstream_warnings(params)
  return []
