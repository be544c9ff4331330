r"""Do the intervals cover REAL held-out runs? Coverage of both interval kinds on ../shared.

  python benchmarks/real_calibration.py [--shared ../shared] [--resamples 400]
  python benchmarks/real_calibration.py --measure_prior

Data (read in place, never copied): the released over-training testbed
(../shared/data/openlm_testbed), each of its three training sets fitted with the
study's default design (the paper's Table 1: Eq. 4 on five runs, Eq. 5 on six) and
scored on every run outside the design at larger compute or larger M, plus the
design's named targets (1.4B at M = 640, 6.9B at M = 20; unmeasured in the release,
their widths are compared). And every training-curve family in
../shared/data/colpret_curves with at least 5 sizes (only Alabdulmohsin et al.'s
language-model curves): Eq. 3 fitted on every checkpoint of the 4 smaller sizes
past a 25% cut, scored on the largest size's late checkpoints (the last 30% of
its tokens). For each run: is its measured loss (and its 17-task error) inside the
80% and 95% interval of each kind, `prediction` (one run there) and `mean` (the
law's value)?

Printed: a table per data set and pooled, with binomial standard errors
(sqrt(p (1 - p) / n); runs of one data set share a fit, so the real uncertainty is
larger), the median interval width relative to the prediction, and the point
predictions' mean relative error; then the same prediction intervals with the
prior measured WITHOUT the data set scored (leave-one-data-set-out: what a new data
set sees). It ends with `real coverage 95%: pooled <x> min <y> max <z>` (the
shipped prior's prediction kind, loss and error together).

benchmarks/backtest_calibration.py scores the same way a plentiful design, where
the study backtests itself.

--measure_prior prints the numbers laws/prediction_interval.py ships (LOSS_PRIOR,
ERROR_PRIOR): the run-noise scale s0 and its worth df0 from Eq. 4 (Eq. 5) fitted to
all runs of each training set, and the extrapolation growth g per decade by maximum
likelihood over the held-out runs above (each data set weighted equally).
"""
import argparse
import dataclasses
import math
import os
import sys
import time

import numpy as np
from scipy import optimize
from scipy import special

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from scaling_jax import runs as runs_lib  # noqa: E402
from scaling_jax.fitting import study_fit  # noqa: E402
from scaling_jax.fitting import points as points_lib  # noqa: E402
from scaling_jax.laws import prediction_interval as pi_lib  # noqa: E402
from scaling_jax.laws import fit as fit_lib  # noqa: E402
from scaling_jax.laws import forms  # noqa: E402

TRAIN_SETS = ("c4_original", "rpj", "rw_original")
# Training-curve families with at least 5 sizes in ../shared/data/colpret_curves:
# only the language-model curves of Alabdulmohsin et al. (5 sizes, 16.8M-1.07B).
# The others have fewer sizes (T5 4, OLMo 3, datablations' curves 3).
CURVE_SETS = ("revisiting_lm",)
DATASETS = TRAIN_SETS + CURVE_SETS
LEVELS = (0.8, 0.95)


def testbed_config(shared, train, resamples, levels=0.95):
  sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                  "configs"))
  import testbed  # pylint: disable=import-outside-toplevel
  config = testbed.get_config(f"train={train}")
  config.runs.path = os.path.join(shared, "data", "openlm_testbed")
  config.study.bootstrap.num_resamples = resamples
  config.study.bootstrap.level = levels
  config.study.reuse_fit = False
  return config


@dataclasses.dataclass
class Scored:
  """One held-out run of one data set, under one prior and level."""
  dataset: str
  run: str
  column: str   # 'loss' or 'err'
  value: float
  pred: float
  lo: dict      # kind -> lower end
  hi: dict
  decades: float
  headline: bool  # one of the design's named targets (1.4B at M = 640, 6.9B at M = 20)


def held_out(fit) -> list[dict]:
  """Every run outside the loss design at larger compute or larger M, targets too."""
  design = [p for p in fit.predictions if p["used_in_fit"]]
  c_max = max(p["flops"] for p in design)
  m_max = max(p["M"] for p in design)
  chosen = {p["run"]: p for p in fit.predictions
            if not p["used_in_fit"] and (p["flops"] > c_max or p["M"] > m_max)}
  for t in fit.targets:
    chosen.setdefault(t["run"], t)
  return list(chosen.values())


def measured(scored: list[Scored]) -> list[Scored]:
  return [s for s in scored if not math.isnan(s.value)]


