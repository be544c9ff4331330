"""calibration.py's curve designs: Eq. 3 fitted to every checkpoint of whole runs,
intervals from the cluster bootstrap over runs and candidate corrections for few
runs (see calibration.py's docstring for the designs and what was measured)."""
import dataclasses

import numpy as np
from scipy import stats

from calibration_truth import EVAL_SIGMA, TARGETS
from scaling_jax.fitting import curves as curves_lib
from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import cluster as cluster_lib
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms
from scaling_jax.laws import predict as predict_lib

# Curve designs: Eq. 3 on every checkpoint of whole runs, intervals from the
# cluster bootstrap over runs (scaling_jax.laws.cluster), as scaling_jax.curves
# makes them. Truth: Hoffmann et al. (2022)'s Eq. 3 fit (E, A, B, alpha, beta),
# whose losses on these runs span 2.6-5 nats, like real LM validation losses.
CURVE_TRUTH = np.array([1.69, 406.4, 410.7, 0.34, 0.28])
CURVE_RUNS = {  # (N, M) of each run; a run's final tokens are M N
    # 6 sizes at M = 20 and 2 over-trained runs.
    "curves": ((3e7, 20.0), (6e7, 20.0), (1.2e8, 20.0), (2.5e8, 20.0), (5e8, 20.0),
               (1e9, 20.0), (6e7, 320.0), (2.5e8, 80.0)),
    # curves.MIN_CLUSTERS runs in the paper's pattern: 4 sizes at M = 20, the
    # smallest again at M = 320.
    "curves5": ((3e7, 20.0), (1.2e8, 20.0), (5e8, 20.0), (1e9, 20.0), (3e7, 320.0)),
}
# Each run's checkpoints, as fractions of its final tokens: 10 evenly spaced past
# an early-training cut at 25% (study.curves.min_fraction), where Eq. 3 describes curves.
CHECKPOINTS = np.linspace(0.25, 1.0, 10)
# A run's offset (its seed's luck, shared by all its checkpoints: what makes
# checkpoints of one run dependent) and each checkpoint's own evaluation noise.
RUN_SIGMA, CHECKPOINT_SIGMA = 0.015, EVAL_SIGMA
CURVE_TARGETS = {"N": TARGETS["N"], "D": TARGETS["N"] * TARGETS["M"]}
CURVE_TARGET_NAMES = ("loss 1.4B M640", "loss 6.9B M20", "alpha", "beta")


def curve_design(name):
  """({N, D} of every checkpoint, index of its run)."""
  runs = CURVE_RUNS[name]
  n = np.repeat([size for size, _ in runs], len(CHECKPOINTS))
  d = np.concatenate([size * m * CHECKPOINTS for size, m in runs])
  return {"N": n, "D": d}, np.repeat(np.arange(len(runs)), len(CHECKPOINTS))


def eq3(p, x):
  e, a, b, alpha, beta = p
  return e + a * x["N"]**-alpha + b * x["D"]**-beta


def simulate_curves(name, rng):
  """One data set's Eq. 3 fit (curves.py's: every checkpoint weighs 1, default
  starts and settings) and the run of each checkpoint."""
  x, runs = curve_design(name)
  offsets = rng.normal(0, RUN_SIGMA, runs.max() + 1)
  y = eq3(CURVE_TRUTH, x) + offsets[runs] + rng.normal(0, CHECKPOINT_SIGMA, len(runs))
  return fit_lib.fit(forms.CHINCHILLA, x, y), runs


def curve_quantities(params):
  """[B, 4]: the targets' losses and (alpha, beta) for parameter rows [B, 5]."""
  params = np.atleast_2d(params)
  return np.concatenate([predict_lib.law_samples(forms.CHINCHILLA, params, CURVE_TARGETS),
                         params[:, 3:]], axis=1)


def curve_truths():
  return curve_quantities(CURVE_TRUTH)[0]


def _bessel(g):
  # A bootstrap over G clusters estimates the variance with divisor G, not G - 1.
  return np.sqrt(g / (g - 1))


def _t_ratio(g):
  # Few clusters: a t reference with G - 1 df (as cluster-robust inference uses).
  return stats.t.ppf(0.975, g - 1) / stats.norm.ppf(0.975)


