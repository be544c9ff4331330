"""The in-loop ICL evaluator and its factory, `make_icl_evaluator(eval_cfg, dataset)`.

eval_cfg fields (a dict or ConfigDict; all optional):

  suite              "embedded" (default: tasks generated from the held-out corpus)
                     or the path of an LLM-Foundry eval YAML with `icl_tasks`
  metadata_csv       gauntlet metadata table with random baselines (YAML suites)
  data_root          directory for relative dataset_uris (default: the YAML's)
  tasks              names of the tasks to keep (default: all)
  examples_per_task  cap on scored examples per task (default 50; None: all).
                     File tasks keep a seeded random subset; shots still come
                     from the whole file.
  seq_len            tokens per scored row (default 128, lowered to
                     logits_fn.seq_len if that is shorter); longer contexts are
                     cut from the left
  batch_size         rows per model call (default 16, the validation loss's
                     batch, so both reuse one compiled forward pass; rounded
                     up to logits_fn.batch_multiple)
  seed               seed of the embedded generators and of subsets (default 0)
  max_context_chars  context length of embedded tasks (default 96)
  name               evaluator name (default "icl")

Everything is built and tokenised once, when the evaluator is made; a task that
fails to load (missing file, malformed line, answer longer than seq_len) is logged
and skipped, and the others are still scored. `evaluate` yields ("acc/<task>",
accuracy) and ("acc_n/<task>", examples scored) for each task, in the order of the
suite; the count is what makes an accuracy's evaluation noise known to the fit.
"""
from __future__ import annotations

import logging
import random
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from scaling_jax.evals.icl import corpus
from scaling_jax.evals.icl import formats
from scaling_jax.evals.icl import generators
from scaling_jax.evals.icl import prompts
from scaling_jax.evals.icl import scoring
from scaling_jax.evals.icl import suite

DEFAULTS = {
    "suite": "embedded", "metadata_csv": None, "data_root": None, "tasks": None,
    "examples_per_task": 50, "seq_len": 128, "batch_size": 16, "seed": 0,
    "max_context_chars": 96, "name": "icl",
}


class IclEvaluator:
  """Scores prepared ICL tasks with the model's logits_fn; see the module docstring."""

  def __init__(self, tasks: Sequence[prompts.PreparedTask], *, seq_len: int,
               batch_size: int, pad_id: int = 0, name: str = "icl",
               failures: dict[str, str] | None = None,
               random_baselines: dict[str, float] | None = None):
    self.name = name
    self.tasks = list(tasks)
    self.batch_size = batch_size
    self.pad_id = pad_id
    self.failures = dict(failures or {})
    self.random_baselines = dict(random_baselines or {})
    self.seq_len = seq_len
    for task in self.tasks:
      scoring.check_fits(task.requests, seq_len)

  @property
  def num_rows(self) -> int:
    """Model rows per evaluation (before padding to whole batches)."""
    return sum(len(task.requests) for task in self.tasks)

  @property
  def forward_tokens(self) -> int:
    """Tokens through the model per evaluation: about the cost of training on a
    third as many tokens (a forward pass without the backward)."""
    return self.num_rows * self.seq_len

  def _tasks_that_fit(self, seq_len: int) -> list:
    """Tasks whose answers fit a model of `seq_len`; the others are skipped (and
    reported once), so a short-context model never stops its training run here."""
    fitting = []
    for task in self.tasks:
      try:
        scoring.check_fits(task.requests, seq_len)
        fitting.append(task)
      except ValueError as e:
        if task.name not in self.failures:
          logging.warning("ICL task %r skipped for this model: %s", task.name, e)
          self.failures[task.name] = f"model seq_len {seq_len}: {e}"
    return fitting

  def evaluate(self, logits_fn: scoring.LogitsFn) -> Iterator[tuple[str, float]]:
    if not self.tasks:
      return
    # Rows may not be longer than the model takes (logits_fn.seq_len, if set).
    seq_len = min(self.seq_len, getattr(logits_fn, "seq_len", None) or self.seq_len)
    results = scoring.evaluate_tasks(self._tasks_that_fit(seq_len), logits_fn,
                                     seq_len=seq_len, batch_size=self.batch_size,
                                     pad_id=self.pad_id)
    counts = {task.name: task.num_examples for task in self.tasks}
    for name, accuracy in results.items():
      yield f"acc/{name}", accuracy
      # The count makes the accuracy's own evaluation noise known downstream.
      yield f"acc_n/{name}", counts[name]


