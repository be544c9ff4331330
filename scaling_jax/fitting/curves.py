"""Fits on training curves (Choshen et al. 2024): every checkpoint, not final losses.

When config.study.curves names runs (run_selection.py), the study fits Eq. 3, L(N, D), to every
checkpoint of those runs past an early-training cut (min_tokens, min_fraction of
the run's final tokens), predicts each target run's curve, and measures the fit by
ARE, the mean absolute relative error over the target's late checkpoints (the last
late_fraction of its tokens), beside the relative error at its final checkpoint.
A final-only fit on the same runs is reported beside it when it is identifiable.

Intervals come from a cluster bootstrap (laws/cluster.py): whole runs, with their
seeds, are resampled, because checkpoints of one run are not independent.
Borrowed parameters: `borrow` names the parameters to fix (every exponent, and
optionally E); their values come from a fit of `borrow_from` runs in the same call
(their bootstrap replicates carry the donor's uncertainty) or from `borrow_values`.

A checkpoint mid-way through a cosine schedule is not the loss a run of that many
tokens would reach: its learning rate has not decayed yet, so mid-run losses sit
above the compute-matched final losses. The early-training cut and the late-
checkpoint ARE are the guide's answers to that; a law fitted to curves describes
these runs' trajectories, and its D term is only approximately Eq. 3's.
"""
from __future__ import annotations

import collections
import dataclasses
import types

import numpy as np

from scaling_jax import config_fields
from scaling_jax.fitting import StudyError
from scaling_jax.fitting import law_settings
from scaling_jax.fitting import objectives as objectives_lib
from scaling_jax.fitting import points as points_lib
from scaling_jax.fitting import run_selection
from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import cluster
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms
from scaling_jax.laws import predict as predict_lib
from scaling_jax.laws import prediction_interval as pi_lib
from scaling_jax.laws import sanity
from scaling_jax.runs import table as runs_table

WEIGHTINGS = ("checkpoint", "run")
# Below this many runs a cluster bootstrap mostly redraws the same few runs (and
# drops resamples with too few sizes to fit): benchmarks/calibration.py measured
# its 95% intervals covering 0.76-0.95 with 5 runs of 4 sizes (design curves5) and
# 0.96-0.98 with 8 runs of 6 sizes (curves); side runs: 0.90-0.99 with 6 runs of 4
# sizes, 0.93-0.99 with 8 runs of 4 sizes.
MIN_CLUSTERS = 8
CURVE_LAWS = ("chinchilla",)


def default_config():
  """config.study.curves (see the module docstring); empty fit_runs: no curve fit."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  return ml_collections.ConfigDict(dict(
      # Runs to fit on every checkpoint of: names (comma-separated) and/or a
      # condition on each run's final checkpoint (run_selection.py, e.g.
      # 'flops <= 1e20'); with neither, every run that is not a target.
      fit_runs="",
      fit_where="",
      # Runs whose curves are predicted: names and/or a condition ('flops == max').
      # Setting any of these four fields makes the study a curve fit.
      targets="",
      targets_where="",
      law="chinchilla",  # Eq. 3 on (N, D = tokens)
      min_tokens=0.0,  # drop checkpoints before this many tokens (the guide: 1e10)
      min_fraction=0.0,  # and before this fraction of each run's final tokens
      late_fraction=0.3,  # ARE over each target's checkpoints in its last 30% of tokens
      weighting="checkpoint",  # 'run': each run weighs 1 in all, however many points
      borrow="",  # e.g. 'alpha,beta' or 'alpha,beta,E': parameters fixed, not fitted
      borrow_from="",  # comma-separated donor runs fitted in the same call, or ...
      borrow_values="",  # ... 'alpha=0.34,beta=0.28' given values
  ))


@dataclasses.dataclass
class CurveLawFit:
  result: fit_lib.FitResult | None  # None for a borrowed fit (no solver run)
  params: np.ndarray                # [P] point estimate
  replicates: cluster.Replicates
  runs: list[str]
  num_points: int
  how: str                          # one line: what was fitted on what

  def param_intervals(self, level: float) -> dict[str, dict[str, float]]:
    """{name: value, lo, hi, se}: se is the valid replicates' standard deviation."""
    valid = self.replicates.params[self.replicates.valid]
    lo, hi = bootstrap_lib.interval(valid, level)
    se = np.std(valid, axis=0, ddof=1) if len(valid) > 1 else np.full(len(self.params), np.nan)
    return {n: {"value": float(self.params[i]), "lo": float(lo[i]), "hi": float(hi[i]),
                "se": float(se[i])}
            for i, n in enumerate(forms.CHINCHILLA.param_names)}