def curves_config(shared, resamples, level):
  sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                  "configs"))
  import curves as curves_config  # pylint: disable=import-outside-toplevel
  path = os.path.join(shared, "data", "colpret_curves", "revisiting_lang.csv")
  config = curves_config.get_config(f"csv={path}")
  mapping = config.runs.csv
  mapping.columns.run = mapping.columns.params = "Model"
  mapping.columns.tokens, mapping.columns.loss = "Seen Examples", "Loss"
  mapping.filters = ("Domain == LM",)
  mapping.run_from = ("Model",)
  mapping.unordered = True
  config.study.bootstrap.num_resamples = resamples
  config.study.bootstrap.level = level
  # The first quarter of each run is warm-up and high learning rate: the same cut
  # as benchmarks/calibration.py's curve designs, not chosen on these data.
  config.study.curves.min_fraction = 0.25
  return config


def score_curves(shared, resamples, level) -> list[Scored]:
  """Fit the smaller sizes' curves, score the largest size's late checkpoints (the
  last study.curves.late_fraction of its tokens)."""
  from scaling_jax.fitting import curves  # pylint: disable=import-outside-toplevel
  config = curves_config(shared, resamples, level)
  source = runs_lib.load(config, "/nonexistent")
  sizes = {r["run"]: r["N"] for r in source.rows}
  names = sorted(sizes, key=sizes.get)
  config.study.curves.fit_runs = ",".join(names[:-1])
  config.study.curves.targets = names[-1]
  fit = curves.fit(source.rows, source.task_baselines, config.study)
  target = [r for r in fit.checkpoints if r["run"] == names[-1]]
  late_from = (1 - config.study.curves.late_fraction) * target[-1]["tokens"]
  return [Scored("revisiting_lm", f"{r['run']}@{r['tokens']:.3g}", "loss", float(r["loss"]),
                 float(r["loss_pred"]),
                 {"prediction": r["loss_lo"], "mean": r["loss_mean_lo"]},
                 {"prediction": r["loss_hi"], "mean": r["loss_mean_hi"]},
                 float(r["extrapolation_decades"]), False)
          for r in target if r["tokens"] >= late_from]


def score_any(shared, dataset, resamples, level) -> list[Scored]:
  if dataset in CURVE_SETS:
    return score_curves(shared, resamples, level)
  return score(shared, dataset, resamples, level)


def score(shared, train, resamples, level) -> list[Scored]:
  config = testbed_config(shared, train, resamples, level)
  source = runs_lib.load(config, "/nonexistent")
  return scored_runs(study_fit.fit(source.rows, source.task_baselines, config.study), train)


def scored_runs(fit, train) -> list[Scored]:
  out, named = [], {t["run"] for t in fit.targets}
  for p in held_out(fit):
    for column in ("loss", "err"):
      headline = p["run"] in named  # kept unmeasured too (the released data lack
      if p.get(f"{column}_pred") is None or (p.get(column) is None and not headline):
        continue                       # them): their widths are compared
      value = float("nan") if p.get(column) is None else float(p[column])
      out.append(Scored(train, p["run"], column, value, float(p[f"{column}_pred"]),
                        {"prediction": p[f"{column}_lo"], "mean": p[f"{column}_mean_lo"]},
                        {"prediction": p[f"{column}_hi"], "mean": p[f"{column}_mean_hi"]},
                        float(p["extrapolation_decades"]), p["run"] in named))
  return out


def _row(label, scored, kind, level):
  inside = [s.lo[kind] <= s.value <= s.hi[kind] for s in scored]
  n = len(inside)
  p = sum(inside) / n if n else float("nan")
  widths = [(s.hi[kind] - s.lo[kind]) / abs(s.pred) for s in scored]
  rel = [abs(s.pred - s.value) / abs(s.value) for s in scored]
  return (f"| {label} | {kind} | {level:.0%} | {n} | {p:.3f} ({math.sqrt(p * (1 - p) / n):.3f}) "
          f"| {100 * np.median(widths):.1f}% | {100 * np.mean(rel):.2f}% |"), p


def table(results):
  """results: {level: [Scored]} -> printed lines, and {level: {dataset: coverage}}."""
  print("| data set | kind | level | runs | coverage (binomial se) | median width "
        "/ prediction | mean rel. error |")
  print("|---|---|---|---|---|---|---|")
  by_level = {}
  for level, scored in results.items():
    scored = measured(scored)
    for kind in pi_lib.KINDS:
      cov = {}
      for train in DATASETS:
        for column in ("loss", "err"):
          chosen = [s for s in scored if s.dataset == train and s.column == column]
          if chosen:
            line, cov[f"{train} {column}"] = _row(f"{train} {column}", chosen, kind, level)
            print(line)
      line, pooled = _row("pooled", scored, kind, level)
      print(line)
      by_level[(level, kind)] = (pooled, cov)
  return by_level


# -- the prior ----------------------------------------------------------------------

