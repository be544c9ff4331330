"""Batched, jitted scoring of ICL requests, and accuracy as LLM-Foundry computes it.

Each request (context tokens, continuation tokens) fills one row of a fixed
[batch_size, seq_len] int32 array, right-padded, with the context cut from the left
when the pair is too long; fixed shapes mean the model compiles once. A small jitted
function turns the model's logits into, per row, the summed log-probability of the
continuation tokens and whether every continuation token is the greedy argmax;
the host does the rest.

Accuracy (the rule of LLM-Foundry's InContextLearning*Accuracy metrics):
  language_modeling  correct when every continuation token is the argmax of the
                     logits at the position before it (exact greedy match).
  multiple_choice    the choice with the highest MEAN per-token log-likelihood of its
                     continuation tokens (LLM-Foundry: lowest exp(mean cross-entropy),
                     i.e. per-token perplexity) is picked; ties go to the lowest index.
  schema             the same rule, applied to the one shared continuation scored after
                     each context option; the continuation's tokens are the same under
                     every option, so mean and sum pick the same option.
"""
from __future__ import annotations

import collections
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from scaling_jax.evals.icl import formats
from scaling_jax.evals.icl import prompts

LogitsFn = Callable[[np.ndarray], jax.Array]


def check_fits(requests: Sequence[prompts.Request], seq_len: int) -> None:
  """Raises ValueError naming the first request that cannot be scored in seq_len."""
  for row, request in enumerate(requests):
    n = len(request.continuation)
    if n == 0:
      raise ValueError(f"request {row}: empty continuation")
    # At least one context token must precede the continuation to predict its first.
    if n > seq_len - 1:
      raise ValueError(f"request {row}: continuation of {n} tokens does not fit "
                       f"seq_len {seq_len} after a context token")
    if len(request.context) == 0:
      raise ValueError(f"request {row}: empty context; nothing predicts the first "
                       "continuation token")