@dataclasses.dataclass
class CurveFit:
  law: forms.Law
  level: float
  val_set: str
  fits: dict[str, CurveLawFit]      # 'all checkpoints', 'final only', 'borrowed'
  checkpoints: list[dict]           # one per checkpoint of every chosen run
  targets: list[dict]               # per target run and fit: ARE, final rel. error
  seed_spread: list[dict]           # clusters with several seeds: their final spread
  notes: list[str] = dataclasses.field(default_factory=list)
  task_rule: str = "curve fit: no downstream law"
  # The main fit refitted by the other objective (fitting/objectives.py); None for
  # a borrowed fit (its free parameters are linear: no exponent to compare).
  objectives: objectives_lib.Comparison | None = None
  # The main fit's N*, D* and D/N at study.budget_flops (else the largest target's
  # final FLOPs), intervals from its replicates; None if no law was fitted.
  compute_optimal: predict_lib.ComputeOptimal | None = None


def _by_run(rows) -> dict[str, list[dict]]:
  runs = collections.defaultdict(list)
  for row in rows:
    runs[row["run"]].append(row)
  return {k: sorted(v, key=lambda r: r["tokens"]) for k, v in runs.items()}


def _cluster_key(checkpoints: list[dict]) -> str:
  """Runs that differ only in seed share a cluster."""
  last = checkpoints[-1]
  return f"{last.get('dataset')}|{last.get('model')}|{last['N']}|{last['tokens']}"


def _loss(row, val_set) -> float:
  return points_lib.loss_of(row, val_set)


def _chosen(runs, names, what) -> dict[str, list[dict]]:
  missing = [n for n in names if n not in runs]
  if missing:
    raise StudyError(f"config field 'study.curves.{what}' names run(s) {missing} that "
                     f"are not in the runs table; runs there: "
                     f"{sorted(runs)[:20]}{' ...' if len(runs) > 20 else ''}")
  return {n: runs[n] for n in names}


def _cut(checkpoints, study) -> list[dict]:
  final = checkpoints[-1]["tokens"]
  return [r for r in checkpoints if r["tokens"] >= study.curves.min_tokens
          and r["tokens"] >= study.curves.min_fraction * final]


def _design(runs: dict[str, list[dict]], study, final_only: bool):
  """(x, y, weights, clusters, run of each point) of the chosen runs' checkpoints."""
  points, weights = [], []
  for name, checkpoints in runs.items():
    kept = checkpoints[-1:] if final_only else _cut(checkpoints, study)
    if not kept:
      raise StudyError(
          f"run {name!r} has no checkpoint left after the early-training cut "
          f"(study.curves.min_tokens={study.curves.min_tokens:g}, "
          f"study.curves.min_fraction={study.curves.min_fraction:g}; its last is at "
          f"{checkpoints[-1]['tokens']:.3g} tokens)")
    points += [(name, r) for r in kept]
    weights += [1.0 / len(kept) if study.curves.weighting == "run" else 1.0] * len(kept)
  x = {"N": np.array([r["N"] for _, r in points], float),
       "D": np.array([r["tokens"] for _, r in points], float)}
  y = np.array([_loss(r, study.val_set) for _, r in points])
  clusters = [_cluster_key(runs[name]) for name, _ in points]
  return x, y, np.array(weights), clusters, [name for name, _ in points]