def _all_runs_scale(shared, train, law_name):
  """(relative or absolute residual scale, df) of a law fitted to every run of a set."""
  config = testbed_config(shared, train, 2)
  source = runs_lib.load(config, "/nonexistent")
  rows = points_lib.point_rows(points_lib.of_dataset(source.rows, train))
  study = config.study
  if law_name == "loss":
    rows = [r for r in rows if points_lib.loss_of(r, study.val_set) is not None]
    x = {"C": np.array([r["flops"] for r in rows], float),
         "M": np.array([r["M"] for r in rows], float)}
    y = np.array([points_lib.loss_of(r, study.val_set) for r in rows])
    result = fit_lib.fit(forms.OVERTRAINING, x, y)
    return pi_lib.relative_residual_scale(y, result.predict(x), 5)
  fit = study_fit.fit(source.rows, source.task_baselines, config.study)
  chosen = [r for r in fit.rows if r.get("err") is not None]
  x = {"L": np.array([points_lib.loss_of(r, study.val_set) for r in chosen])}
  y = np.array([r["err"] for r in chosen])
  result = fit_lib.fit(forms.DOWNSTREAM, x, y)
  return pi_lib.absolute_residual_scale(y, result.predict(x), 3)


def _prior_df(scales):
  """Empirical-Bayes worth df0 of a pooled scale: var(log s_i^2) over data sets is
  trigamma(df0 / 2) (the prior's spread) plus each estimate's own sampling variance
  trigamma(df_i / 2); solved for df0, kept in [2, 30]."""
  logs = np.log([s**2 for s, _ in scales])
  excess = np.var(logs, ddof=1) - np.mean([special.polygamma(1, df / 2) for _, df in scales])
  if excess <= special.polygamma(1, 15):
    return 30.0
  if excess >= special.polygamma(1, 1):
    return 2.0
  return float(2 * optimize.brentq(lambda h: special.polygamma(1, h) - excess, 1, 15))


def _fit_share(s: Scored, prior: pi_lib.Prior) -> float:
  """The fit's variance at a held-out run per unit run-noise variance: the prediction
  interval's log half-width / z, less its run-noise and growth terms, over s0^2."""
  total = (math.log(s.hi["prediction"] / s.lo["prediction"]) / (2 * 1.96)) ** 2
  rest = total - prior.run_noise**2 - (prior.growth * s.decades) ** 2
  return max(rest, 0.0) / prior.run_noise**2


def _nll(scored, prior, sigma, g) -> np.ndarray:
  """Per held-out run: Gaussian negative log likelihood (x2, less constants) of its
  log error, of variance (1 + fit share) s^2 + g^2 d^2."""
  e = np.array([math.log(s.value / s.pred) for s in scored])
  d = np.array([s.decades for s in scored])
  c = np.array([_fit_share(s, prior) for s in scored])
  v = (1 + c) * sigma**2 + g**2 * d**2
  return np.log(v) + e**2 / v


def _noise_and_growth(scored_by_set, prior, g=None):
  """(s, g) maximising the likelihood with every data set weighted equally (g fixed
  when given)."""
  def objective(theta):
    sigma = math.exp(theta[0])
    growth = math.exp(theta[1]) if g is None else g
    return sum(np.mean(_nll(sc, prior, sigma, growth)) for sc in scored_by_set.values())
  start = np.log([0.01, 0.005])[: 1 if g is not None else 2]
  best = optimize.minimize(objective, start, method="Nelder-Mead")
  sigma = float(math.exp(best.x[0]))
  return sigma, (float(math.exp(best.x[1])) if g is None else g), best.fun


def _growth_upper(scored_by_set, prior) -> float:
  """The upper end of g's 95% profile-likelihood interval (all runs counted once):
  the largest growth these runs cannot rule out, shipped because one testbed's
  1.5 decades cannot show the growth that farther extrapolations meet."""
  runs = sum(len(sc) for sc in scored_by_set.values())
  sets = len(scored_by_set)
  def profile(g):
    _, _, value = _noise_and_growth(scored_by_set, prior, g)
    return value * runs / sets  # back to a plain sum over runs
  floor = min(profile(g) for g in np.linspace(0, 0.05, 26))
  return float(optimize.brentq(lambda g: profile(g) - floor - 3.84, 1e-6, 0.2)
               if profile(0.2) - floor > 3.84 else 0.2)


