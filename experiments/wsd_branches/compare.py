"""Trains configs/ladder_check.py (resumable) and compares each arm's final loss.

  python experiments/wsd_branches/compare.py --workdir=/tmp/wsd_branches [--arg=seeds=3]

Prints, per M: each arm's mean final validation loss over seeds with its seed-to-
seed sd, and the paired differences (same seed, so the same data order and
initialisation) branch - separate WSD and branch - cosine, with their sd over seeds.
"""
import argparse
import collections
import importlib.util
import pathlib
import statistics
import time

from scaling_jax import launch
from scaling_jax.runs import table as runs_table

REPO = pathlib.Path(__file__).resolve().parents[2]
METRIC = "loss/validation"


def _config(arg: str):
  spec = importlib.util.spec_from_file_location("ladder_check",
                                                REPO / "configs" / "ladder_check.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module, module.get_config(arg)


def _finals(workdir: pathlib.Path) -> dict[str, dict]:
  rows = runs_table.read_rows(workdir / "runs")
  return {r["run"]: r for r in rows if r["final"]}


def _sd(values) -> float:
  return statistics.stdev(values) if len(values) > 1 else float("nan")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--arg", default="", help="configs/ladder_check.py variant")
  args = parser.parse_args()
  module, config = _config(args.arg)
  workdir = pathlib.Path(args.workdir)
  start = time.time()
  launch.run(config, str(workdir))
  print(f"trained (or found) {len(config.sweep)} units in {time.time() - start:.0f} s")
  finals = _finals(workdir)
  seeds = sorted({u["seed"] for u in config.sweep})
  print(f"\n| M | branch | separate WSD | separate cosine | branch - WSD | branch - cosine "
        f"| branch cost / 6ND |\n|---|---|---|---|---|---|---|")
  for m in module.LADDER:
    loss = collections.defaultdict(list)
    cost = []
    for s in seeds:
      branch = finals[f"branch_M{m}_s{s}"]
      wsd = finals.get(f"wsd_M{m}_s{s}", branch)  # the trunk is its own WSD run
      for arm, row in (("branch", branch), ("wsd", wsd),
                       ("cosine", finals[f"cosine_M{m}_s{s}"])):
        loss[arm].append(row[METRIC])
      cost.append(branch["cost_flops"] / branch["flops"])
    cells = [f"{statistics.mean(loss[a]):.4f} (sd {_sd(loss[a]):.4f})" for a in module.ARMS]
    diffs = [[b - o for b, o in zip(loss["branch"], loss[other])]
             for other in ("wsd", "cosine")]
    cells += [f"{statistics.mean(d):+.4f} (sd {_sd(d):.4f})" for d in diffs]
    print(f"| {m} | " + " | ".join(cells) + f" | {statistics.mean(cost):.2f} |")


if __name__ == "__main__":
  main()
