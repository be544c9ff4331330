"""A curve fit's data: each run's checkpoints, the early-training cut, and the
design (x, y, weights, clusters) Eq. 3 is fitted to (fitting/curves.py)."""
from __future__ import annotations

import collections

import numpy as np

from scaling_jax.fitting import StudyError
from scaling_jax.fitting import points as points_lib


def by_run(rows) -> dict[str, list[dict]]:
  runs = collections.defaultdict(list)
  for row in rows:
    runs[row["run"]].append(row)
  return {k: sorted(v, key=lambda r: r["tokens"]) for k, v in runs.items()}


def cluster_key(checkpoints: list[dict]) -> str:
  """Runs that differ only in seed share a cluster."""
  last = checkpoints[-1]
  return f"{last.get('dataset')}|{last.get('model')}|{last['N']}|{last['tokens']}"


def loss(row, val_set) -> float:
  return points_lib.loss_of(row, val_set)


def cut(checkpoints, study) -> list[dict]:
  final = checkpoints[-1]["tokens"]
  return [r for r in checkpoints if r["tokens"] >= study.curves.min_tokens
          and r["tokens"] >= study.curves.min_fraction * final]


def design(runs: dict[str, list[dict]], study, final_only: bool):
  """(x, y, weights, clusters, run of each point) of the chosen runs' checkpoints."""
  points, weights = [], []
  for name, checkpoints in runs.items():
    kept = checkpoints[-1:] if final_only else cut(checkpoints, study)
    if not kept:
      raise StudyError(
          f"run {name!r} has no checkpoint left after the early-training cut "
          f"(study.curves.min_tokens={study.curves.min_tokens:g}, "
          f"study.curves.min_fraction={study.curves.min_fraction:g}; its last is at "
          f"{checkpoints[-1]['tokens']:.3g} tokens)")
    points += [(name, r) for r in kept]
    weights += [1.0 / len(kept) if study.curves.weighting == "run" else 1.0] * len(kept)
  x = {"N": np.array([r["N"] for _, r in points], float),
       "D": np.array([r["tokens"] for _, r in points], float)}
  y = np.array([loss(r, study.val_set) for _, r in points])
  clusters = [cluster_key(runs[name]) for name, _ in points]
  return x, y, np.array(weights), clusters, [name for name, _ in points]
