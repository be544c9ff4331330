"""The run advisor inside a study: config.study.advise -> which runs to train next.

  --config.study.advise.budget_flops=3e13   (0: no advice)

After the study's fit, every candidate run (N, M) is scored by how much it is
expected to narrow the target's prediction per FLOP (scaling_jax/laws/advise.py:
delta method at the fitted laws, noise from their residuals), and a greedy batch
that fits the budget is proposed. The report gets advice.csv, an "Advice" section
in summary.md and a plot of the expected interval width against cumulative FLOPs
for the advised order beside cheapest-first and dearest-first orders.

Candidates: `study.advise.candidates` names them as 'model@M' (a model of the runs
table at a new multiplier) or 'N@M'; empty means every model of the fitted rows
at every multiplier in `study.advise.multipliers`.
"""
from __future__ import annotations

import dataclasses
import math
import time

import ml_collections
import numpy as np

from scaling_jax import config_fields
from scaling_jax.fitting import StudyError
from scaling_jax.fitting import points as points_lib
from scaling_jax.fitting import retrospective
from scaling_jax.fitting import study_fit
from scaling_jax.laws import advise as advise_lib
from scaling_jax.laws import advise_check

CSV_COLUMNS = ("rank", "candidate", "N", "M", "flops", "budget_share", "loss_std_before",
               "loss_std_after", "loss_width_after", "err_std_after", "err_width_after",
               "reduction_per_flop", "batch_order", "batch_cum_flops")


def default_config() -> ml_collections.ConfigDict:
  """config.study.advise: the budget for the next runs and where they may go."""
  return ml_collections.ConfigDict(dict(
      budget_flops=0.0,   # FLOPs to spend on the next runs; 0: no advice
      target="",          # 'model@M' or 'N@M'; '' -> the first of study.targets
      candidates="",      # comma-separated 'model@M' / 'N@M'; '' -> the grid below
      multipliers="5,10,20,40,80,160,320,640",
      k=0,                # runs in the batch; 0: as many as fit the budget
      criterion="",       # 'loss', 'error' or 'both'; '' -> both with an error law
      # Own runs: train the advised batch right after the report (its 'model@M'
      # runs, seed 0), then refit; each call of the study adds one advised batch.
      train_next=False,
      # Check the first-order ranking of this many top candidates by simulation
      # (laws/advise.confirm: outcomes drawn from the fit, refitted, bootstrapped)
      confirm_top=3,
  ))


def check(study_cfg) -> None:
  """Value checks of study.advise before any training or fitting: a bad field fails
  in a second, not after an hour of training and a minute of fitting."""
  advise_cfg = study_cfg.advise
  budget = advise_cfg.budget_flops
  if (isinstance(budget, bool) or not isinstance(budget, (int, float))
      or not math.isfinite(budget) or budget < 0):
    raise StudyError(f"config field 'study.advise.budget_flops' is {budget!r}; use a "
                     f"finite positive number of FLOPs, or 0 for no advice")
  if not isinstance(advise_cfg.k, int) or advise_cfg.k < 0:
    raise StudyError(f"config field 'study.advise.k' is {advise_cfg.k!r}; use a "
                     f"number of runs, or 0 for as many as fit the budget")
  config_fields.require_choice("study.advise.criterion", advise_cfg.criterion,
                               ("",) + advise_lib.CRITERIA, StudyError,
                               "'': both with an error law")
  if not isinstance(advise_cfg.confirm_top, int) or advise_cfg.confirm_top < 0:
    raise StudyError(f"config field 'study.advise.confirm_top' is "
                     f"{advise_cfg.confirm_top!r}; use a number of candidates, "
                     f"or 0 to skip the simulation")
  if not isinstance(advise_cfg.train_next, bool):
    raise StudyError(f"config field 'study.advise.train_next' is "
                     f"{advise_cfg.train_next!r}; use True or False")
  for spec in points_lib.names(advise_cfg.candidates) + points_lib.names(advise_cfg.target):
    points_lib.parse_point(spec)
  _multipliers(advise_cfg)
  if budget and not (points_lib.names(advise_cfg.target) or points_lib.names(study_cfg.targets)):
    raise StudyError("study.advise needs a target: set study.advise.target or "
                     "study.targets ('model@M' or 'N@M')")


