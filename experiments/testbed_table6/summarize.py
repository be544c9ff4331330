"""Reads the three testbed reports and prints Table 6 beside the paper's, and the
held-out relative errors by token multiplier M.

  python experiments/testbed_table6/summarize.py /tmp/exp_tb_   # + c4_original, rpj, rw_original
"""
import csv
import json
import pathlib
import sys

import numpy as np

TRAIN_SETS = ("c4_original", "rpj", "rw_original")
# Gadre et al. 2024, Table 6.
PAPER = {"c4_original": dict(E=1.51, a=141, b=190, eta=0.121, eps=0.850, k=2.08, gamma=0.756),
         "rpj": dict(E=1.84, a=212, b=367, eta=0.136, eps=0.857, k=2.21, gamma=0.715),
         "rw_original": dict(E=1.73, a=157, b=246, eta=0.127, eps=0.865, k=2.21, gamma=0.707)}


def main(prefix: str) -> None:
  print("| train | parameter | fitted [95%] | paper | rel. diff |\n|---|---|---|---|---|")
  held = {}
  for train in TRAIN_SETS:
    report = pathlib.Path(prefix + train) / "report"
    fit = json.loads((report / "fit.json").read_text())
    params = {**fit["loss_law"]["params"], **fit["error_law"]["params"]}
    for name, paper in PAPER[train].items():
      p = params[name]
      print(f"| {train} | {name} | {p['value']:.4g} [{p['lo']:.3g}, {p['hi']:.3g}] | "
            f"{paper:g} | {abs(p['value'] - paper) / paper:.2%} |")
    with (report / "predictions.csv").open() as f:
      for row in csv.DictReader(f):
        if row["used_in_fit"] == "True" or not row["loss"]:
          continue
        key = (train, float(row["M"]))
        inside = float(row["loss_lo"]) <= float(row["loss"]) <= float(row["loss_hi"])
        held.setdefault(key, []).append((float(row["loss_rel_err"]), inside))
  print("\n| train | M | held-out runs | mean loss rel. error | max | inside 95% |")
  print("|---|---|---|---|---|---|")
  for (train, m), values in sorted(held.items()):
    errs = np.array([v[0] for v in values])
    print(f"| {train} | {m:g} | {len(values)} | {errs.mean():.2%} | {errs.max():.2%} | "
          f"{sum(v[1] for v in values)}/{len(values)} |")


if __name__ == "__main__":
  main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/exp_tb_")
