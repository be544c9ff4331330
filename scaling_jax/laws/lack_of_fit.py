"""Does the law misfit its own design? A residual-pattern F-test.

A bootstrap interval assumes the law's form is right; when it is not, the residuals
are not noise but a pattern in the inputs (Eq. 4's U-shaped misfit in M on the
released testbed, a curvature that Eq. 4 cannot bend to when the truth is Eq. 3).
The test regresses the residuals on smooth terms the law does not have, the
square of each input's centred log (a curvature), projected off the law's own local
directions (its Jacobian), and asks whether they explain more than noise would:

  F = (RSS_0 - RSS_1) / k  /  (RSS_1 / (n - p - k)),

which under the law with Gaussian noise is F(k, n - p - k) distributed (exactly for
a linear law, to first order otherwise). k is cut to leave n - p - k >= 2, and no
test is made below that. A p-value under LACK_OF_FIT_P marks the fit as not
calibrated: its intervals are too narrow by the misfit.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy import stats

LACK_OF_FIT_P = 0.01
_MIN_DENOMINATOR_DF = 2


@dataclasses.dataclass(frozen=True)
class LackOfFit:
  f: float
  df: tuple[int, int]
  p_value: float
  terms: list[str]

  def line(self) -> str:
    return (f"the residuals follow a pattern in {', '.join(self.terms)} that the law "
            f"does not have (F = {self.f:.2g} on {self.df[0]} and {self.df[1]} df, "
            f"p = {self.p_value:.1g}): the law misfits this design, so its intervals "
            f"are too narrow by that misfit; the prediction intervals' extrapolation "
            f"term is the honest reading")


def _terms(x) -> tuple[np.ndarray, list[str]]:
  """Columns [n, k]: the square of the centred log of each positive input (a
  curvature the law lacks)."""
  squares, linear, square_names, linear_names = [], [], [], []
  for name, values in sorted(x.items()):
    values = np.asarray(values, float)
    if np.any(values <= 0) or np.ptp(np.log(values)) == 0:
      continue
    z = np.log(values) - np.log(values).mean()
    squares.append(z**2 - np.mean(z**2))
    linear.append(z)
    square_names.append(f"(log {name})^2")
    linear_names.append(f"log {name}")
  # Only the curvatures: a law's own terms already follow each input's trend, and
  # every extra term costs the test a denominator degree of freedom (power).
  del linear, linear_names
  n = len(np.asarray(next(iter(x.values()))))
  return (np.stack(squares, axis=1) if squares else np.empty((n, 0)), square_names)


def test(y, fitted, jacobian, weights, x) -> LackOfFit | None:
  """The F-test of the module docstring; None when the design leaves no room for it
  or the residuals are exactly zero."""
  y, fitted = np.asarray(y, float), np.asarray(fitted, float)
  sw = np.sqrt(np.asarray(weights, float))
  r = sw * (y - fitted)
  jac = np.asarray(jacobian, float) * sw[:, None]
  u, s, _ = np.linalg.svd(jac, full_matrices=False)
  u = u[:, s > s.max() * 1e-10] if s.size and s.max() > 0 else u[:, :0]
  z, names = _terms(x)
  n, p = len(y), u.shape[1]
  if z.shape[1] == 0:
    return None
  z = sw[:, None] * z
  z = z - u @ (u.T @ z)  # off the law's own directions: those the fit already used
  # Orthonormal in the fixed order (curvatures first); a term the law's directions
  # already hold leaves a zero column and is dropped.
  q, tri = np.linalg.qr(z)
  scale = np.abs(np.diag(tri))
  keep = scale > max(scale.max(), 1e-300) * 1e-6
  q, names = q[:, keep], [nm for nm, k in zip(names, keep) if k]
  k = min(q.shape[1], n - p - _MIN_DENOMINATOR_DF)
  if k < 1:
    return None
  q, names = q[:, :k], names[:k]
  rss0 = float(r @ r)
  if rss0 == 0:
    return None
  explained = float(np.sum((q.T @ r) ** 2))
  df2 = n - p - k
  f = (explained / k) / (max(rss0 - explained, 1e-300) / df2)
  return LackOfFit(f, (k, df2), float(stats.f.sf(f, k, df2)), names)