def _fit(runs, study, final_only: bool, label: str, kind: str = "curves") -> CurveLawFit:
  x, y, w, clusters, _ = _design(runs, study, final_only)
  sizes = len(np.unique(x["N"]))
  if sizes < 3 and not final_only:
    # E + A N^-alpha takes one value per size: fewer than three sizes cannot pin
    # E, A and alpha down, however many checkpoints each run has.
    raise StudyError(
        f"{label} fit: the runs {sorted(runs)} have {sizes} model size(s); Eq. 3 needs "
        f"3 or more to determine E, A and alpha. Add runs of other sizes, or borrow "
        f"the exponents: --config.study.curves.borrow=alpha,beta with "
        f"study.curves.borrow_from (runs of another family) or study.curves.borrow_values")
  lengths = len(np.unique(x["D"]))
  if lengths < 3:
    # B D^-beta likewise takes one value per token count: with one (a suite trained
    # on one budget, fitted on final points) it is indistinguishable from E.
    raise StudyError(
        f"{label} fit: its {len(y)} points have {lengths} token count(s); Eq. 3 "
        f"needs 3 or more to determine B and beta. Fit every checkpoint (the "
        f"'all checkpoints' fit), add runs of other lengths, or borrow beta: "
        f"--config.study.curves.borrow=beta with study.curves.borrow_values")
  settings = law_settings.fit_settings(study, kind)
  try:
    result = fit_lib.fit(forms.CHINCHILLA, x, y, weights=w, settings=settings)
  except fit_lib.FitError as e:
    raise StudyError(f"{label} fit of {forms.CHINCHILLA.formula} on runs "
                     f"{sorted(runs)}: {e}") from None
  reps = cluster.cluster_bootstrap(result, clusters,
                                   num_resamples=study.bootstrap.num_resamples,
                                   seed=study.bootstrap.seed)
  return CurveLawFit(result, result.params, reps, sorted(runs), len(y),
                     f"{label}: {len(y)} checkpoints of {len(runs)} runs")


def _borrowed_values(study, runs_by_name, num_resamples) -> tuple[dict, str]:
  """{name: values [B+1]} (point first, then replicates) and where they came from."""
  names = points_lib.names(study.curves.borrow)
  if study.curves.borrow_from:
    donors = _chosen(runs_by_name, points_lib.names(study.curves.borrow_from), "borrow_from")
    donor = _fit(donors, study, False, "donor")
    index = {n: forms.CHINCHILLA.param_names.index(n) for n in names}
    values = {n: np.concatenate([[donor.params[i]], donor.replicates.params[:, i]])
              for n, i in index.items()}
    return values, f"from the fit of {', '.join(donor.runs)} ({donor.how})"
  given = {}
  for item in points_lib.names(study.curves.borrow_values):
    key, _, value = item.partition("=")
    given[key.strip()] = float(value)
  missing = [n for n in names if n not in given]
  if missing:
    raise StudyError(f"study.curves.borrow names {missing}, but neither "
                     f"study.curves.borrow_from nor study.curves.borrow_values gives them")
  return ({n: np.full(num_resamples + 1, given[n]) for n in names},
          f"given ({study.curves.borrow_values})")


def _borrowed_fit(runs, study, runs_by_name) -> CurveLawFit:
  x, y, w, clusters, _ = _design(runs, study, False)
  b = study.bootstrap.num_resamples
  values, source = _borrowed_values(study, runs_by_name, b)
  weights = np.concatenate([w[None], cluster.cluster_weights(clusters, b,
                                                             study.bootstrap.seed) * w])
  try:
    params = cluster.fixed_fit(forms.CHINCHILLA, values, x,
                               np.broadcast_to(y, weights.shape), weights)
  except ValueError as e:
    raise StudyError(f"config field 'study.curves.borrow': {e}") from None
  valid = np.all(np.isfinite(params[1:]), axis=1)
  reps = cluster.Replicates(np.where(valid[:, None], params[1:], np.nan), valid,
                            "cluster, with the donor's replicates")
  return CurveLawFit(None, params[0], reps, sorted(runs), len(y),
                     f"borrowed {study.curves.borrow} {source}; {len(y)} checkpoints of "
                     f"{len(runs)} runs")


