r"""Does a design's own backtest make better prediction intervals than the prior?

  python benchmarks/backtest_calibration.py [--shared ../shared] [--resamples 400]

Design: every run in the lower half of each testbed training set's log-compute
range (a plentiful design, where the study backtests itself: laws/backtest.py);
scored, as benchmarks/real_calibration.py scores: every run above it, loss and
error, at 80% and 95%. Twice: with study.extrapolation='backtest' (the backtest's
growth pooled with the prior's) and 'prior'. Ends with one line per choice,
`half-design coverage 95% (<choice>): pooled <x> min <y> max <z>`.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import real_calibration  # noqa: E402
from scaling_jax import runs as runs_lib  # noqa: E402
from scaling_jax.fitting import points as points_lib  # noqa: E402
from scaling_jax.fitting import study_fit  # noqa: E402
from scaling_jax.runs import table as runs_table  # noqa: E402


def _lower_half(source, dataset):
  """'model@M' of every point whose compute lies in the lower half (log scale) of the
  data set's range: a plentiful design, far from the paper's five runs."""
  points = points_lib.point_rows(points_lib.of_dataset(source.rows, dataset))
  logc = np.log10([p["flops"] for p in points])
  middle = (logc.min() + logc.max()) / 2
  return [points_lib.point_label(runs_table.run_key(p))
          for p, c in zip(points, logc) if c <= middle]


def score_half(shared, train, resamples, level,
               backtest=True) -> list[real_calibration.Scored]:
  """Fit the lower half of a training set's compute range (every run there), score
  every run above it; `backtest` False keeps the prior's extrapolation growth."""
  config = real_calibration.testbed_config(shared, train, resamples, level)
  source = runs_lib.load(config, "/nonexistent")
  design = _lower_half(source, config.study.dataset)
  config.study.loss_design = config.study.err_design = ",".join(design)
  config.study.extrapolation = "backtest" if backtest else "prior"
  fit = study_fit.fit(source.rows, source.task_baselines, config.study)
  if level == 0.95:
    print(f"- {train}: {len(design)} design runs; {fit.loss.backtest.source}; "
          f"intervals use {fit.loss.extrapolation_growth:.3g} per decade")
  return [s for s in real_calibration.scored_runs(fit, train) if not s.headline]


def half_design(shared, resamples):
  """--design half: coverage with the backtest's growth and with the prior's."""
  print("Design: every run in the lower half of each training set's log-compute "
        "range; scored: every run above it.\n")
  for backtest in (True, False):
    growth = "backtest pooled with the prior" if backtest else "the prior alone"
    print(f"\nExtrapolation growth: {growth}")
    results = {level: [s for t in real_calibration.TRAIN_SETS
                       for s in score_half(shared, t, resamples, level, backtest)]
               for level in real_calibration.LEVELS}
    print()
    pooled, cov = real_calibration.table(results)[(0.95, "prediction")]
    print(f"half-design coverage 95% ({'backtest' if backtest else 'prior'}): pooled "
          f"{pooled:.3f} min {min(cov.values()):.3f} max {max(cov.values()):.3f}")


def main():
  args = real_calibration.real_data_parser(__doc__, 400).parse_args()
  start = time.time()
  half_design(args.shared, args.resamples)
  print(f"wall {time.time() - start:.0f}s")


if __name__ == "__main__":
  main()
