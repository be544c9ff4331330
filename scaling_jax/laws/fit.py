"""`fit`: multi-start least squares of a scaling law in one jitted, vmapped call.

Every start of every data set (one for a plain fit, one per resample for a
bootstrap) is solved at once: `fit_many` vmaps the solver over data sets x starts
and keeps each data set's best objective. Fits run in float64 (as scipy's do) inside
`jax.enable_x64`, so the rest of the process keeps JAX's float32 default.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from scaling_jax.laws import compile_keys
from scaling_jax.laws import forms
from scaling_jax.laws import solver

DEFAULT_MAXITER = 100
# Levenberg-Marquardt on Huber residuals converges slowly once residuals sit at the
# loss's kink (its Jacobian jumps there): on a 90-run (N, C, loss) table with an
# outlier set, 100 iterations stopped short (alpha 0.71 for a true 0.34) and 400
# converged (alpha 0.39). Converged fits stop early, so the margin costs nothing.
DEFAULT_ROBUST_MAXITER = 1000
DEFAULT_TOL = 1e-10
DEFAULT_HUBER_DELTA = 1e-3


class FitError(ValueError):
  """The data cannot be fitted as asked (too few points, non-finite values...)."""


def _is_int(value) -> bool:
  # bool is an int subclass, but maxiter=True is a mistake, not 1.
  return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_positive_number(value) -> bool:
  return (isinstance(value, (int, float, np.integer, np.floating))
          and not isinstance(value, (bool, np.bool_)) and np.isfinite(value) and value > 0)


def settings_problem(*, field: str = "fit", maxiter=None, tol=DEFAULT_TOL,
                     robust=False, huber_delta=DEFAULT_HUBER_DELTA, bounds="none"
                     ) -> str | None:
  """What is wrong with these fit settings, naming them as `field`.<name>; None if
  fine. FitSettings refuses the same; the fitting layer asks first, so a study's
  config is refused before anything runs."""
  if maxiter is not None and (not _is_int(maxiter) or maxiter < 1):
    # maxiter=0 would hand back the starting exponent as if it were the answer.
    return (f"config field '{field}.maxiter' is {maxiter!r}; use an integer "
            f">= 1 (the solver's iteration limit; the default, 0 in a study config, "
            f"is {DEFAULT_MAXITER} for least squares, {DEFAULT_ROBUST_MAXITER} for Huber)")
  if not _is_positive_number(tol):
    return (f"config field '{field}.tol' is {tol!r}; use a positive number "
            f"(the solver's relative step tolerance; {DEFAULT_TOL:g} is the default)")
  if not isinstance(robust, (bool, np.bool_)):
    return f"config field '{field}.robust' is {robust!r}; use True or False"
  if not _is_positive_number(huber_delta):
    return (f"config field '{field}.huber_delta' is {huber_delta!r}; use a "
            f"positive number (where the Huber loss turns linear, in log-residual "
            f"units; {DEFAULT_HUBER_DELTA:g} is the default)")
  return _bounds_problem(bounds, robust, field)


BOUNDS = ("none", "physical")


def _bounds_problem(bounds, robust, field) -> str | None:
  if isinstance(bounds, str):
    if bounds not in BOUNDS:
      return (f"config field '{field}.bounds' is {bounds!r}; use one of {BOUNDS} "
              f"('physical': each law's Law.physical_bounds) or (name, lo, hi) triples")
  elif not (isinstance(bounds, tuple) and all(
      isinstance(b, tuple) and len(b) == 3 and isinstance(b[0], str)
      and all(isinstance(v, (int, float)) for v in b[1:]) and b[1] < b[2] for b in bounds)):
    return (f"config field '{field}.bounds' is {bounds!r}; use 'none', 'physical' or a "
            f"tuple of (name, lo, hi) triples with lo < hi")
  if robust and bounds not in ("none", ()):
    return (f"config field '{field}.bounds' is {bounds!r}, but bounds apply to least "
            f"squares only; fit by least squares ({field}.loss='squares', or "
            f"robust=False in FitSettings) or set {field}.bounds='none'")
  return None


def param_bounds(law: forms.Law, settings) -> tuple[np.ndarray, np.ndarray]:
  """(lo [P], hi [P]) of `law`'s parameters under settings.bounds (+-inf: none).

  Triples naming parameters the law does not have are ignored, so one setting can
  hold bounds for both laws of a study.
  """
  triples = law.physical_bounds if settings.bounds == "physical" else (
      () if settings.bounds == "none" else settings.bounds)
  lo, hi = np.full(law.num_params, -np.inf), np.full(law.num_params, np.inf)
  for name, low, high in triples:
    if name in law.param_names:
      lo[law.param_names.index(name)], hi[law.param_names.index(name)] = low, high
  return lo, hi


@dataclasses.dataclass(frozen=True)
class FitSettings:
  maxiter: int | None = None      # None: DEFAULT_MAXITER, or DEFAULT_ROBUST_MAXITER
  tol: float = DEFAULT_TOL
  robust: bool = False            # Huber on log residuals instead of squared error
  huber_delta: float = DEFAULT_HUBER_DELTA
  # 'none', 'physical' (each law's Law.physical_bounds: E >= 0, k >= 0, exponents in
  # a range) or a tuple of (name, lo, hi): parameters held within these ranges.
  bounds: str | tuple = "none"

  def __post_init__(self):
    problem = settings_problem(**dataclasses.asdict(self))
    if problem:
      raise FitError(problem)
    if self.maxiter is None:  # frozen: set once, here
      object.__setattr__(self, "maxiter",
                         DEFAULT_ROBUST_MAXITER if self.robust else DEFAULT_MAXITER)


@dataclasses.dataclass
class FitResult:
  """The best of all starts for one data set, plus what bootstraps and influence need."""
  law: forms.Law
  params: np.ndarray             # [P], ordered as law.param_names
  objective: float               # 0.5 * sum of squared (or Huber) residuals
  x: dict[str, np.ndarray]
  y: np.ndarray
  weights: np.ndarray
  starts: np.ndarray             # [S, P]
  settings: FitSettings
  # Whether the best start's solver met its tolerance (a vanishing gradient or a
  # negligible step) within settings.maxiter, rather than being cut off there.
  converged: bool

  @property
  def named_params(self) -> dict[str, float]:
    return self.law.as_dict(self.params)

  def predict(self, x: Mapping[str, np.ndarray]) -> np.ndarray:
    with jax.enable_x64(True):
      return np.asarray(_evaluate(self.law, jnp.asarray(self.params), as_inputs(x)))

  def residuals(self) -> np.ndarray:
    return self.predict(self.x) - self.y


@functools.partial(jax.jit, static_argnames="law")
def _evaluate(law, params, x):
  return law(params, x)


def _grid(**axes):
  """Cartesian product of named 1-D grids -> dict of equally long arrays."""
  names = list(axes)
  rows = list(itertools.product(*(axes[n] for n in names)))
  return {n: np.array([r[i] for r in rows], dtype=np.float64) for i, n in enumerate(names)}


def default_starts(law: forms.Law) -> np.ndarray:
  """At least 128 starting points per law; for Eq. 4, exactly the paper's grid."""
  if law is forms.OVERTRAINING:
    # The paper's grid, set in Eq. 3 terms (alpha, beta, exponent b, E) and mapped to
    # Eq. 4: eta = -b / 2, a = alpha 6^eta, b = beta.
    g = _grid(alpha=[1e2, 3e2, 1e3, 3e3], beta=[1e2, 3e2, 1e3, 3e3],
              exponent=[-0.1, -0.3], E=[0.0, 1.0, 2.0, 10.0])
    eta = -g["exponent"] / 2
    named = dict(E=g["E"], a=g["alpha"] * 6.0**eta, b=g["beta"], eta=eta)
  elif law is forms.DOWNSTREAM:
    # Includes scipy's default start (1, 1, 1), the paper's only one.
    named = _grid(eps=[0.5, 0.75, 1.0, 1.25], k=[0.3, 1.0, 3.0, 10.0],
                  gamma=[0.1, 0.2, 0.4, 0.7, 1.0, 1.5, 2.0, 3.0])
  elif law is forms.CHINCHILLA:
    named = _grid(E=[0.0, 1.0, 2.0, 3.0], A=[1e2, 1e3], B=[1e2, 1e3],
                  alpha=[0.1, 0.2, 0.35, 0.5], beta=[0.1, 0.2, 0.35, 0.5])
  else:
    named = _grid(E=[0.0, 1.0, 2.0, 4.0], A=[1.0, 10.0, 1e2, 1e3],
                  alpha=np.linspace(0.05, 1.5, 8))
  return np.stack([named[n] for n in law.param_names], axis=-1)


