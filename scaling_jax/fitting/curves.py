"""Fits on training curves (Choshen et al. 2024): every checkpoint, not final losses.

When config.study.curves names runs (run_selection.py), the study fits Eq. 3, L(N, D), to every
checkpoint of those runs past an early-training cut (min_tokens, min_fraction of
the run's final tokens), predicts each target run's curve, and measures the fit by
ARE, the mean absolute relative error over the target's late checkpoints (the last
late_fraction of its tokens), beside the relative error at its final checkpoint.
A final-only fit on the same runs is reported beside it when it is identifiable.

Intervals come from a cluster bootstrap (laws/cluster.py): whole runs, with their
seeds, are resampled, because checkpoints of one run are not independent. The main
fit also backtests itself by model size (curve_backtest.py). The design and the
report's rows are built in curve_points.py and curve_rows.py.
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

import dataclasses
import types

import numpy as np

from scaling_jax import config_fields
from scaling_jax.fitting import StudyError
from scaling_jax.fitting import curve_backtest
from scaling_jax.fitting import curve_points
from scaling_jax.fitting import curve_rows
from scaling_jax.fitting import law_settings
from scaling_jax.fitting import objectives as objectives_lib
from scaling_jax.fitting import points as points_lib
from scaling_jax.fitting import run_selection
from scaling_jax.laws import backtest as backtest_lib
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
  # The main fit's backtest by size (curve_backtest.py; None for a borrowed fit or
  # a final-point study's comparison) and the growth config.study.extrapolation
  # picked for the prediction intervals.
  backtest: backtest_lib.Backtest | None = None
  extrapolation_growth: float = pi_lib.LOSS_PRIOR.growth
  extrapolation: str = "prior"  # config.study.extrapolation


def _chosen(runs, names, what) -> dict[str, list[dict]]:
  missing = [n for n in names if n not in runs]
  if missing:
    raise StudyError(f"config field 'study.curves.{what}' names run(s) {missing} that "
                     f"are not in the runs table; runs there: "
                     f"{sorted(runs)[:20]}{' ...' if len(runs) > 20 else ''}")
  return {n: runs[n] for n in names}


def _fit(runs, study, final_only: bool, label: str, kind: str = "curves") -> CurveLawFit:
  x, y, w, clusters, _ = curve_points.design(runs, study, final_only)
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
  x, y, w, clusters, _ = curve_points.design(runs, study, False)
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
  runs = curve_points.by_run(points_lib.of_dataset(source_rows, study.dataset))
  fit_names, target_names = run_selection.select(runs, study.curves, study.val_set)
  return _fit_runs(runs, study, fit_names, target_names, borrow=bool(study.curves.borrow))


def _fit_runs(runs_by_name, study, fit_names, target_names, borrow: bool,
              kind: str = "curves") -> CurveFit:
  """Eq. 3 on every checkpoint of the runs `fit_names` of `runs_by_name`
  (curve_points.by_run of the study's dataset), predicting `target_names`;
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
    clusters = {curve_points.cluster_key(fit_runs[name]) for name in law_fit.runs
                if name in fit_runs}
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
  # The main fit's inputs (a borrowed fit's too) and its runs' noise about it.
  fit_x, _, _, _, fit_names = curve_points.design(fit_runs, study, False)
  noise = curve_rows.run_noise(fit_runs, main, study)
  backtest = None
  if main.result is not None and kind == "curves":
    backtest = curve_backtest.backtest(main.result, fit_names, noise.sigma)
    notes += backtest_lib.rejection_notes(backtest, study.extrapolation, pi_lib.LOSS_PRIOR,
                                          "summary: Backtest")
  growth = backtest_lib.growth_used(backtest, study.extrapolation, pi_lib.LOSS_PRIOR)
  shown = dict(fit_runs, **targets)
  budget = float(study.budget_flops) or max(
      cps[-1].get("flops") or runs_table.training_flops(cps[-1]["N"], cps[-1]["tokens"])
      for cps in targets.values())
  # (Invalid replicates are NaN rows already, which the interval leaves out.)
  optimal = predict_lib.allocation(forms.CHINCHILLA, main.params, main.replicates.params,
                                   budget, level)
  return CurveFit(
      law=forms.CHINCHILLA, level=level, val_set=study.val_set, fits=fits,
      checkpoints=curve_rows.checkpoint_rows(shown, fit_runs, main, study, level, noise,
                                             fit_x, growth),
      targets=[row for name, cps in targets.items()
               for row in curve_rows.target_rows(name, cps, fits, study, level)],
      seed_spread=curve_rows.seed_spread(runs_by_name, study.val_set), notes=notes,
      objectives=comparison, compute_optimal=optimal, backtest=backtest,
      extrapolation_growth=growth, extrapolation=study.extrapolation)


def beside_final(source_rows, study, loss_design, targets) -> tuple["CurveFit | None", str]:
  """The all-checkpoint fit of a final-point study's loss design, for comparison.

  Fits Eq. 3 on every checkpoint of the runs behind the loss design ('model@M'
  points) and predicts the runs behind its measured targets; returns (fit, '') or
  (None, why not). Sources with one checkpoint per run have no curves to fit.
  """
  design = {points_lib.parse_point(p) for p in loss_design}
  targets = {points_lib.parse_point(p) for p in targets}
  rows = points_lib.of_dataset(source_rows, study.dataset)
  by_run = curve_points.by_run(rows)
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
