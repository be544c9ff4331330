"""Refits Eq. 4 on subsets of a ladder study's fit runs and prints each subset's
law and its errors on the two held-out targets (no training; reads the runs table).

  python experiments/ladder_main_job/refit_subsets.py /tmp/ladder_main/runs
"""
import sys

import numpy as np

from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms
from scaling_jax.runs import table as runs_table

TARGETS = {"tiny-3_M20_s0", "tiny-2_M80_s0"}
SIZES = (("tiny-0", "tiny-0.5", "tiny-1", "tiny-2"), ("tiny-0.5", "tiny-1", "tiny-2"),
         ("tiny-1", "tiny-2"))


def _law_inputs(rows):
  n = np.array([r["N"] for r in rows], float)
  d = np.array([r["tokens"] for r in rows], float)
  return {"C": 6 * n * d, "M": d / n}, np.array([r["loss/validation"] for r in rows])


def main(runs_dir: str) -> None:
  rows = [r for r in runs_table.read_rows(runs_dir) if r["final"]]
  targets = [r for r in rows if r["run"] in TARGETS]
  target_x, target_y = _law_inputs(targets)
  print("| fit runs | sizes | M >= | E | eta | " +
        " | ".join(r["run"] for r in targets) + " |")
  print("|---|---|---|---|---|" + "---|" * len(targets))
  for m_min in (5, 10, 20, 40):
    for sizes in SIZES:
      chosen = [r for r in rows if r["run"] not in TARGETS and r["M"] >= m_min
                and r["model"] in sizes]
      if len(chosen) < 5:
        continue
      result = fit_lib.fit(forms.OVERTRAINING, *_law_inputs(chosen))
      errors = 100 * (result.predict(target_x) - target_y) / target_y
      print(f"| {len(chosen)} | {', '.join(sizes)} | {m_min} | {result.params[0]:.3f} | "
            f"{result.params[3]:.3f} | " + " | ".join(f"{e:+.1f}%" for e in errors) + " |")


if __name__ == "__main__":
  main(sys.argv[1])