def as_inputs(x: Mapping[str, np.ndarray]) -> dict[str, jnp.ndarray]:
  """A law's inputs as float64 jnp arrays (call inside jax.enable_x64)."""
  return {k: jnp.asarray(np.asarray(v, dtype=np.float64)) for k, v in x.items()}


def _solver_bounds(law, settings, lo, hi):
  """FitSettings' bounds as the solver's Bounds (None when there are none)."""
  static_lo, static_hi = param_bounds(law, settings)
  if np.all(np.isinf(static_lo)) and np.all(np.isinf(static_hi)):
    return None
  theta_lo, coef_lo = law.split(lo)
  theta_hi, coef_hi = law.split(hi)
  pattern = tuple((bool(np.isfinite(static_lo[law.param_names.index(n)])),
                   bool(np.isfinite(static_hi[law.param_names.index(n)])))
                  for n in law.linear)
  return solver.Bounds(theta_lo, theta_hi, coef_lo, coef_hi, pattern)


def _solve_one(law, settings, start, x, y, w, lo, hi):
  """One start on one data set -> (params [P], objective, converged)."""
  theta0, _ = law.split(start)
  theta, coef, converged = solver.solve_projected(
      law, theta0, x, y, w, maxiter=settings.maxiter, tol=settings.tol,
      bounds=_solver_bounds(law, settings, lo, hi))
  params = law.join(theta, coef)
  if settings.robust:
    # The Huber stage makes the answer: its convergence is the fit's.
    params, converged = solver.solve_robust(law, params, x, y, w, delta=settings.huber_delta,
                                            maxiter=settings.maxiter, tol=settings.tol)
    objective = solver.huber_objective(law, params, x, y, w, settings.huber_delta)
  else:
    objective = 0.5 * jnp.sum(w * (law(params, x) - y) ** 2)
  ok = jnp.isfinite(objective) & jnp.all(jnp.isfinite(params))
  return params, jnp.where(ok, objective, jnp.inf), converged & ok


