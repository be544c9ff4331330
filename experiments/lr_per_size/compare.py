"""Trains configs/lr_per_size.py (resumable) and prints each size's final loss per
peak learning rate (mean over seeds), the best marked.

  python experiments/lr_per_size/compare.py --workdir=/tmp/lr_per_size
"""
import argparse
import importlib.util
import pathlib
import statistics
import time

from scaling_jax import launch
from scaling_jax.runs import table as runs_table

REPO = pathlib.Path(__file__).resolve().parents[2]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--arg", default="", help="configs/lr_per_size.py variant")
  args = parser.parse_args()
  spec = importlib.util.spec_from_file_location("lr_per_size",
                                                REPO / "configs" / "lr_per_size.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(args.arg)
  start = time.time()
  launch.run(config, args.workdir)
  print(f"trained (or found) {len(config.sweep)} units in {time.time() - start:.0f} s")
  finals = {r["run"]: r for r in runs_table.read_rows(pathlib.Path(args.workdir) / "runs")
            if r["final"]}
  seeds = sorted({u["seed"] for u in config.sweep})
  print(f"\nfinal validation loss, mean over {len(seeds)} seed(s) (spread: max - min)")
  print("\n| size | N | " + " | ".join(f"peak LR {lr:g}" for lr in module.PEAK_LRS) +
        " |\n|---|---|" + "---|" * len(module.PEAK_LRS))
  for size in module.SIZES:
    cells = []
    for lr in module.PEAK_LRS:
      losses = [finals[module.unit_name(size, lr, s)]["loss/validation"] for s in seeds]
      cells.append((statistics.mean(losses), max(losses) - min(losses)))
    best = min(mean for mean, _ in cells)
    text = [(f"**{m:.4f}**" if m == best else f"{m:.4f}") +
            (f" ({spread:.4f})" if len(seeds) > 1 else "") for m, spread in cells]
    n = finals[module.unit_name(size, module.PEAK_LRS[0], 0)]["N"]
    print(f"| {size} | {n / 1e3:.1f}k | " + " | ".join(text) + " |")


if __name__ == "__main__":
  main()