@dataclasses.dataclass(frozen=True)
class CurveMethod:
  """Replicates from `resample` ('cluster': whole runs with replacement, as
  curves.py; 'wild': each run's residual block times a Webb weight, every run kept;
  'jackknife': each run left out once, a symmetric t_{G-1} interval) and, for the
  percentile ones, the replicates' deviations from the point fit scaled by the
  product of `scales` (functions of the number of runs G)."""
  resample: str
  scales: tuple = ()


CURVE_METHODS = {
    "cluster percentile (default)": CurveMethod("cluster"),
    "cluster, deviations x sqrt(G/(G-1))": CurveMethod("cluster", (_bessel,)),
    "cluster, deviations x t_{G-1}/z": CurveMethod("cluster", (_t_ratio,)),
    "cluster, deviations x sqrt(G/(G-1)) t_{G-1}/z": CurveMethod("cluster",
                                                                 (_bessel, _t_ratio)),
    "jackknife over runs, t_{G-1}": CurveMethod("jackknife"),
    "wild cluster, Webb weights": CurveMethod("wild"),
}
CURVE_DEFAULT = "cluster percentile (default)"
WEBB = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])


def _refit(result, ys, ws):
  """Parameters [B, P] of result's law refitted from its optimum (NaN if failed)."""
  many = fit_lib.solve_many(result.law, result.x, ys, ws, starts=result.params[None],
                            settings=result.settings)
  return np.where(np.isfinite(many.objective)[:, None], many.params, np.nan)


def curve_replicates(kind, result, runs, resamples, seed):
  """Parameter replicates [B, P] of one resampling scheme."""
  if kind == "cluster":
    return cluster_lib.cluster_bootstrap(result, runs, num_resamples=resamples,
                                         seed=seed).params
  num_runs = runs.max() + 1
  if kind == "jackknife":
    ws = (runs[None, :] != np.arange(num_runs)[:, None]) * result.weights
    return _refit(result, np.broadcast_to(result.y, ws.shape), ws)
  if kind == "wild":
    fitted = result.predict(result.x)
    signs = np.random.default_rng(seed).choice(WEBB, size=(resamples, num_runs))
    ys = fitted + signs[:, runs] * (result.y - fitted)
    return _refit(result, ys, np.broadcast_to(result.weights, ys.shape))
  raise ValueError(f"unknown resampling {kind!r}")


def curve_interval(spec, point, samples, num_runs):
  """(lo, hi) of each quantity from its point value [Q] and replicates [B, Q]."""
  if spec.resample == "jackknife":
    spread = np.sqrt((num_runs - 1) / num_runs *
                     np.nansum((samples - np.nanmean(samples, axis=0))**2, axis=0))
    half = stats.t.ppf(0.975, num_runs - 1) * spread
    return point - half, point + half
  if not spec.scales:  # curves.py's interval: percentiles of the replicates themselves
    return bootstrap_lib.interval(samples)
  scale = np.prod([f(num_runs) for f in spec.scales])
  return bootstrap_lib.interval(point + scale * (samples - point))


def curve_claim(name):
  """Why the default's curve intervals are not claimed calibrated; None if they are."""
  num_runs = len(CURVE_RUNS[name])
  if num_runs < curves_lib.MIN_CLUSTERS:
    return (f"{num_runs} runs < curves.MIN_CLUSTERS = {curves_lib.MIN_CLUSTERS}: the "
            f"report reads the intervals as a lower bound")
  return None


def run_curve_design(name, methods, trials, resamples, seed=0):
  """covered [method] -> [trials, 4] bool, widths likewise."""
  rng = np.random.default_rng(seed)
  truth = curve_truths()
  covered = {m: [] for m in methods}
  widths = {m: [] for m in methods}
  for trial in range(trials):
    result, runs = simulate_curves(name, rng)
    point = curve_quantities(result.params)[0]
    samples = {}  # one set of replicates per scheme, shared by the methods that scale it
    for m in methods:
      spec = CURVE_METHODS[m]
      if spec.resample not in samples:
        samples[spec.resample] = curve_quantities(
            curve_replicates(spec.resample, result, runs, resamples, trial))
      lo, hi = curve_interval(spec, point, samples[spec.resample], runs.max() + 1)
      covered[m].append((lo <= truth) & (truth <= hi))
      widths[m].append(hi - lo)
  return ({m: np.array(v, float) for m, v in covered.items()},
          {m: np.array(v, float) for m, v in widths.items()})
