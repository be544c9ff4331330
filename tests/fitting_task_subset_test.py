"""The task-subset rule on small hand-made rows: gaps are named, never silent."""
import logging

import pytest

from scaling_jax.fitting import task_subset

BASELINES = {"a": 0.25, "b": 0.5, "c": 0.25, "never": 0.25}


def _row(run, n, **accs):
  return {"run": run, "N": n, **{f"acc/{t}": v for t, v in accs.items()}}


FULL = [_row("small", 10, a=0.30, b=0.52, c=0.26), _row("big", 100, a=0.60, b=0.55, c=0.40)]


def test_complete_rows_have_no_gaps_and_no_warning(caplog):
  with caplog.at_level(logging.WARNING):
    assert task_subset.common_tasks(FULL, BASELINES) == ["a", "b", "c"]
  assert task_subset.task_coverage(FULL, ["a", "b", "c"]) == {}
  assert task_subset.task_coverage(FULL, BASELINES) == {"never": ["small", "big"]}
  assert task_subset.format_coverage({}) == "" and not caplog.text


def test_a_run_lacking_tasks_is_named_with_them(caplog):
  rows = FULL + [_row("gappy", 10, b=0.5)]
  assert task_subset.task_coverage(rows, "abc") == {"a": ["gappy"], "c": ["gappy"]}
  with caplog.at_level(logging.WARNING):
    assert task_subset.common_tasks(rows, BASELINES) == ["b"]
  assert "dropped 2 task(s) that some fit runs lack: a, c (missing in gappy)" in caplog.text


def test_format_coverage_groups_runs_and_caps_long_lists():
  coverage = {"a": ["r1"], "b": ["r1"], "c": [f"r{i}" for i in range(5)]}
  assert task_subset.format_coverage(coverage, limit=2) == (
      "dropped 3 task(s) that some fit runs lack: a, b (missing in r1); "
      "c (missing in r0, r1 and 3 more)")


def test_reference_models_may_come_from_other_rows_and_may_have_gaps(caplog):
  fit_rows = [_row("fit", 10, a=0.3, b=0.5, c=0.3)]
  reference = [_row("ref1", 100, a=0.40, b=0.55), _row("ref2", 100, a=0.30, b=0.70)]
  # The old signature still works, with the fit rows as their own reference pool.
  with pytest.raises(ValueError, match="no model has N within 1% of 100"):
    task_subset.tasks_above_chance(fit_rows, BASELINES, reference_params=100)
  with caplog.at_level(logging.WARNING):
    kept = task_subset.tasks_above_chance(fit_rows, BASELINES, reference_params=100,
                                    reference_rows=fit_rows + reference)
  assert kept == ["a", "b"]  # a: 40 - 25 = 15 points (ref1), b: 70 - 50 = 20 (ref2)
  assert "dropped task(s) ['c']: no model with N ~ 100 reports them" in caplog.text


def test_a_gap_outside_the_rows_passed_changes_nothing():
  other_set = _row("other", 100, a=0.9)  # lacks b and c, but is not fit
  assert task_subset.tasks_above_chance(FULL, BASELINES, reference_params=100) == ["a", "c"]
  assert task_subset.tasks_above_chance(FULL, BASELINES, reference_params=100,
                                  reference_rows=FULL + [other_set]) == ["a", "c"]