def pack_rows(requests: Sequence[prompts.Request], seq_len: int, pad_id: int,
              num_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Token rows [num_rows, seq_len] (default one per request; extra rows are all
  padding) and a mask of the positions that hold continuation tokens."""
  check_fits(requests, seq_len)
  num_rows = len(requests) if num_rows is None else num_rows
  tokens = np.full((num_rows, seq_len), pad_id, dtype=np.int32)
  mask = np.zeros((num_rows, seq_len), dtype=bool)
  for row, request in enumerate(requests):
    continuation = request.continuation
    keep = seq_len - len(continuation)  # context tokens that fit, cut from the left
    context = request.context[-keep:] if len(request.context) > keep else request.context
    n = len(context)
    tokens[row, :n] = context
    tokens[row, n:n + len(continuation)] = continuation
    mask[row, n:n + len(continuation)] = True
  return tokens, mask


@jax.jit
def continuation_stats(logits: jax.Array, tokens: jax.Array,
                       mask: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Per row: summed log-prob of the masked tokens, and whether all are greedy."""
  # The logits at position t predict the token at t + 1.
  logits = logits[:, :-1].astype(jnp.float32)
  targets = tokens[:, 1:]
  mask = mask[:, 1:]
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  target_log_probs = jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
  is_greedy = jnp.argmax(logits, axis=-1) == targets
  # where, not multiply: a -inf log-prob at a padded position must not become NaN.
  summed = jnp.sum(jnp.where(mask, target_log_probs, 0.0), axis=-1)
  all_greedy = jnp.all(is_greedy | ~mask, axis=-1)
  return summed, all_greedy


# Batches scored ahead of the host (see score_requests).
MAX_IN_FLIGHT = 2


def _round_up(value: int, multiple: int) -> int:
  return -(-value // multiple) * multiple


def score_requests(requests: Sequence[prompts.Request], logits_fn: LogitsFn, *,
                   seq_len: int, batch_size: int, pad_id: int = 0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Summed continuation log-probs, continuation lengths and all-greedy flags.

  `logits_fn(tokens [B, T] int32) -> [B, T, V]` is called on fixed shapes: B is
  `batch_size` rounded up to `logits_fn.batch_multiple` (if set), T is seq_len,
  and the last batch is filled with padding rows. Rows are packed batch by batch,
  so a large suite never holds all its padded rows at once.
  """
  lengths = np.array([len(r.continuation) for r in requests], dtype=np.int64)
  if not requests:
    return np.zeros(0), lengths, np.zeros(0, dtype=bool)
  batch = _round_up(batch_size, int(getattr(logits_fn, "batch_multiple", 1) or 1))
  in_flight, done = collections.deque(), []
  for start in range(0, len(requests), batch):
    tokens, mask = pack_rows(requests[start:start + batch], seq_len, pad_id, batch)
    logits = logits_fn(tokens)
    if logits.ndim != 3 or logits.shape[:2] != (batch, seq_len):
      raise ValueError(f"logits_fn returned shape {logits.shape}; expected "
                       f"({batch}, {seq_len}, vocab)")
    # The host does not wait on the batch it just sent, only on one sent
    # MAX_IN_FLIGHT batches ago: with no bound, dozens of queued programs that
    # gather parameters (fsdp or tensor mesh axes > 1) deadlock XLA:CPU's
    # collectives, and the process aborts (tests/icl_scoring_in_flight_test.py).
    in_flight.append(continuation_stats(logits, tokens, mask))
    if len(in_flight) > MAX_IN_FLIGHT:
      done.append(jax.device_get(in_flight.popleft()))
  done.extend(jax.device_get(list(in_flight)))
  summed = np.concatenate([s for s, _ in done])[:len(requests)]
  greedy = np.concatenate([g for _, g in done])[:len(requests)]
  return summed.astype(np.float64), lengths, greedy.astype(bool)


def task_accuracy(task: prompts.PreparedTask, summed: np.ndarray, lengths: np.ndarray,
                  greedy: np.ndarray) -> float:
  """Accuracy of one task from its requests' statistics (see the module docstring)."""
  if task.num_examples == 0:
    raise ValueError(f"task {task.name!r} has no examples")
  correct = 0
  for (start, end), gold in zip(task.groups, task.golds):
    if task.task_type == formats.LANGUAGE_MODELING:
      correct += bool(greedy[start])
    else:
      mean_log_likelihood = summed[start:end] / lengths[start:end]
      correct += int(np.argmax(mean_log_likelihood)) == gold
  return correct / task.num_examples


def accuracies(tasks: Sequence[prompts.PreparedTask], summed: np.ndarray,
               lengths: np.ndarray, greedy: np.ndarray) -> dict[str, float]:
  """Accuracy per task from the statistics of all tasks' requests, in task order."""
  results, offset = {}, 0
  for task in tasks:
    rows = slice(offset, offset + len(task.requests))
    results[task.name] = task_accuracy(task, summed[rows], lengths[rows], greedy[rows])
    offset += len(task.requests)
  return results


def evaluate_tasks(tasks: Sequence[prompts.PreparedTask], logits_fn: LogitsFn, *,
                   seq_len: int, batch_size: int, pad_id: int = 0) -> dict[str, float]:
  """Accuracy per task; all tasks' requests share batches so few rows are padding."""
  requests = [r for task in tasks for r in task.requests]
  summed, lengths, greedy = score_requests(requests, logits_fn, seq_len=seq_len,
                                           batch_size=batch_size, pad_id=pad_id)
  return accuracies(tasks, summed, lengths, greedy)


def score_examples(spec: formats.TaskSpec, examples: Sequence[dict], tokenizer,
                   logits_fn: LogitsFn, *, seq_len: int, batch_size: int = 8,
                   pad_id: int = 0) -> float:
  """Accuracy of one task's examples under `logits_fn`: prompts, scoring, reduction."""
  formats.validate_examples(examples, spec.task_type, spec.name)
  task = prompts.prepare_task(spec, examples, tokenizer)
  return evaluate_tasks([task], logits_fn, seq_len=seq_len, batch_size=batch_size,
                        pad_id=pad_id)[spec.name]
