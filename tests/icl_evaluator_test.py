"""The in-loop evaluator: factory, failure isolation, fixed shapes, registration."""
import json
import logging

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import scaling_jax.evals.icl as icl
from conftest import load_config_module
from scaling_jax.evals.icl import evaluator
from scaling_jax.data import tokenization
from scaling_jax.evals.icl import generators

_CODE = '''
def area(width, height):
    """Area of a rectangle."""
    total = width * height
    if total > 0:
        for item in range(total):
            if item:
                print('item', item)
                values = {"a": [1, (2, 3)]}
    return compute(values[item])
'''


ByteTokenizer = tokenization.ByteTokenizer  # the real default tokenizer


class Dataset:
  tokenizer = ByteTokenizer()


def uniform_logits_fn(shapes):
  def logits_fn(tokens):
    shapes.append(tokens.shape)
    return jnp.zeros(tokens.shape + (257,), jnp.float32)
  logits_fn.batch_multiple = 4
  return logits_fn


def test_embedded_suite_end_to_end():
  documents = [_CODE * 3, "Some prose that is not code."]
  cfg = ml_collections.ConfigDict({"examples_per_task": 6, "seq_len": 64,
                                   "batch_size": 10, "max_context_chars": 48})
  ev = icl.make_icl_evaluator(cfg, Dataset(), documents=documents)
  assert ev.name == "icl"
  assert set(ev.random_baselines) == set(generators.TASKS)
  shapes = []
  yielded = dict(ev.evaluate(uniform_logits_fn(shapes)))
  results = {k: v for k, v in yielded.items() if k.startswith("acc/")}
  # Each accuracy comes with the count it was scored on (its evaluation noise).
  counts = {t.name: t.num_examples for t in ev.tasks}
  assert {k: v for k, v in yielded.items() if not k.startswith("acc/")} == {
      f"acc_n/{k[len('acc/'):]}": counts[k[len("acc/"):]] for k in results}
  shapes_first = list(shapes)
  assert set(shapes) == {(12, 64)}  # batch 10 rounded up to a multiple of 4
  assert ev.forward_tokens == ev.num_rows * 64 and len(shapes) == -(-ev.num_rows // 12)
  # Every task whose text had sites is reported; tasks without sites are skipped.
  assert results and set(results) <= {f"acc/{n}" for n in generators.TASKS}
  assert set(results) | {f"acc/{n}" for n in ev.failures} == {
      f"acc/{n}" for n in generators.TASKS}
  for name, value in results.items():
    assert 0.0 <= value <= 1.0
    if name in ("acc/bracket_closing", "acc/word_completion", "acc/repeat_identifier"):
      assert value == 0.0  # uniform logits: the argmax is token 0, never the text
  # A second call scores the same fixed-shape batches (nothing recompiles).
  assert dict(ev.evaluate(uniform_logits_fn(shapes))) == yielded
  assert shapes[len(shapes_first):] == shapes_first
  mean = np.mean(list(results.values()))
  assert evaluator.mean_accuracy(results.items()) == pytest.approx(mean)


def _write_jsonl(path, rows):
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_bad_tasks_are_reported_and_skipped(tmp_path, caplog):
  good = [{"query": f"q{i}", "choices": ["x", "y"], "gold": i % 2} for i in range(6)]
  _write_jsonl(tmp_path / "good.jsonl", good)
  bad = {"query": "q", "choices": [], "gold": 0}
  _write_jsonl(tmp_path / "bad.jsonl", good[:2] + [bad])
  _write_jsonl(tmp_path / "long.jsonl", [{"context": "c", "continuation": "x" * 40}])
  (tmp_path / "tasks.yaml").write_text(
      "icl_tasks:\n"
      "- {label: good, dataset_uri: good.jsonl, icl_task_type: multiple_choice,\n"
      "   num_fewshot: [2]}\n"
      "- {label: bad, dataset_uri: bad.jsonl, icl_task_type: multiple_choice}\n"
      "- {label: missing, dataset_uri: none.jsonl, icl_task_type: schema}\n"
      "- {label: long, dataset_uri: long.jsonl, icl_task_type: language_modeling}\n")
  cfg = {"suite": str(tmp_path / "tasks.yaml"), "seq_len": 32, "examples_per_task": 4}
  with caplog.at_level(logging.WARNING):
    ev = icl.make_icl_evaluator(cfg, Dataset())
  assert [t.name for t in ev.tasks] == ["good"]
  assert ev.tasks[0].num_examples == 4  # a seeded subset of the 6
  assert ev.random_baselines == {"good": 0.5}  # no metadata: 1 / #choices
  assert f"{tmp_path / 'bad.jsonl'}:3: field 'choices'" in ev.failures["bad"]
  assert "does not exist" in ev.failures["missing"]
  assert "does not fit seq_len 32" in ev.failures["long"]
  assert "ICL task 'bad' skipped" in caplog.text
  results = list(ev.evaluate(uniform_logits_fn([])))
  assert results == [("acc/good", results[0][1]), ("acc_n/good", 4)]


def test_task_selection_and_unknown_names():
  ev = icl.make_icl_evaluator({"tasks": ["string_quote"], "examples_per_task": 3},
                              Dataset(), documents=[_CODE * 3])
  assert [t.name for t in ev.tasks] == ["string_quote"]
  with pytest.raises(ValueError, match="unknown embedded task"):
    icl.make_icl_evaluator({"tasks": ["nope"]}, Dataset(), documents=[_CODE])


def test_registered_kind_builds_from_config_on_the_real_held_out_corpus():
  from scaling_jax.evals import base
  evals = ml_collections.ConfigDict({"icl": {"kind": "icl", "examples_per_task": 20}})
  (ev,) = base.build_evaluators(evals, Dataset())
  assert isinstance(ev, icl.IclEvaluator) and not ev.failures
  assert [t.num_examples for t in ev.tasks] == [20] * len(generators.TASKS)
  assert ev.random_baselines == {s.name: s.random_baseline
                                 for s in generators.embedded_specs()}


def test_rows_shrink_to_the_models_seq_len():
  ev = icl.make_icl_evaluator({"examples_per_task": 4, "seq_len": 128}, Dataset(),
                              documents=[_CODE * 3])
  shapes = []
  logits_fn = uniform_logits_fn(shapes)
  logits_fn.seq_len = 100
  assert dict(ev.evaluate(logits_fn))
  assert {s[1] for s in shapes} == {100}


def test_tasks_too_long_for_the_model_are_skipped_not_fatal(caplog):
  ev = icl.make_icl_evaluator({"examples_per_task": 4, "seq_len": 128}, Dataset(),
                              documents=[_CODE * 3])
  shapes = []
  logits_fn = uniform_logits_fn(shapes)
  logits_fn.seq_len = 4  # too short for most answers, long enough for a few
  scored = {k[len("acc/"):] for k in dict(ev.evaluate(logits_fn)) if k.startswith("acc/")}
  skipped = {k for k, m in ev.failures.items() if "model seq_len 4" in m}
  assert scored and skipped and not scored & skipped
  assert scored | skipped == {t.name for t in ev.tasks}
  assert "skipped for this model" in caplog.text


def _load_config(name):
  return load_config_module(f"tasks/{name}")


def test_embedded_suite_config():
  cfg = _load_config("embedded").get_config("examples=5")
  assert cfg.kind == "icl" and cfg.examples_per_task == 5
  ev = icl.make_icl_evaluator(cfg, Dataset(), documents=[_CODE * 3])
  assert ev.tasks
  with pytest.raises(ValueError, match="unknown variant"):
    _load_config("embedded").get_config("exmaples=5")


def test_gauntlet_suite_config(testbed_dir):
  cfg = _load_config("gauntlet").get_config(str(testbed_dir / "heavy.yaml"))
  assert cfg.seq_len == 2048 and cfg.examples_per_task is None
  specs = icl.load_icl_tasks(cfg.suite, cfg.metadata_csv, cfg.data_root)
  assert len(specs) == 46