@functools.partial(jax.jit, static_argnames=("law", "settings"))
def _fit_many_jit(law, settings, starts, x, ys, ws, lo, hi):
  over_starts = jax.vmap(_solve_one, in_axes=(None, None, 0, None, None, None, None, None))
  over_sets = jax.vmap(over_starts, in_axes=(None, None, None, None, 0, 0, None, None))
  params, objective, converged = over_sets(law, settings, starts, x, ys, ws, lo,
                                           hi)  # [B, S, ...]
  best = jnp.argmin(objective, axis=1)
  take = jax.vmap(lambda a, i: a[i])
  return take(params, best), take(objective, best), take(converged, best)


def distinct_problems(law: forms.Law, starts) -> np.ndarray:
  """The starts that pose different problems to the solver.

  `_solve_one` reads only a start's non-linear part (the linear part is solved for
  exactly), so starts that share it are the same problem: each is solved once. For
  the paper's 128-point grid of Eq. 4 that is 2 problems (two starting exponents).
  """
  nonlinear_index = [law.param_names.index(n) for n in law.nonlinear]
  return np.unique(np.asarray(starts)[:, nonlinear_index], axis=0)


@dataclasses.dataclass
class ManyFits:
  """Best-of-starts fits of B data sets."""
  params: np.ndarray     # [B, P]
  objective: np.ndarray  # [B]; inf where every start failed
  converged: np.ndarray  # [B] bool: the best start met the solver's tolerance


def solve_many(law: forms.Law, x, ys, ws, *, starts=None, settings=FitSettings(),
               solve_every_start: bool = False) -> ManyFits:
  """Best-of-starts fits of B data sets at once: ys, ws [B, n].

  Targets are divided by one common scale before solving, so tolerances mean the
  same for losses near 3 and errors near 0.5; results are returned unscaled.
  `solve_every_start` solves duplicate problems anyway (for tests and benchmarks).
  """
  starts = default_starts(law) if starts is None else np.asarray(starts, np.float64)
  ys = np.asarray(ys, np.float64)
  scale = float(np.mean(np.abs(ys))) or 1.0
  linear_index = [law.param_names.index(n) for n in law.linear]
  if solve_every_start:
    problems = starts / np.where(np.isin(np.arange(law.num_params), linear_index), scale, 1)
  else:
    problems = np.zeros((len(distinct_problems(law, starts)), law.num_params))
    problems[:, [law.param_names.index(n) for n in law.nonlinear]] = distinct_problems(
        law, starts)
  lo, hi = param_bounds(law, settings)
  lo[linear_index] /= scale  # the solver sees targets divided by scale
  hi[linear_index] /= scale
  num_sets = len(ys)
  x, ys, ws = compile_keys.padded(x, ys / scale, np.asarray(ws, np.float64))
  compiled_for = compile_keys.bound_pattern(law, settings, lo, hi)
  with jax.enable_x64(True):
    params, objective, converged = _fit_many_jit(
        law, compiled_for, jnp.asarray(problems), as_inputs(x), jnp.asarray(ys),
        jnp.asarray(ws), jnp.asarray(lo), jnp.asarray(hi))
    params, objective = np.array(params[:num_sets]), np.array(objective[:num_sets])
    converged = np.array(converged[:num_sets], dtype=bool)
  params[:, linear_index] *= scale
  if not settings.robust:
    objective *= scale**2  # the Huber objective on log residuals is scale-free
  return ManyFits(params, objective, converged)