def check_models(advise_cfg, models, where: str) -> None:
  """Refuses a candidate or target named 'model@M' whose model is not among
  `models` (those of the runs, or those the sweep can train), before any compute."""
  if not advise_cfg.budget_flops:
    return
  for field in ("candidates", "target"):
    for spec in points_lib.names(advise_cfg[field]):
      name, _ = points_lib.parse_point(spec)
      if not _is_number(name) and name not in models:
        raise StudyError(f"config field 'study.advise.{field}' names {spec!r}, but "
                         f"{where} has no model {name!r}; models: {sorted(models)}, or "
                         f"name a size as 'N@M'")


def _is_number(text: str) -> bool:
  try:
    float(text)
  except ValueError:
    return False
  return True


def _multipliers(advise_cfg) -> list[float]:
  try:
    values = [float(m) for m in points_lib.names(advise_cfg.multipliers)]
  except ValueError:
    values = []
  if not values or min(values) <= 0:
    raise StudyError(f"config field 'study.advise.multipliers' is "
                     f"{advise_cfg.multipliers!r}; use positive numbers, e.g. "
                     f"'10,20,40,80'")
  return values


@dataclasses.dataclass
class StudyAdvice:
  target: str                  # the target's label
  budget_flops: float
  criterion: str
  ranked: list[dict]           # CSV_COLUMNS rows, best first
  batch: list[dict]            # the proposed runs, in the order picked
  # name -> [(cumulative FLOPs, expected loss width, expected error width)] for the
  # plot: the advised order and two plain ones, from the same fitted laws
  orders: dict[str, list[tuple[float, float, float]]]
  noise: str                   # one line: the noise the expectation assumes
  # The target's loss now: standard error and the expected 95% width with the
  # t-correction for the loss law's residual df (what the bootstrap reports)
  loss_std_before: float = float("nan")
  loss_width_before: float = float("nan")
  # The top candidates' expected widths beside simulated ones (laws/advise.confirm)
  confirmed: list[dict] = dataclasses.field(default_factory=list)


def _size_of(model: str, points) -> float:
  sizes = {r["N"] for r in points if str(r.get("model")) == model}
  if not sizes:
    raise StudyError(
        f"study.advise: no run of model {model!r} to take its size from; models: "
        f"{sorted({str(r.get('model')) for r in points})}, or name it as 'N@M'")
  return float(sizes.pop())


def _point(spec: str, points) -> tuple[str, float, float]:
  """'model@M' or 'N@M' -> (label, N, M)."""
  name, multiplier = points_lib.parse_point(spec)
  try:
    return spec, float(name), multiplier
  except ValueError:
    return spec, _size_of(name, points), multiplier


def candidates(advise_cfg, points) -> list[tuple[str, float, float]]:
  """(label, N, M) of every candidate run."""
  if points_lib.names(advise_cfg.candidates):
    return [_point(s, points) for s in points_lib.names(advise_cfg.candidates)]
  models = sorted({(r["N"], str(r.get("model"))) for r in points})
  return [(f"{model}@{m:g}", n, m) for n, model in models for m in _multipliers(advise_cfg)]


def _order_curve(law_fits, target, cands, order, criterion) -> list[tuple[float, float, float]]:
  """Expected widths after each run of `order` (indices into cands), no budget."""
  chosen = {"N": [cands[i][1] for i in order], "M": [cands[i][2] for i in order]}
  loss, error = law_fits
  curve = []
  # One candidate at a time with k = 1 ranks it alone; feeding the order one by one
  # through a batch of exactly those candidates gives the widths along it.
  for stop in range(1, len(order) + 1):
    sub = {k: v[:stop] for k, v in chosen.items()}
    advice = advise_lib.advise(loss, sub, target, None, err_fit=error, k=stop,
                               criterion=criterion)
    last = advice.batch[-1]
    curve.append((last.cum_flops, last.loss_width, last.err_width))
  return curve


