"""Mean validation cross-entropy on each eval split, with a token-level 95% interval.

The interval is 1.96 * std(per-token loss) / sqrt(n_tokens): it treats tokens as
independent, so it understates the spread between documents, but it is what the
runs table asks for and it shrinks as it should with more eval tokens.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from scaling_jax import data
from scaling_jax.evals import base


# Defaults of a `kind: val_loss` entry of config.evals (the one home of each).
DEFAULTS = {"splits": ("validation", "ood"), "max_tokens": 65536, "batch_size": 16}


@jax.jit
def _token_nll(logits_BTV, targets_BT):
  lse_BT = jax.nn.logsumexp(logits_BTV, axis=-1)
  target_BT = jnp.take_along_axis(logits_BTV, targets_BT[..., None], axis=-1)[..., 0]
  return lse_BT - target_BT


@dataclasses.dataclass
class ValLossEvaluator:
  """Loss on the first `max_tokens` tokens of each split in `splits`."""
  dataset: object
  splits: tuple[str, ...]
  max_tokens: int
  batch_size: int
  name: str = "val_loss"

  def _split_loss(self, logits_fn, split: str) -> tuple[float, float]:
    multiple = logits_fn.batch_multiple
    batch_size = -(-self.batch_size // multiple) * multiple
    total, total_sq, count = 0.0, 0.0, 0
    for batch in data.eval_batches(self.dataset, split, logits_fn.seq_len,
                                   batch_size, self.max_tokens):
      batch = np.asarray(batch, np.int32)
      nll = np.asarray(_token_nll(logits_fn(batch[:, :-1]), batch[:, 1:]),
                       np.float64)
      total, total_sq, count = (total + nll.sum(), total_sq + (nll ** 2).sum(),
                                count + nll.size)
    if count == 0:
      raise ValueError(f"eval split {split!r} gave no full batch of {batch_size} x "
                       f"{logits_fn.seq_len + 1} tokens; lower the eval's batch_size "
                       f"or raise max_tokens")
    mean = total / count
    std = np.sqrt(max(total_sq / count - mean ** 2, 0.0))
    return float(mean), float(1.96 * std / np.sqrt(count))

  def evaluate(self, logits_fn):
    for split in self.splits:
      mean, ci = self._split_loss(logits_fn, split)
      yield f"loss/{split}", mean
      yield f"loss_ci/{split}", ci


def _factory(eval_cfg, dataset) -> ValLossEvaluator:
  splits = tuple(eval_cfg.get("splits") or ())
  if not splits:
    splits = tuple(s for s in dataset.split_names if s != "train")
  unknown = [s for s in splits if s not in dataset.split_names]
  if unknown:
    raise ValueError(f"config.evals val_loss splits {unknown} are not in the "
                     f"dataset, which has {list(dataset.split_names)}")
  return ValLossEvaluator(dataset, splits,
                          int(eval_cfg.get("max_tokens", DEFAULTS["max_tokens"])),
                          int(eval_cfg.get("batch_size", DEFAULTS["batch_size"])))


base.register_evaluator("val_loss", _factory)
