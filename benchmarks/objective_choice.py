r"""Least squares or Huber: which objective predicts held-out REAL runs better, by study kind?

  python benchmarks/objective_choice.py [--shared ../shared] [--resamples 200]

config.study.fit.loss='auto' picks an objective per study kind
(fitting/law_settings.py OBJECTIVE_BY_KIND); this measures both on the real data in
../shared, read in place:

  final  - the released over-training testbed, each of its three training sets fitted
           with the study's default design (Eq. 4 on the paper's five runs) and scored
           on every run outside the design at larger compute or larger M (the runs
           benchmarks/real_calibration.py scores).
  curves - Eq. 3 (a) on the data-constrained study's published table of final losses
           (datablations_contour_losses.csv, single-epoch C4 runs, 7M-8.7B: the
           layout of a published table, with its badly undertrained runs kept), fitted
           on the runs below 1e21 FLOPs and scored on those above; and (b) on
           Alabdulmohsin et al.'s LM curves (revisiting_lang.csv), fitted on every
           checkpoint of the 4 smaller sizes past a 25% cut and scored on the largest
           size's late checkpoints (real_calibration.py's curve design).

Printed per data set and objective: the mean and median absolute relative error of
the held-out losses, and the share inside their 95% prediction intervals; then the
choice per kind (`objective_choice <kind>: <objective>`): the objective of that
kind's papers (PAPERS_OBJECTIVE) unless the other lowers the mean error over data
sets (each set weighing the same) by more than a tenth, a margin below which the
ranking flips from one data set to the next.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import real_calibration  # noqa: E402  pylint: disable=wrong-import-position

from scaling_jax import runs as runs_lib  # noqa: E402
from scaling_jax.fitting import curves  # noqa: E402
from scaling_jax.fitting import study_fit  # noqa: E402

OBJECTIVES = ("squares", "huber")
# Gadre et al. fit Eq. 4/5 by least squares; Hoffmann et al. (and the Hitchhiker's
# Guide after them) fit Eq. 3 by Huber on log residuals.
PAPERS_OBJECTIVE = {"final": "squares", "curves": "huber"}
MARGIN = 0.1


def _errors(scored):
  rel = np.array([abs(s.pred - s.value) / s.value for s in scored])
  inside = np.array([s.lo["prediction"] <= s.value <= s.hi["prediction"] for s in scored])
  return rel, inside


def final_kind(shared, train, resamples, objective):
  config = real_calibration.testbed_config(shared, train, resamples)
  config.study.fit.loss = objective
  source = runs_lib.load(config, "/nonexistent")
  fit = study_fit.fit(source.rows, source.task_baselines, config.study)
  scored = real_calibration.measured(real_calibration.scored_runs(fit, train))
  return [s for s in scored if s.column == "loss"]


def _contour_config(shared, resamples):
  sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                  "configs"))
  import curves as curves_config  # pylint: disable=import-outside-toplevel
  path = os.path.join(shared, "data", "colpret_curves", "datablations_contour_losses.csv")
  config = curves_config.get_config(f"csv={path}")
  mapping = config.runs.csv
  mapping.columns.run = ""  # one row per run
  mapping.columns.params, mapping.columns.tokens = "num_params", "token_num"
  mapping.columns.loss, mapping.columns.flops = "openLM_loss", "flops"
  mapping.filters = ("epochs == 1", "data == c4")
  config.study.curves.targets_where = "flops > 1e21"
  config.study.bootstrap.num_resamples = resamples
  return config


def curves_kind(shared, name, resamples, objective):
  if name == "revisiting_lm":
    config = real_calibration.curves_config(shared, resamples, 0.95)
    config.study.fit.loss = objective
    source = runs_lib.load(config, "/nonexistent")
    sizes = {r["run"]: r["N"] for r in source.rows}
    names = sorted(sizes, key=sizes.get)
    config.study.curves.fit_runs = ",".join(names[:-1])
    config.study.curves.targets = names[-1]
  else:
    config = _contour_config(shared, resamples)
    config.study.fit.loss = objective
    source = runs_lib.load(config, "/nonexistent")
  fit = curves.fit(source.rows, source.task_baselines, config.study)
  targets = {t["run"] for t in fit.targets}
  rows = [r for r in fit.checkpoints if r["run"] in targets]
  if name == "revisiting_lm":  # the late checkpoints, as real_calibration scores them
    late_from = (1 - config.study.curves.late_fraction) * rows[-1]["tokens"]
    rows = [r for r in rows if r["tokens"] >= late_from]
  else:
    rows = [r for r in rows if r["used_in_fit"] is False]
  return [real_calibration.Scored(name, r["run"], "loss", float(r["loss"]),
                                  float(r["loss_pred"]), {"prediction": r["loss_lo"]},
                                  {"prediction": r["loss_hi"]},
                                  float(r["extrapolation_decades"]), False) for r in rows]


def main():
  args = real_calibration.real_data_parser(__doc__, 200).parse_args()
  sets = [("final", t, final_kind) for t in real_calibration.TRAIN_SETS] + [
      ("curves", c, curves_kind) for c in ("contour_c4", "revisiting_lm")]
  print("| kind | data set | objective | held-out runs | mean rel. error | median | "
        "inside 95% prediction | seconds |")
  print("|---|---|---|---|---|---|---|---|")
  by_kind = {}
  for kind, name, score in sets:
    for objective in OBJECTIVES:
      start = time.time()
      rel, inside = _errors(score(args.shared, name, args.resamples, objective))
      by_kind.setdefault(kind, {}).setdefault(objective, []).append(rel.mean())
      print(f"| {kind} | {name} | {objective} | {len(rel)} | {100 * rel.mean():.2f}% | "
            f"{100 * np.median(rel):.2f}% | {inside.mean():.2f} | "
            f"{time.time() - start:.0f} |", flush=True)
  for kind, errors in by_kind.items():
    # Each data set weighs the same: the mean over sets of each set's mean error.
    mean = {o: float(np.mean(e)) for o, e in errors.items()}
    paper = PAPERS_OBJECTIVE[kind]
    other = next(o for o in OBJECTIVES if o != paper)
    choice = other if mean[other] < (1 - MARGIN) * mean[paper] else paper
    means = ", ".join(f"{o} {100 * m:.2f}%" for o, m in mean.items())
    print(f"objective_choice {kind}: {choice} (mean over data sets: {means}; the "
          f"papers' {paper} unless {other} is over {MARGIN:.0%} better)")


if __name__ == "__main__":
  main()
