"""Profile-likelihood intervals for a law's exponent.

For a law with one non-linear parameter theta (Eq. 4's eta, Eq. 5's gamma, the
power law's alpha), the other parameters enter linearly, so the profile
RSS(theta) = min over the linear ones is an exact small least-squares solve per
theta: no optimiser, no bootstrap. The interval is where the profile stays below

  RSS_min (1 + F_{1, df}(level) / df)   noise estimated from the residuals (df = n - p),
  RSS_min + sigma^2 chi2_1(level)       noise scale sigma known,

which is exact for a linear model and close for a mildly non-linear one. A side on
which the profile never rises that high within 1000x of the estimate is unbounded
(-inf or inf): the data cannot rule those values out.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import linear
from scaling_jax.laws import noise as noise_lib

_GRID_POINTS = 4001
_GRID_SPAN = 1e3  # theta from estimate / span to estimate * span


def profile_rss(result: fit_lib.FitResult, thetas) -> np.ndarray:
  """Weighted RSS minimised over the linear parameters, at each theta [G]."""
  law = result.law
  with jax.enable_x64(True):
    x, y, w = fit_lib.as_inputs(result.x), jnp.asarray(result.y), jnp.asarray(result.weights)

    def rss(theta):
      phi = law.basis(theta[None], x)
      coef = linear.solve_linear(phi, y, w)
      return jnp.sum(w * (phi @ coef - y) ** 2)

    return np.asarray(jax.vmap(rss)(jnp.asarray(thetas, jnp.float64)))


def profile_interval(result: fit_lib.FitResult, level: float = 0.95,
                     noise: noise_lib.NoiseScale | None = None) -> tuple[float, float]:
  """(lo, hi) for the law's single non-linear parameter; see the module docstring."""
  law = result.law
  if len(law.nonlinear) != 1:
    raise ValueError(f"profile intervals need a law with one non-linear parameter; "
                     f"{law.name} has {law.nonlinear}")
  theta_hat = float(result.params[law.param_names.index(law.nonlinear[0])])
  rss_min = 2 * result.objective
  if noise is None:
    df = noise_lib.residual_df(result)
    if df < 1:
      raise ValueError("no residual degrees of freedom: give a noise scale")
    threshold = rss_min * (1 + stats.f.ppf(level, 1, df) / df)
  else:
    sigma = np.sqrt(result.weights) * noise.for_points(len(result.y)).sigma
    if not np.allclose(sigma, sigma[0]):
      raise ValueError("a known-noise profile needs one sigma per unit weight")
    threshold = rss_min + sigma[0] ** 2 * stats.chi2.ppf(level, 1)
  sign = 1.0 if theta_hat > 0 else -1.0
  magnitude = abs(theta_hat) * np.geomspace(1 / _GRID_SPAN, _GRID_SPAN, _GRID_POINTS)
  thetas = np.sort(sign * magnitude)
  rss = np.minimum(profile_rss(result, thetas), np.inf)
  below, above = thetas < theta_hat, thetas > theta_hat
  lo = _crossing(thetas[below][::-1], rss[below][::-1], threshold, -np.inf)
  hi = _crossing(thetas[above], rss[above], threshold, np.inf)
  return lo, hi


def _crossing(thetas, rss, threshold, unbounded) -> float:
  """First theta (walking away from the estimate) where rss exceeds threshold,
  interpolated linearly between grid points."""
  out = np.flatnonzero(~(rss <= threshold))
  if not out.size:
    return float(unbounded)
  i = out[0]
  if i == 0:
    return float(thetas[0])
  t0, t1, r0, r1 = thetas[i - 1], thetas[i], rss[i - 1], rss[i]
  if not np.isfinite(r1):
    return float(t1)
  return float(t0 + (threshold - r0) / (r1 - r0) * (t1 - t0))
