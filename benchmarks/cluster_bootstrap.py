r"""Cluster bootstrap of a curve fit: 1000 resamples of whole runs, ~100 checkpoints.

  python benchmarks/cluster_bootstrap.py [--resamples 1000] [--runs 8] [--points 12]

Eq. 3 on every checkpoint of synthetic runs (known law, 0.5% noise), refitted on
every resample of runs in one `fit.solve_many` call (the paper's start grid).
Prints the point fit, the bootstrap's compile + first call, and the median of
later calls, ending with `cluster bootstrap: <seconds> s per 1000 resamples`.
"""
import argparse
import statistics
import time

import numpy as np

from scaling_jax.laws import cluster
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms


def synthetic(runs: int, points: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  n = np.repeat(np.geomspace(1e7, 1e9, runs), points)
  d = np.concatenate([np.geomspace(size, 20 * size, points)
                      for size in np.geomspace(1e7, 1e9, runs)])
  loss = 1.7 + 400 * n ** -0.34 + 1200 * d ** -0.28
  loss *= 1 + 0.005 * rng.standard_normal(loss.shape)
  return {"N": n, "D": d}, loss, np.repeat(np.arange(runs), points)


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--resamples", type=int, default=1000)
  parser.add_argument("--runs", type=int, default=8)
  parser.add_argument("--points", type=int, default=12)
  args = parser.parse_args()
  x, y, clusters = synthetic(args.runs, args.points)
  start = time.perf_counter()
  result = fit_lib.fit(forms.CHINCHILLA, x, y)
  print(f"{len(y)} checkpoints of {args.runs} runs; point fit (with compile) "
        f"{time.perf_counter() - start:.2f} s")
  start = time.perf_counter()
  reps = cluster.cluster_bootstrap(result, clusters, num_resamples=args.resamples, seed=0)
  print(f"compile + first bootstrap call: {time.perf_counter() - start:.2f} s "
        f"({reps.num_valid} of {args.resamples} resamples identify the law)")
  times = []
  for seed in range(1, 4):
    start = time.perf_counter()
    cluster.cluster_bootstrap(result, clusters, num_resamples=args.resamples, seed=seed)
    times.append(time.perf_counter() - start)
  median = statistics.median(times)
  print(f"later calls (median of 3): {median:.2f} s")
  print(f"cluster bootstrap: {median * 1000 / args.resamples:.2f} s per 1000 resamples")


if __name__ == "__main__":
  main()
