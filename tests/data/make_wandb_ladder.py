r"""Writes the W&B source's fixture: a recorded export of a five-run ladder.

    python tests/data/make_wandb_ladder.py > tests/data/wandb_ladder.json

The shape is what `python -m scaling_jax.runs.wandb_runs export` writes from
wandb.Api (runs/wandb_runs.py): a trainer that logs train/loss every interval and
eval/loss every second one, nested config (model.n_params), W&B's own '_' keys,
and a summary. Four runs at 20 tokens per parameter follow Eq. 3 with small noise
(TRUTH, so a fit can be checked); a fifth crashed early (state 'crashed'), as
projects hold, for the source's filters to drop.
"""
import json
import sys

import numpy as np

TRUTH = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
SIZES = {"ladder-20M": 2.0e7, "ladder-50M": 5.1e7, "ladder-120M": 1.2e8,
         "ladder-300M": 3.05e8}
TOKENS_PER_STEP = 256 * 1024
START_TIME = 1_717_000_000.0
IDS = ("k3j9x2ab", "p0q7m1zd", "a8v4n6ty", "w2e5r7ui", "c9h3l0so")  # W&B-style


def _loss(n, d):
  return TRUTH["E"] + TRUTH["A"] * n ** -TRUTH["alpha"] + TRUTH["B"] * d ** -TRUTH["beta"]


def _run(rng, index, name, n, steps, state="finished", lr=3e-3):
  history, every = [], steps // 16
  for i in range(1, 17):
    step = i * every
    tokens = step * TOKENS_PER_STEP
    row = {"_step": step, "_runtime": round(step * 0.02 * n / 1e7, 2),
           "_timestamp": START_TIME + index * 86400 + step * 0.02 * n / 1e7,
           "tokens": tokens, "train/lr": lr * min(1.0, step / (0.05 * steps)),
           "train/loss": round(_loss(n, tokens) * (1.02 + 0.01 * rng.standard_normal()), 4)}
    if i % 2 == 0:
      row["eval/loss"] = round(_loss(n, tokens) * (1 + 0.002 * rng.standard_normal()), 4)
    history.append(row)
  last_eval = [r for r in history if "eval/loss" in r][-1]
  return dict(
      id=IDS[index], name=name,
      group="ladder-m20", state=state,
      config={"model": {"n_params": int(n), "d_model": int((n / 12 / 12) ** 0.5),
                        "n_layers": 12},
              "optimizer": {"name": "adamw", "lr": lr, "weight_decay": 0.1},
              "batch_size": 256, "seq_len": 1024, "total_steps": steps,
              "_wandb": {"python_version": "3.11.7", "cli_version": "0.17.0"}},
      summary={"_step": history[-1]["_step"], "_runtime": history[-1]["_runtime"],
               "train/loss": history[-1]["train/loss"],
               "eval/loss": last_eval["eval/loss"], "_wandb": {"runtime": 1234}},
      history=history)


def main():
  rng = np.random.default_rng(27)
  runs = []
  for index, (name, n) in enumerate(SIZES.items()):
    runs.append(_run(rng, index, name, n, round(20 * n / TOKENS_PER_STEP / 16) * 16))
  crashed = _run(rng, len(runs), "ladder-120M-lr1e-2", 1.2e8, 9152, state="crashed",
                 lr=1e-2)
  crashed["history"] = crashed["history"][:6]
  runs.append(crashed)
  json.dump(dict(format="scaling_jax.wandb_runs/1", path="ladder-lab/scaling", runs=runs),
            sys.stdout, indent=1)
  sys.stdout.write("\n")


if __name__ == "__main__":
  main()