def _target_rows(name, checkpoints, fits, study, level) -> list[dict]:
  x = {"N": np.array([r["N"] for r in checkpoints], float),
       "D": np.array([r["tokens"] for r in checkpoints], float)}
  true = np.array([_loss(r, study.val_set) for r in checkpoints])
  late_from = (1 - study.curves.late_fraction) * checkpoints[-1]["tokens"]
  late = np.array([r["tokens"] >= late_from for r in checkpoints])
  out = []
  for label, law_fit in fits.items():
    point = predict_lib.law_samples(forms.CHINCHILLA, law_fit.params[None], x)[0]
    reps = predict_lib.law_samples(forms.CHINCHILLA, law_fit.replicates.params, x)
    are_reps = np.mean(np.abs(reps[:, late] - true[late]) / true[late], axis=1)
    valid = are_reps[law_fit.replicates.valid]
    # No valid resample (a law its resamples cannot identify): no interval, not a crash.
    lo, hi = (bootstrap_lib.interval(valid, level) if len(valid)
              else (float("nan"), float("nan")))
    out.append({"run": name, "fit": label, "N": checkpoints[-1]["N"],
                "final_tokens": checkpoints[-1]["tokens"], "late_checkpoints": int(late.sum()),
                "are": float(np.mean(np.abs(point[late] - true[late]) / true[late])),
                "are_lo": float(lo), "are_hi": float(hi),
                "final_rel_err": float(abs(point[-1] - true[-1]) / true[-1])})
  return out


def _run_noise(fit_runs, main: CurveLawFit, study) -> pi_lib.RunNoise:
  """One run's noise about the curve law: the spread of the fit runs' mean relative
  offsets (a run's checkpoints share its luck), pooled with the prior. E, A and
  alpha absorb up to three sizes' offsets, so the offsets carry clusters - 3 df."""
  offsets = {}
  for name, checkpoints in fit_runs.items():
    kept = _cut(checkpoints, study)
    x = {"N": np.array([r["N"] for r in kept], float),
         "D": np.array([r["tokens"] for r in kept], float)}
    point = predict_lib.law_samples(forms.CHINCHILLA, main.params[None], x)[0]
    true = np.array([_loss(r, study.val_set) for r in kept])
    offsets.setdefault(_cluster_key(checkpoints), []).append(np.mean(np.log(true / point)))
  per_cluster = np.array([np.mean(v) for v in offsets.values()])
  df = len(per_cluster) - 3
  sigma = float(np.sqrt(np.sum(per_cluster**2) / df)) if df >= 1 else 0.0
  return pi_lib.pooled_noise(sigma, max(df, 0), pi_lib.LOSS_PRIOR,
                             f"the offsets of {len(per_cluster)} fit runs' curves")


def _checkpoint_rows(runs, fit_runs, main: CurveLawFit, study, level) -> list[dict]:
  """One row per checkpoint: the law's prediction with its `prediction` interval
  (loss_lo, loss_hi: one run's checkpoint there) and its `mean` interval."""
  rows = []
  noise = _run_noise(fit_runs, main, study)
  fit_x = _design(fit_runs, study, False)[0]
  rng = np.random.default_rng([study.bootstrap.seed, 0x4355])  # 'CU'
  for name, checkpoints in runs.items():
    x = {"N": np.array([r["N"] for r in checkpoints], float),
         "D": np.array([r["tokens"] for r in checkpoints], float)}
    point = predict_lib.law_samples(forms.CHINCHILLA, main.params[None], x)[0]
    reps = predict_lib.law_samples(forms.CHINCHILLA, main.replicates.params, x)
    lo, hi = bootstrap_lib.interval(reps, level)
    decades = pi_lib.distance(fit_x, x)
    run_lo, run_hi = bootstrap_lib.interval(
        pi_lib.spread_loss(reps, noise, decades, pi_lib.LOSS_PRIOR.growth, rng), level)
    kept = {id(r) for r in _cut(checkpoints, study)} if name in fit_runs else set()
    for i, r in enumerate(checkpoints):
      rows.append({"run": name, "N": r["N"], "tokens": r["tokens"], "step": r["step"],
                   "loss": _loss(r, study.val_set), "loss_pred": float(point[i]),
                   "loss_lo": float(run_lo[i]), "loss_hi": float(run_hi[i]),
                   "loss_mean_lo": float(lo[i]), "loss_mean_hi": float(hi[i]),
                   "extrapolation_decades": float(decades[i]),
                   "used_in_fit": id(r) in kept})
  return rows


