"""The run advisor's retrospective (issue 11): replay one training set's released
runs in the order each strategy would have trained them, refit after every run,
and record how well the held-out targets are predicted.

Input: `Runs`, arrays over the released runs of ONE training set (from runs-table
rows with `Runs.from_rows`: loss from loss/<val_set>, error from an 'err' column,
e.g. the one points.point_rows adds; NaN where a run has none).

Every replay starts from the two smallest sizes at M = 20 and adds one run at a
time from the rest (targets excluded) until the pool is empty or `max_flops` is
spent; `min_multiplier` drops runs below it from the pool (the paper finds M = 5
breaks the trend). Strategies:
  advisor  laws.advise, one run at a time, criterion 'both' (loss and chained error,
           relative variances) once both laws are fitted, 'loss' before; candidates
           compared at the spend left to max_flops (none fits: the replay ends).
           Before Eq. 4 can be fitted it linearises at DESIGN_PRIOR (Chinchilla's
           published law, not these data) with a weak prior, so advice exists from
           the first step.
  random   a uniformly random order, one trial per seed.
  compute  cheapest run first.
  paper    the paper's Table 1 loss design (four smallest sizes at M = 20, the
           smallest at M = 320), evaluated once; here the error law is fitted on
           the same five runs, since the 1.4B run is the target.
After each addition Eq. 4 (and Eq. 5, on the runs' observed losses and errors) is
refitted and bootstrapped with the project's defaults (residual_t); a fit needs
one residual degree of freedom (5 runs for Eq. 4, 4 for Eq. 5): before that the
record holds NaN.

Records (dicts): train, strategy, trial, step, run_added, cum_flops, target, metric
('loss' or 'err'), pred, true, rel_err, lo, hi (the 95% interval).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import ml_collections
import numpy as np

from scaling_jax.fitting import StudyError
from scaling_jax.fitting import points
from scaling_jax.laws import advise as advise_lib
from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms
from scaling_jax.laws import predict as predict_lib
from scaling_jax.runs import table as runs_table

STRATEGIES = ("advisor", "random", "compute", "paper")
# Chinchilla's Approach 3 fit (Hoffmann et al. 2022: E 1.69, A 406.4, B 410.7,
# alpha 0.34, beta 0.28) as Eq. 4 with eta = (alpha + beta) / 4, a = A 6^eta,
# b = B 6^eta: a guess from outside these data, used only until Eq. 4 can be fitted.
_ETA = (0.34 + 0.28) / 4
DESIGN_PRIOR = np.array([1.69, 406.4 * 6**_ETA, 410.7 * 6**_ETA, _ETA])
PRIOR_SIGMA = 0.02  # nats: the loss noise assumed before any residual exists
# Prior sd as a multiple of each parameter's magnitude: weak enough that the runs
# decide once they can, strong enough to keep a direction they leave open finite.
PRIOR_SCALE = 10.0


@dataclasses.dataclass(frozen=True)
class Runs:
  """The released runs of one training set, one entry per run."""
  names: tuple[str, ...]
  N: np.ndarray
  M: np.ndarray
  flops: np.ndarray
  loss: np.ndarray
  err: np.ndarray   # NaN where a run has no error measurement

  @classmethod
  def from_rows(cls, rows: Sequence[dict], val_set: str = "c4_val") -> "Runs":
    key = runs_table.LOSS_PREFIX + val_set
    missing = [r["run"] for r in rows if key not in r]
    if missing:
      raise ValueError(f"runs {missing} have no {key!r}; pick another val_set")
    column = lambda name, rs=rows: np.array([float(r.get(name, np.nan)) for r in rs])
    return cls(tuple(r["run"] for r in rows), column("N"), column("M"), column("flops"),
               column(key), column("err"))


def default_config() -> ml_collections.ConfigDict:
  """config.study.retrospective: replay the study's runs in each strategy's order
  (this module); for released data, where every run exists."""
  return ml_collections.ConfigDict(dict(
      enabled=False,
      strategies="advisor,random,compute,paper",
      random_trials=20,     # random orders, one seed each
      num_resamples=400,    # per refit: every step of every replay is bootstrapped
      # An extra advisor replay held to this share of the paper design's FLOPs
      # (0: none): the question 'as good for half the compute?' needs its budget.
      advisor_budget_share=0.5,
      # Replays stop at this multiple of the paper design's FLOPs (0: when the pool
      # is empty): beyond it no strategy is cheaper than the paper design anyway.
      max_flops_share=2.0,
      # Runs below this M leave the pool: the paper finds M = 5 off the trend, and
      # with them every strategy did worse (the advisor likes their low cost).
      min_multiplier=10.0,
      seed=0,
  ))


def check(cfg) -> None:
  """Value checks of config.study.retrospective when enabled, before the study's
  fit: the replay reads them only after it (a minute and more on the testbed)."""
  if not cfg.enabled:
    return
  field = "config field 'study.retrospective.{}'".format
  unknown = [s for s in points.names(cfg.strategies) if s not in STRATEGIES]
  if unknown or not points.names(cfg.strategies):
    raise StudyError(f"{field('strategies')} is {cfg.strategies!r}; use some "
                     f"of {','.join(STRATEGIES)}")
  problem = bootstrap_lib.resamples_problem(cfg.num_resamples, field("num_resamples"))
  if problem:
    raise StudyError(problem)
  # The random strategy's summary is a median over its trials: it needs one.
  if not isinstance(cfg.random_trials, int) or cfg.random_trials < 1:
    raise StudyError(f"{field('random_trials')} is {cfg.random_trials!r}; use "
                     f"a number of random orders >= 1 (20 is the default)")
  for name in ("advisor_budget_share", "max_flops_share", "min_multiplier"):
    value = cfg[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
      raise StudyError(f"{field(name)} is {value!r}; use a number >= 0 "
                       f"(0 turns it off)")


def default_roles(runs: Runs) -> tuple[list[int], list[int], list[int]]:
  """(targets, start, paper): the largest size's runs; the two smallest sizes at
  M = 20; the four smallest at M = 20 plus the smallest at M = 320."""
  sizes = np.unique(runs.N)
  at = lambda n, m: [i for i in range(len(runs.N)) if runs.N[i] == n and runs.M[i] == m]
  targets = [i for i in range(len(runs.N)) if runs.N[i] == sizes[-1]]
  start = [i for n in sizes[:2] for i in at(n, 20.0)]
  paper = [i for n in sizes[:4] for i in at(n, 20.0)] + at(sizes[0], 320.0)
  if len(sizes) < 5 or len(start) != 2 or len(paper) != 5:
    raise ValueError("the default roles need 5+ sizes, the four smallest at M = 20 and "
                     "the smallest at M = 320; pass targets, start and paper")
  return targets, start, paper


@dataclasses.dataclass
class _Fits:
  loss: fit_lib.FitResult | None = None
  err: fit_lib.FitResult | None = None


def _fit_and_boot(law, x, y, num_resamples, seed):
  """Fit + default bootstrap, or None where the runs leave no residual df."""
  if fit_lib.distinct_design_points(law, x) < law.num_params or len(y) <= law.num_params:
    return None
  try:
    result = fit_lib.fit(law, x, y)
  except fit_lib.FitError:
    return None
  return result, bootstrap_lib.bootstrap(result, num_resamples=num_resamples, seed=seed)


def _evaluate(runs: Runs, chosen, targets, num_resamples, seed):
  """(_Fits, {(target, metric): (pred, lo, hi)}) of the laws fitted on `chosen`."""
  idx = np.asarray(chosen)
  x_t = {"C": runs.flops[targets], "M": runs.M[targets]}
  loss = _fit_and_boot(forms.OVERTRAINING, {"C": runs.flops[idx], "M": runs.M[idx]},
                       runs.loss[idx], num_resamples, seed)
  if loss is None:
    return _Fits(), {}
  has_err = idx[np.isfinite(runs.err[idx])]
  err = _fit_and_boot(forms.DOWNSTREAM, {"L": runs.loss[has_err]}, runs.err[has_err],
                      num_resamples, seed)
  if err is None:
    pred = predict_lib.predict(*loss, x_t)
    return _Fits(loss[0]), {(t, "loss"): (pred.value[j], pred.lo[j], pred.hi[j])
                            for j, t in enumerate(targets)}
  lp, ep = predict_lib.predict_chain(*loss, *err, x_t)
  out = {}
  for j, t in enumerate(targets):
    out[t, "loss"] = (lp.value[j], lp.lo[j], lp.hi[j])
    out[t, "err"] = (ep.value[j], ep.lo[j], ep.hi[j])
  return _Fits(loss[0], err[0]), out


def _records(runs, predictions, targets, **fields) -> list[dict]:
  out = []
  for t in targets:
    for metric, truth in (("loss", runs.loss[t]), ("err", runs.err[t])):
      if metric == "err" and not np.isfinite(truth):
        continue
      pred, lo, hi = predictions.get((t, metric), (np.nan,) * 3)
      out.append(dict(fields, target=runs.names[t], metric=metric, pred=float(pred),
                      true=float(truth), rel_err=float(abs(pred - truth) / abs(truth)),
                      lo=float(lo), hi=float(hi)))
  return out


def _prior_design(runs: Runs, chosen) -> advise_lib.Design:
  """Eq. 4 linearised at DESIGN_PRIOR over the runs so far, before any fit exists."""
  idx = np.asarray(chosen)
  return advise_lib.Design(forms.OVERTRAINING, DESIGN_PRIOR,
                           {"C": runs.flops[idx], "M": runs.M[idx]}, np.ones(len(idx)),
                           PRIOR_SIGMA, np.inf, PRIOR_SCALE * np.abs(DESIGN_PRIOR))


def advisor_pick(runs: Runs, chosen, pool, target: int, fits: _Fits,
                 budget: float | None = None) -> int | None:
  """The run of `pool` the advisor would train next; None when none fits `budget`
  (the FLOPs left; candidates are compared at that spend, see laws.advise)."""
  pool = [i for i in pool if budget is None or runs.flops[i] <= budget]
  if not pool:
    return None
  candidates = {"N": runs.N[pool], "M": runs.M[pool], "flops": runs.flops[pool]}
  goal = (runs.N[target], runs.M[target])
  if fits.loss is None:
    advice = advise_lib.advise(_prior_design(runs, chosen), candidates, goal, budget)
  else:
    loss = advise_lib.design_of(fits.loss, prior_sd=PRIOR_SCALE * np.abs(fits.loss.params))
    try:
      advice = advise_lib.advise(loss, candidates, goal, budget, err_fit=fits.err)
    except ValueError:  # the error law's runs leave a direction open: loss alone
      advice = advise_lib.advise(loss, candidates, goal, budget)
  best = advice.batch[0]
  return next(i for i in pool if runs.N[i] == best.N and runs.M[i] == best.M
              and runs.flops[i] == best.flops)


def replay(runs: Runs, strategy: str, *, targets, start, trial: int = 0, seed: int = 0,
           max_flops: float | None = None, num_resamples: int = 1000,
           min_multiplier: float = 0.0, train: str = "", label: str = "") -> list[dict]:
  """One strategy's trajectory from `start`: a record set after every run added.
  `label` names the strategy in the records (default: the strategy)."""
  pool = [i for i in range(len(runs.N)) if i not in set(targets) | set(start)
          and runs.M[i] >= min_multiplier]
  rng = np.random.default_rng([seed, trial])
  if strategy == "random":
    pool = [int(i) for i in rng.permutation(pool)]
  elif strategy == "compute":
    pool = sorted(pool, key=lambda i: runs.flops[i])
  elif strategy != "advisor":
    raise ValueError(f"unknown strategy {strategy!r}; use one of {STRATEGIES}")
  chosen, records, added = list(start), [], ""
  while True:
    fits, predictions = _evaluate(runs, chosen, targets, num_resamples, seed)
    records += _records(runs, predictions, targets, train=train,
                        strategy=label or strategy, trial=trial, step=len(chosen) - len(start), run_added=added,
                        cum_flops=float(runs.flops[chosen].sum()))
    spent = runs.flops[chosen].sum()
    if not pool or (max_flops is not None and spent >= max_flops):
      return records
    nxt = pool[0] if strategy != "advisor" else advisor_pick(
        runs, chosen, pool, targets[0], fits, None if max_flops is None else max_flops - spent)
    if nxt is None:
      return records
    pool.remove(nxt)
    chosen.append(nxt)
    added = runs.names[nxt]


def retrospective(runs: Runs, train: str = "", *, strategies=STRATEGIES,
                  num_random: int = 20, max_flops: float | None = None,
                  num_resamples: int = 1000, min_multiplier: float = 0.0, seed: int = 0,
                  advisor_budgets=(), targets=None, start=None, paper=None) -> list[dict]:
  """Every strategy's records on one training set (roles default to default_roles).

  Each of `advisor_budgets` adds an advisor replay held to that many FLOPs in all
  (start included), labelled 'advisor@<budget>': the advisor spends what it is
  given, so the question 'as good on half the FLOPs?' needs its own budget.
  """
  roles = default_roles(runs) if None in (targets, start, paper) else (None,) * 3
  targets = roles[0] if targets is None else list(targets)
  start = roles[1] if start is None else list(start)
  paper = roles[2] if paper is None else list(paper)
  records = []
  for strategy in strategies:
    if strategy == "paper":
      _, predictions = _evaluate(runs, paper, targets, num_resamples, seed)
      records += _records(runs, predictions, targets, train=train, strategy="paper",
                          trial=0, step=0, run_added="",
                          cum_flops=float(runs.flops[paper].sum()))
      continue
    for trial in range(num_random if strategy == "random" else 1):
      records += replay(runs, strategy, targets=targets, start=start, trial=trial,
                        seed=seed, max_flops=max_flops, num_resamples=num_resamples,
                        min_multiplier=min_multiplier, train=train)
  for budget in advisor_budgets:
    records += replay(runs, "advisor", targets=targets, start=start, seed=seed,
                      max_flops=budget, num_resamples=num_resamples,
                      min_multiplier=min_multiplier, train=train,
                      label=f"advisor@{budget:.3g}")
  return records


def _first(records, ok) -> float:
  """Cumulative FLOPs at the first record meeting `ok` (inf if none)."""
  hits = [r["cum_flops"] for r in records if ok(r)]
  return min(hits) if hits else np.inf


def _stable(records, ok) -> float:
  """Cumulative FLOPs from which every later record of the trajectory meets `ok`."""
  flops = np.inf
  for r in sorted(records, key=lambda r: -r["step"]):
    if not ok(r):
      break
    flops = r["cum_flops"]
  return flops


def summarize(records: Sequence[dict]) -> list[dict]:
  """Per (train, target, metric, strategy): the FLOPs to match the paper design's
  relative error ('accuracy'), its interval width ('width'), and both; for 'both'
  also from which point on it keeps matching ('both_stable'). Random: the median
  over trials (inf when most never match) and the share of trials that match."""
  out = []
  papers = [r for r in records if r["strategy"] == "paper"]
  for p in papers:
    width = p["hi"] - p["lo"]
    tests = {"accuracy": lambda r: r["rel_err"] <= p["rel_err"],
             "width": lambda r: r["hi"] - r["lo"] <= width}
    tests["both"] = lambda r: tests["accuracy"](r) and tests["width"](r)
    same = [r for r in records if (r["train"], r["target"], r["metric"]) ==
            (p["train"], p["target"], p["metric"]) and r["strategy"] != "paper"]
    for strategy in sorted({r["strategy"] for r in same}):
      trials = sorted({r["trial"] for r in same if r["strategy"] == strategy})
      per_trial = [[r for r in same if r["strategy"] == strategy and r["trial"] == t]
                   for t in trials]
      row = dict(train=p["train"], target=p["target"], metric=p["metric"],
                 strategy=strategy, trials=len(trials), paper_flops=p["cum_flops"],
                 paper_rel_err=p["rel_err"], paper_width=width)
      for name, ok in tests.items():
        row[f"flops_{name}"] = float(np.median([_first(rs, ok) for rs in per_trial]))
      both = [_stable(rs, tests["both"]) for rs in per_trial]
      row["flops_both_stable"] = float(np.median(both))
      row["share_matching"] = float(np.mean([_first(rs, tests["both"]) < np.inf
                                             for rs in per_trial]))
      out.append(row)
  return out