def loss_prior(scored_by_set, prior=pi_lib.LOSS_PRIOR) -> pi_lib.Prior:
  """The loss prior from held-out runs: s0 and g by likelihood, df0 by empirical
  Bayes over the data sets' own s estimates (each on as many df as it has runs)."""
  sigma, _, _ = _noise_and_growth(scored_by_set, prior, g=0.0)
  g = _growth_upper(scored_by_set, prior)
  sigma, _, _ = _noise_and_growth(scored_by_set, prior, g=g)
  # A curve's checkpoints are one run: a data set's df is its number of runs, and
  # one with fewer than 3 says too little about its own scale to count here.
  runs_of = lambda v: len({s.run.split("@")[0] for s in v})
  own = [(_noise_and_growth({k: v}, prior, g=g)[0], runs_of(v))
         for k, v in scored_by_set.items() if runs_of(v) >= 3]
  df0 = _prior_df(own) if len(own) > 1 else pi_lib.LOSS_PRIOR.run_noise_df
  return dataclasses.replace(prior, run_noise=sigma, run_noise_df=df0, growth=g)


def measure_prior(shared, resamples):
  for law in ("loss", "err"):
    scales = [_all_runs_scale(shared, t, law) for t in TRAIN_SETS]
    pooled = math.sqrt(sum(df * s**2 for s, df in scales) / sum(df for _, df in scales))
    print(f"{law}: all-runs residual scales {[(round(s, 5), df) for s, df in scales]}; "
          f"pooled {pooled:.4f}, empirical-Bayes df0 {_prior_df(scales):.1f}")
  results = {t: [s for s in measured(score_any(shared, t, resamples, 0.95))
                 if s.column == "loss"] for t in DATASETS}
  p = loss_prior(results)
  print(f"LOSS_PRIOR from held-out loss errors: run_noise={p.run_noise:.4f}, "
        f"run_noise_df={p.run_noise_df:.1f}, growth={p.growth:.4f}")


def _scored_with(shared, train, resamples, level, prior):
  shipped = pi_lib.LOSS_PRIOR
  pi_lib.LOSS_PRIOR = prior  # read at call time by the study's fit
  try:
    return score_any(shared, train, resamples, level)
  finally:
    pi_lib.LOSS_PRIOR = shipped


def real_data_parser(doc: str, resamples: int) -> argparse.ArgumentParser:
  """The flags of every benchmark on ../shared's real data: --shared, --resamples."""
  parser = argparse.ArgumentParser(description=doc.split("\n")[0])
  parser.add_argument("--shared", default=os.path.join(
      os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
  parser.add_argument("--resamples", type=int, default=resamples)
  return parser


def main():
  parser = real_data_parser(__doc__, 400)
  parser.add_argument("--measure_prior", action="store_true")
  args = parser.parse_args()
  start = time.time()
  if args.measure_prior:
    measure_prior(args.shared, args.resamples)
    print(f"wall {time.time() - start:.0f}s")
    return
  results = {level: [s for t in DATASETS for s in score_any(args.shared, t, args.resamples,
                                                            level)]
             for level in LEVELS}
  print(f"shipped loss prior: {pi_lib.LOSS_PRIOR.line()}\n")
  by_level = table(results)
  pooled, cov = by_level[(0.95, "prediction")]
  print("\nThe design's named targets (1.4B at M = 640, 6.9B at M = 20 of each set; "
        "unmeasured in the released data), 95% interval width / prediction:")
  named = [s for s in results[0.95] if s.headline]
  for s in named:
    print(f"- {s.dataset} {s.run} {s.column}: prediction "
          f"{100 * (s.hi['prediction'] - s.lo['prediction']) / s.pred:.1f}%, mean "
          f"{100 * (s.hi['mean'] - s.lo['mean']) / s.pred:.1f}%")
  for column in ("loss", "err"):
    ratio = [(s.hi["prediction"] - s.lo["prediction"]) / (s.hi["mean"] - s.lo["mean"])
             for s in named if s.column == column]
    print(f"median {column} width, prediction / mean: {np.median(ratio):.2f}")
  # Leave one data set out: its prior measured on the other sets' held-out runs.
  print("\nLeave one data set out (the prior re-measured without the set scored):\n")
  held = {}
  for train in DATASETS:
    others = {t: [s for s in measured(results[0.95]) if s.dataset == t
                  and s.column == "loss"] for t in DATASETS if t != train}
    prior = loss_prior(others)
    print(f"- without {train}: {prior.line().split(';')[0]}")
    for level in LEVELS:
      held.setdefault(level, []).extend(
          _scored_with(args.shared, train, args.resamples, level, prior))
  print()
  out_of_set = table(held)
  print(f"\nwall {time.time() - start:.0f}s")
  loo_pooled, loo_cov = out_of_set[(0.95, "prediction")]
  print(f"left-out-set coverage 95%: pooled {loo_pooled:.3f} min {min(loo_cov.values()):.3f} "
        f"max {max(loo_cov.values()):.3f}")
  print(f"real coverage 95%: pooled {pooled:.3f} min {min(cov.values()):.3f} "
        f"max {max(cov.values()):.3f}")


if __name__ == "__main__":
  main()