def _seed_spread(runs_by_name, val_set) -> list[dict]:
  clusters = collections.defaultdict(list)
  for name, checkpoints in runs_by_name.items():
    clusters[_cluster_key(checkpoints)].append(_loss(checkpoints[-1], val_set))
  return [{"cluster": key.replace("|", " "), "seeds": len(v), "final_loss_mean": float(np.mean(v)),
           "final_loss_sd": float(np.std(v, ddof=1))}
          for key, v in sorted(clusters.items()) if len(v) > 1]


def check(study) -> None:
  """Value checks of config.study.curves (whether or not a curve fit is asked for)."""
  curves = study.curves
  config_fields.require_choice("study.curves.weighting", curves.weighting, WEIGHTINGS,
                               StudyError)
  config_fields.require_choice("study.curves.law", curves.law, CURVE_LAWS, StudyError)
  if not 0 < curves.late_fraction <= 1:
    raise StudyError("config field 'study.curves.late_fraction' must lie in (0, 1]")
  run_selection.parse(curves.fit_where, "study.curves.fit_where")
  run_selection.parse(curves.targets_where, "study.curves.targets_where")
  if (run_selection.requested(curves) and not points_lib.names(curves.targets)
      and not curves.targets_where.strip()):
    raise StudyError("config fields 'study.curves.targets' and '.targets_where' are "
                     "empty; name the run(s) whose curves to predict (comma-separated "
                     "run names) or select them ('flops == max')")


def fit(source_rows, task_baselines, study) -> CurveFit:
  """Curve fits of config.study.curves (see the module docstring)."""
  del task_baselines  # no downstream law on curves yet
  runs = _by_run(points_lib.of_dataset(source_rows, study.dataset))
  fit_names, target_names = run_selection.select(runs, study.curves, study.val_set)
  return _fit_runs(runs, study, fit_names, target_names, borrow=bool(study.curves.borrow))