def advise(study_cfg, fit: study_fit.StudyFit) -> StudyAdvice:
  """Advice for the fitted study (fit.loss / fit.error) per study_cfg.advise."""
  cfg = study_cfg.advise
  target_spec = (points_lib.names(cfg.target) or points_lib.names(study_cfg.targets) or [""])[0]
  if not target_spec:
    raise StudyError("study.advise needs a target: set study.advise.target or "
                     "study.targets ('model@M' or 'N@M')")
  label, t_n, t_m = _point(target_spec, fit.rows)
  cands = candidates(cfg, fit.rows)
  table = {"N": np.array([c[1] for c in cands]), "M": np.array([c[2] for c in cands])}
  error = fit.error.result if fit.error is not None else None
  criterion = cfg.criterion or None
  try:
    advice = advise_lib.advise(fit.loss.result, table, (t_n, t_m), cfg.budget_flops,
                               err_fit=error, k=cfg.k or None, criterion=criterion)
  except ValueError as e:
    raise StudyError(f"study.advise: {e}") from None
  order = {(c.N, c.M): (i + 1, c.cum_flops) for i, c in enumerate(advice.batch)}
  names = {(c[1], c[2]): c[0] for c in cands}
  ranked = [_row(rank + 1, names[(c.N, c.M)], c, order.get((c.N, c.M)))
            for rank, c in enumerate(advice.ranked)]
  # The batch's widths are after that run and the earlier picks (advice.batch), not
  # the run alone (advice.ranked).
  batch = [_row(order[(c.N, c.M)][0], names[(c.N, c.M)], c, order[(c.N, c.M)])
           for c in advice.batch]
  # The advised order's widths are the batch's own; the plain orders', as many runs
  # long, are worked out along them.
  curves = {"advised": [(c.cum_flops, c.loss_width, c.err_width) for c in advice.batch]}
  if advice.batch:
    k = len(advice.batch)
    cheap = sorted(range(len(cands)),
                   key=lambda i: advise_lib.six_n_d(cands[i][1], cands[i][2]))[:k]
    for name, plain in (("cheapest first", cheap),
                        ("dearest within budget first",
                         _dearest(cands, cfg.budget_flops, k))):
      if plain:
        curves[name] = _order_curve((fit.loss.result, error), (t_n, t_m), cands, plain,
                                    advice.criterion)
  std = advice.ranked[0].loss_std_before if advice.ranked else float("nan")
  return StudyAdvice(label, float(cfg.budget_flops), advice.criterion, ranked, batch, curves,
                     _noise_line(advice), std, 2 * _t(advice.loss.df) * std,
                     _confirmed(advice, fit, cfg.confirm_top, names,
                                study_cfg.bootstrap.seed))


def _confirmed(advice, fit, top, names, seed) -> list[dict]:
  """The top candidates' delta-method widths beside simulated refits' widths."""
  if not top or not advice.ranked:
    return []
  error = fit.error.result if fit.error is not None else None
  checks = advise_check.confirm(advice, fit.loss.result, err_fit=error, top=top, seed=seed)
  return [{"candidate": names[(c.N, c.M)], "loss_width": c.loss_width,
           "loss_width_sim": c.loss_width_sim, "err_width": c.err_width,
           "err_width_sim": c.err_width_sim, "loss_width_now_sim": c.loss_width_before_sim}
          for c in checks]


def _t(df: float) -> float:
  """95% half-width in standard errors: t on df, normal where sigma was given."""
  from scipy import stats  # pylint: disable=g-import-not-at-top
  return float(stats.norm.ppf(0.975) if np.isinf(df) else stats.t.ppf(0.975, df))


