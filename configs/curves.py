r"""Fit a scaling law to training curves: every checkpoint of some runs, then predict others.

  python -m scaling_jax.main --config=configs/curves.py:csv=PATH \
      --config.study.curves.fit_runs=a,b,c --config.study.curves.targets=d \
      --config.study.curves.min_tokens=1e10 --workdir=OUT

PATH is a .csv or .jsonl log with one row per (run, checkpoint), by default with
columns run, params, tokens, loss (optional family, seed, step, flops); any other
layout is read through `--config.runs.csv.*` (column names, tokens from steps,
'2.8B'-style counts, size names, row filters: see scaling_jax/runs/csv_mapping.py).
Nothing is trained. Fitted: Eq. 3, L(N, D) = E + A N^-alpha + B D^-beta, on every
checkpoint of study.curves.fit_runs past the early-training cut (study.curves.min_tokens,
study.curves.min_fraction), each checkpoint weighing 1 (or each run 1 in all with
--config.study.curves.weighting=run). Reported for each target: ARE over its late
checkpoints (study.curves.late_fraction, default the last 30% of its tokens) and the
relative error at its final checkpoint, with cluster-bootstrap intervals (whole
runs resampled). Borrowed parameters: --config.study.curves.borrow=alpha,beta[,E] with
--config.study.curves.borrow_from=e,f (fitted in the same call) or
--config.study.curves.borrow_values=alpha=0.34,beta=0.28.

Runs can be chosen by condition instead of by name (scaling_jax/fitting/run_selection.py):
--config.study.curves.targets_where='flops == max' predicts the largest budget's runs
from every other run (or those --config.study.curves.fit_where selects). A published
table of one row per run with no run or tokens column (N, C, loss) is read with
--config.runs.csv.columns.run= --config.runs.csv.columns.tokens= and
--config.runs.csv.columns.flops=COLUMN (D = C / 6N): README, 'Fitting a published table'.
The objective is --config.study.fit.loss=auto|squares|huber (auto: Huber on log
residuals here); the report also shows the other objective's law when it differs.

Variants after the colon: csv=PATH (the log; same as --config.runs.path; the rest
of the text is the path, commas included).
"""
from scaling_jax import config_lib

# What `python -m scaling_jax.main --help` lists for this file (the text after the
# colon -> what it gives); see scaling_jax/config_variants.py.
VARIANTS = {
    "csv=PATH": "the .csv or .jsonl log to fit (same as --config.runs.path); "
                "name the runs with --config.study.curves.fit_runs=a,b and "
                "--config.study.curves.targets=c, or select them with "
                "--config.study.curves.targets_where='flops == max'",
}


def get_config(arg: str = ""):
  # csv is the only variant, so everything after 'csv=' is the path, commas too.
  if arg.startswith("csv="):
    knobs = {"csv": arg[len("csv="):]}
  else:
    knobs = config_lib.parse_arg(arg, dict(csv=""), "configs/curves.py")
  config = config_lib.default_config()
  config.runs.source = "csv"
  config.runs.path = knobs["csv"]
  return config