def _fit_runs(runs_by_name, study, fit_names, target_names, borrow: bool,
              kind: str = "curves") -> CurveFit:
  """Eq. 3 on every checkpoint of the runs `fit_names` of `runs_by_name` (_by_run of
  the study's dataset), predicting `target_names`;
  parameters are borrowed (study.curves.borrow*) when `borrow`. `kind` picks the
  'auto' objective; 'final' (a final-point study's comparison fit) fits by the
  study's own objective and skips the objective comparison."""
  fit_runs = _chosen(runs_by_name, fit_names, "fit_runs")
  targets = _chosen(runs_by_name, target_names, "targets")
  notes, fits = [], {}
  for name in sorted(set(fit_runs) & set(targets)):
    notes.append(f"target {name} is also a fit run: the law was fitted to its "
                 f"checkpoints, so its ARE measures the fit, not a prediction; leave it "
                 f"out of study.curves.fit_runs to test a prediction")
  if borrow:
    fits["borrowed"] = _borrowed_fit(fit_runs, study, runs_by_name)
  else:
    fits["all checkpoints"] = _fit(fit_runs, study, False, "all checkpoints", kind)
    if fits["all checkpoints"].num_points == len(fit_runs):
      # One checkpoint per run after the cut: the final-only fit is the same fit.
      notes.append("final-only fit not made: each fit run has one checkpoint after "
                   "the early-training cut, so it would repeat the all-checkpoints fit")
    else:
      try:
        fits["final only"] = _fit(fit_runs, study, True, "final only", kind)
      except StudyError as e:
        notes.append(f"final-only fit not made: {e}")
  for label, law_fit in fits.items():
    # Seeds of one run form one cluster: it is clusters a resample draws.
    clusters = {_cluster_key(fit_runs[name]) for name in law_fit.runs if name in fit_runs}
    if len(clusters) < MIN_CLUSTERS:
      notes.append(f"{label} fit: its intervals resample only {len(clusters)} runs "
                   f"(seeds of a run count once); a cluster bootstrap needs about "
                   f"{MIN_CLUSTERS} or more to say how uncertain the fit is (measured: "
                   f"benchmarks/calibration.py), so read them as a lower bound")
  for label, law_fit in fits.items():  # a fit against its premise stands, flagged
    named = types.SimpleNamespace(law=forms.CHINCHILLA, named_params=dict(
        zip(forms.CHINCHILLA.param_names, map(float, law_fit.params))))
    notes += [f"{label} fit: {w}" for w in sanity.premise_warnings(named)]
  main = next(iter(fits.values()))
  level = study.bootstrap.level
  for label, law_fit in fits.items():
    if law_fit.result is not None and not law_fit.result.converged:
      maxiter = law_fit.result.settings.maxiter
      notes.append(f"{label} fit: the solver stopped at study.fit.maxiter={maxiter} "
                   f"before converging; raise it (e.g. --config.study.fit.maxiter="
                   f"{4 * maxiter}) and compare")
  comparison = None
  if main.result is not None and kind == "curves":
    comparison = objectives_lib.compare(
        main.result, main.replicates.params, level, study, "curves",
        {name: {"N": cps[-1]["N"], "D": cps[-1]["tokens"]} for name, cps in targets.items()})
    notes += [n for n in [comparison.note(f"{next(iter(fits))} fit")] if n]
  shown = dict(fit_runs, **targets)
  budget = float(study.budget_flops) or max(
      cps[-1].get("flops") or runs_table.training_flops(cps[-1]["N"], cps[-1]["tokens"])
      for cps in targets.values())
  # (Invalid replicates are NaN rows already, which the interval leaves out.)
  optimal = predict_lib.allocation(forms.CHINCHILLA, main.params, main.replicates.params,
                                   budget, level)
  return CurveFit(
      law=forms.CHINCHILLA, level=level, val_set=study.val_set, fits=fits,
      checkpoints=_checkpoint_rows(shown, fit_runs, main, study, level),
      targets=[row for name, cps in targets.items()
               for row in _target_rows(name, cps, fits, study, level)],
      seed_spread=_seed_spread(runs_by_name, study.val_set), notes=notes,
      objectives=comparison, compute_optimal=optimal)


def beside_final(source_rows, study, loss_design, targets) -> tuple["CurveFit | None", str]:
  """The all-checkpoint fit of a final-point study's loss design, for comparison.

  Fits Eq. 3 on every checkpoint of the runs behind the loss design ('model@M'
  points) and predicts the runs behind its measured targets; returns (fit, '') or
  (None, why not). Sources with one checkpoint per run have no curves to fit.
  """
  design = {points_lib.parse_point(p) for p in loss_design}
  targets = {points_lib.parse_point(p) for p in targets}
  rows = points_lib.of_dataset(source_rows, study.dataset)
  by_run = _by_run(rows)
  if all(len(v) == 1 for v in by_run.values()):
    return None, "every run has a single checkpoint"
  key = lambda run: runs_table.run_key(by_run[run][-1])
  fit_runs = [r for r in by_run if key(r) in design]
  target_runs = [r for r in by_run if key(r) in targets]
  if not target_runs:
    return None, "no measured target to compare on"
  try:
    return _fit_runs(by_run, study, fit_runs, target_runs, borrow=False, kind="final"), ""
  except StudyError as e:
    return None, str(e)
