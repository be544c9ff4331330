"""Weighted linear least squares for the few columns of a separable law.

Written out with modified Gram-Schmidt (plus one re-orthogonalisation pass) rather
than jnp.linalg.lstsq because it is called for every start of every bootstrap
resample at once: elementwise ops over a [batch, n] block vectorise, while a
batched LAPACK call loops over tiny matrices one at a time on CPU.
"""
from __future__ import annotations

import itertools

import jax.numpy as jnp

# Columns whose orthogonal part is this small (relative to their norm) carry no
# information the others do not: their coefficient is set to zero.
_RANK_TOLERANCE = 1e-12


def _orthogonalise(columns):
  """Unit-norm columns -> (Q columns, R upper-triangular entries as a dict)."""
  q_cols, r = [], {}
  for j, v in enumerate(columns):
    for _ in range(2):  # twice is enough (Giraud et al.): keeps Q orthogonal in fp64
      for i, q in enumerate(q_cols):
        proj = jnp.sum(q * v, axis=-1)
        r[i, j] = r.get((i, j), 0.0) + proj
        v = v - proj[..., None] * q
    norm = jnp.sqrt(jnp.sum(v * v, axis=-1))
    safe = jnp.where(norm > _RANK_TOLERANCE, norm, 1.0)
    r[j, j] = norm
    q_cols.append(jnp.where((norm > _RANK_TOLERANCE)[..., None], v / safe[..., None], 0.0))
  return q_cols, r


def solve_linear(phi, y, w):
  """argmin_c sum_i w_i (y_i - phi_i . c)^2 for phi [..., n, K], y, w [..., n]."""
  sqrt_w = jnp.sqrt(w)
  a = phi * sqrt_w[..., None]
  b = y * sqrt_w
  num_cols = phi.shape[-1]
  scales = [jnp.sqrt(jnp.sum(a[..., j] ** 2, axis=-1)) for j in range(num_cols)]
  scales = [jnp.where(s > 0, s, 1.0) for s in scales]
  q_cols, r = _orthogonalise([a[..., j] / scales[j][..., None] for j in range(num_cols)])
  qtb = [jnp.sum(q * b, axis=-1) for q in q_cols]
  coef = [None] * num_cols
  for j in reversed(range(num_cols)):
    acc = qtb[j] - sum(r[j, k] * coef[k] for k in range(j + 1, num_cols))
    ok = r[j, j] > _RANK_TOLERANCE
    coef[j] = jnp.where(ok, acc / jnp.where(ok, r[j, j], 1.0), 0.0)
  return jnp.stack([c / s for c, s in zip(coef, scales)], axis=-1)


def solve_linear_bounded(phi, y, w, lo, hi, pattern):
  """argmin_c sum_i w_i (y_i - phi_i . c)^2 subject to lo <= c <= hi.

  lo, hi: [K] arrays; pattern: static tuple of (has_lo, has_hi) per column (which
  bounds are finite). A convex problem with few columns: its optimum is the
  unconstrained solution of some active set (each bounded column free, at lo or at
  hi), so every active set is solved and the best feasible one kept (2^3 = 8 sets
  for Eq. 4's three one-sided coefficients).
  """
  states = [("free",) + (("lo",) if has_lo else ()) + (("hi",) if has_hi else ())
            for has_lo, has_hi in pattern]
  if all(len(s) == 1 for s in states):
    return solve_linear(phi, y, w)
  num_cols = phi.shape[-1]
  best_coef, best_rss = None, None
  for combo in itertools.product(*states):
    free = [j for j, s in enumerate(combo) if s == "free"]
    pinned = {j: (lo[j] if s == "lo" else hi[j]) for j, s in enumerate(combo) if s != "free"}
    target = y - sum(phi[..., j] * v for j, v in pinned.items())
    coef_free = solve_linear(phi[..., free], target, w) if free else None
    coef = jnp.stack([coef_free[..., free.index(j)] if j in free
                      else jnp.broadcast_to(pinned[j], y.shape[:-1]).astype(y.dtype)
                      for j in range(num_cols)], axis=-1)
    # Feasible up to rounding; an infeasible set scores +inf.
    slack = 1e-12 * (1 + jnp.abs(coef))
    feasible = jnp.all((coef >= lo - slack) & (coef <= hi + slack), axis=-1)
    fitted = jnp.einsum("...nk,...k->...n", phi, coef)
    rss = jnp.where(feasible, jnp.sum(w * (fitted - y) ** 2, axis=-1), jnp.inf)
    if best_coef is None:
      best_coef, best_rss = coef, rss
    else:
      better = rss < best_rss
      best_coef = jnp.where(better[..., None], coef, best_coef)
      best_rss = jnp.where(better, rss, best_rss)
  return best_coef