def units(study_advice: StudyAdvice, taken=()) -> tuple[list[dict], list[str]]:
  """Sweep override dicts for the advised batch, and the labels that cannot be
  trained (named by N, not by a model).

  `taken`: (model, M, seed) triples already trained or in the sweep. An advised
  point that exists is a repeat: it gets the first seed not taken, so it is a new
  run and not the finished one the launcher would skip.
  """
  taken = {(str(m), float(t), int(s)) for m, t, s in taken}
  todo, skipped = [], []
  for row in study_advice.batch:
    name, multiplier = points_lib.parse_point(row["candidate"])
    try:
      float(name)
      skipped.append(row["candidate"])
      continue
    except ValueError:
      pass
    seed = next(s for s in range(len(taken) + 1)
                if (name, float(multiplier), s) not in taken)
    taken.add((name, float(multiplier), seed))
    todo.append(dict(model=name, tokens_per_param=float(multiplier), seed=seed))
  return todo, skipped


def _dearest(cands, budget, k) -> list[int]:
  """The k dearest candidates that each fit the budget, dearest first."""
  cost = [advise_lib.six_n_d(c[1], c[2]) for c in cands]
  fitting_ones = [i for i in range(len(cands)) if cost[i] <= budget]
  return sorted(fitting_ones, key=lambda i: -cost[i])[:k]


def _noise_line(advice) -> str:
  def one(name, design):
    if design is None:
      return ""
    where = "given" if np.isinf(design.df) else f"its residuals, {design.df:g} df"
    return f"{name} law sigma {design.sigma:.3g} ({where})"
  return "; ".join(s for s in (one("loss", advice.loss), one("error", advice.err)) if s)


def _row(rank, label, c, picked) -> dict:
  return {"rank": rank, "candidate": label, "N": c.N, "M": c.M, "flops": c.flops,
          "budget_share": c.budget_share, "loss_std_before": c.loss_std_before,
          "loss_std_after": c.loss_std, "loss_width_after": c.loss_width,
          "err_std_after": c.err_std, "err_width_after": c.err_width,
          "reduction_per_flop": c.reduction_per_flop,
          "batch_order": picked[0] if picked else "",
          "batch_cum_flops": picked[1] if picked else ""}


def retrospect(study_cfg, fit: study_fit.StudyFit) -> dict:
  """The advisor's replay on the study's own (released) runs: records and summary.

  Roles come from the runs: targets the largest size's runs, the start the two
  smallest sizes at M = 20, the paper design its Table 1 (retrospective.default_roles).
  """
  cfg = study_cfg.retrospective
  try:
    runs = retrospective.Runs.from_rows(fit.rows, study_cfg.val_set)
    targets, start, paper = retrospective.default_roles(runs)
  except ValueError as e:
    raise StudyError(f"study.retrospective: {e}") from None
  paper_flops = float(runs.flops[paper].sum())
  budgets = (cfg.advisor_budget_share * paper_flops,) if cfg.advisor_budget_share else ()
  records = []
  # One strategy at a time, each timed: a replay refits after every run added.
  for i, strategy in enumerate(points_lib.names(cfg.strategies) + ["budgeted advisor"] *
                               bool(budgets)):
    started = time.time()
    records += retrospective.retrospective(
        runs, study_cfg.dataset,
        strategies=() if strategy == "budgeted advisor" else (strategy,),
        num_random=cfg.random_trials, num_resamples=cfg.num_resamples, seed=cfg.seed,
        max_flops=cfg.max_flops_share * paper_flops if cfg.max_flops_share else None,
        min_multiplier=cfg.min_multiplier,
        advisor_budgets=budgets if strategy == "budgeted advisor" else (),
        targets=targets, start=start, paper=paper)
    print(f"[retrospective] {study_cfg.dataset or 'runs'}: {strategy} done "
          f"({i + 1} of {len(points_lib.names(cfg.strategies)) + bool(budgets)}), "
          f"{time.time() - started:.0f} s", flush=True)
  return {"records": records, "summary": retrospective.summarize(records)}