def fit_many(law: forms.Law, x, ys, ws, *, starts=None, settings=FitSettings(),
             solve_every_start: bool = False):
  """`solve_many` as (params [B, P], objective [B]), without convergence flags."""
  fits = solve_many(law, x, ys, ws, starts=starts, settings=settings,
                    solve_every_start=solve_every_start)
  return fits.params, fits.objective


def _positions(mask) -> list[int]:
  return np.flatnonzero(mask).tolist()


def _check_shapes_and_values(law, x, y, w):
  n = len(y)
  missing = [k for k in law.inputs if k not in x]
  if missing:
    raise FitError(f"law {law.name} needs inputs {list(law.inputs)}; missing {missing}")
  for name, values in [("y", y), ("weights", w)] + [(k, x[k]) for k in law.inputs]:
    if np.shape(values) != (n,):
      raise FitError(f"{name} has shape {np.shape(values)}; expected ({n},)")
    bad = ~np.isfinite(values)
    if bad.any():
      raise FitError(f"{name} has non-finite values at positions {_positions(bad)}")


def _check_positive(law, x, y, w, settings):
  for k in law.positive_inputs:
    if np.any(x[k] <= 0):
      raise FitError(f"{k} must be positive: {law.formula} takes its logarithm or a "
                     f"power of it, but {k} is <= 0 at positions {_positions(x[k] <= 0)}; "
                     f"drop those rows or fix their {k}")
  if np.any(w <= 0):
    raise FitError(f"weights must be positive, but are <= 0 at positions "
                   f"{_positions(w <= 0)}; drop those points rather than zero-weighting "
                   f"them, so that every point counted is one that is fitted")
  if settings.robust and np.any(y <= 0):
    raise FitError(f"the Huber objective (study.fit.loss='huber'; robust=True in "
                   f"FitSettings) fits log residuals, so y must be positive, but y is "
                   f"<= 0 at positions {_positions(y <= 0)}; drop those rows or fit by "
                   f"least squares")


def distinct_design_points(law: forms.Law, x) -> int:
  """How many different input tuples (e.g. (C, M)) the rows of x hold."""
  design = np.stack([np.asarray(x[k], np.float64) for k in law.inputs], axis=-1)
  return len(np.unique(design, axis=0))


def _check_design_size(law, x, n):
  # Repeated points pin down the noise, not the shape: only distinct ones count.
  distinct, p, names = distinct_design_points(law, x), law.num_params, ", ".join(law.inputs)
  if n < p:
    raise FitError(f"{n} points cannot determine the {p} parameters of {law.formula}; "
                   f"add runs or fix some parameters")
  if distinct < p:
    raise FitError(f"{n} points hold only {distinct} distinct design points ({names}); "
                   f"repeats at one point add no information about the law's shape, and "
                   f"the {p} parameters of {law.formula} need at least {p} distinct "
                   f"points; add runs at new ({names})")


def _check_inputs(law, x, y, w, settings):
  _check_shapes_and_values(law, x, y, w)
  _check_positive(law, x, y, w, settings)
  _check_design_size(law, x, len(y))


def fit(law: forms.Law, x: Mapping[str, np.ndarray], y, *, weights=None, starts=None,
        settings: FitSettings = FitSettings()) -> FitResult:
  """Fits `law` to (x, y) from every start at once and keeps the best."""
  x = {k: np.asarray(v, np.float64) for k, v in x.items()}
  y = np.asarray(y, np.float64)
  w = np.ones_like(y) if weights is None else np.asarray(weights, np.float64)
  _check_inputs(law, x, y, w, settings)
  starts = default_starts(law) if starts is None else np.asarray(starts, np.float64)
  fits = solve_many(law, x, y[None], w[None], starts=starts, settings=settings)
  if not np.isfinite(fits.objective[0]):
    raise FitError(f"every one of the {len(starts)} starts failed to fit {law.formula}: "
                   f"each ended with non-finite parameters or objective; give starts "
                   f"nearer the answer or check the data's scale")
  return FitResult(law=law, params=fits.params[0], objective=float(fits.objective[0]), x=x,
                   y=y, weights=w, starts=starts, settings=settings,
                   converged=bool(fits.converged[0]))