def _subset(num_examples: int, limit: int | None, key: str) -> list[int] | None:
  if limit is None or num_examples <= limit:
    return None
  return sorted(random.Random(key).sample(range(num_examples), limit))


def _load_task(spec: formats.TaskSpec, tokenizer: Any, cfg: dict,
               docs: Sequence[Any] | None) -> tuple[prompts.PreparedTask, float]:
  """The task's prepared requests and its random baseline."""
  limit = cfg["examples_per_task"]
  if spec.generator is not None:
    examples = generators.generate(spec.generator, docs, limit or 200, seed=cfg["seed"],
                                   max_context_chars=cfg["max_context_chars"])
    formats.validate_examples(examples, spec.task_type, spec.name)
  else:
    examples = formats.read_task_file(spec.dataset_uri, spec.task_type)
  indices = _subset(len(examples), limit, f"{spec.name}:{cfg['seed']}")
  task = prompts.prepare_task(spec, examples, tokenizer, indices)
  try:  # Fail here, at load time, if some answer cannot fit in a row.
    scoring.check_fits(task.requests, cfg["seq_len"])
  except ValueError as e:
    raise ValueError(f"task {spec.name!r}: {e}") from None
  baseline = spec.random_baseline
  if not baseline and spec.task_type != formats.LANGUAGE_MODELING:
    # A choice task without a metadata row: guessing is right 1/#options of the time.
    baseline = formats.chance_level(spec.task_type, examples)
  return task, baseline


def build_evaluator(specs: Sequence[formats.TaskSpec], tokenizer: Any, cfg: dict,
                    documents: Iterable[str] | None = None) -> IclEvaluator:
  """Loads, prompts and tokenises `specs`; failing tasks are logged and skipped."""
  docs = None
  if any(s.generator is not None for s in specs):
    if documents is None:
      raise ValueError("embedded tasks need the held-out documents")
    docs = corpus.load_documents(documents)
  tasks, failures, baselines = [], {}, {}
  for spec in specs:
    try:
      task, baselines[spec.name] = _load_task(spec, tokenizer, cfg, docs)
      tasks.append(task)
    except (formats.IclFormatError, ValueError, OSError) as e:
      logging.warning("ICL task %r skipped: %s", spec.name, e)
      failures[spec.name] = str(e)
  eos = getattr(tokenizer, "eos_id", None)
  return IclEvaluator(tasks, seq_len=cfg["seq_len"], batch_size=cfg["batch_size"],
                      pad_id=0 if eos is None else int(eos), name=cfg["name"],
                      failures=failures, random_baselines=baselines)


def _resolve(eval_cfg: Any) -> dict:
  cfg = dict(DEFAULTS)
  for key in DEFAULTS:
    if hasattr(eval_cfg, "get"):
      value = eval_cfg.get(key, DEFAULTS[key])
    else:
      value = getattr(eval_cfg, key, DEFAULTS[key])
    cfg[key] = list(value) if key == "tasks" and value is not None else value
  return cfg


def _held_out_documents(dataset: Any) -> Iterable[str]:
  # Imported here: the data package is only needed for the embedded suite.
  from scaling_jax import data
  # The run's own corpus when the prepared dataset records its config.
  source = (getattr(dataset, "metadata", None) or {}).get("source") or {}
  config = source.get("config") or data.default_data_config()
  if config.get("source") in ("tfds", "seqio"):
    # Re-reading these would import TensorFlow in every worker; the shards have them.
    from scaling_jax.data import external
    return external.prepared_documents(dataset, "validation")
  return data.documents(config, "validation")


def make_icl_evaluator(eval_cfg: Any, dataset: Any,
                       documents: Iterable[str] | None = None) -> IclEvaluator:
  """Factory registered as kind 'icl': eval_cfg (see module docstring), dataset.tokenizer.

  `documents` replaces the held-out corpus of the embedded suite (for tests).
  """
  cfg = _resolve(eval_cfg)
  if cfg["suite"] == "embedded":
    specs = generators.embedded_specs(cfg["tasks"])
    if documents is None:
      documents = _held_out_documents(dataset)
  else:
    specs = suite.select_tasks(
        suite.load_icl_tasks(cfg["suite"], cfg["metadata_csv"], cfg["data_root"]),
        cfg["tasks"])
  return build_evaluator(specs, dataset.tokenizer, cfg, documents)


def mean_accuracy(results: Iterable[tuple[str, float]]) -> float:
  """Average of the acc/ metrics an evaluator yielded (NaN when there are none)."""
  values = [v for k, v in results if k.startswith("acc/")]
  return float(np.mean(values)) if values else float("nan")
