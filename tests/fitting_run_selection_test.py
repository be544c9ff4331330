"""fitting.run_selection: a curve fit's runs chosen by name, by condition, or by default."""
import pytest

from scaling_jax import fitting
from scaling_jax.fitting import curves
from scaling_jax.fitting import run_selection
from scaling_jax.fitting import settings as fitting_settings


def _run(n, tokens, loss, checkpoints=1):
  rows = []
  for i in range(1, checkpoints + 1):
    d = tokens * i / checkpoints
    rows.append({"N": n, "tokens": d, "flops": 6 * n * d, "M": tokens / n, "step": i,
                 "loss/validation": loss + (checkpoints - i) * 0.1})
  return rows


# Three budgets; C = 6 N D computed, as a table of (N, C) converted to tokens gives.
RUNS = {
    "a": _run(1e7, 2e8, 4.0), "b": _run(2e7, 1e8, 4.1),            # C = 1.2e16
    "c": _run(1e7, 1e9, 3.6, checkpoints=3), "d": _run(5e7, 2e8, 3.7),  # C = 6e16
    "e": _run(1e8, 1e9, 3.1), "f": _run(2e8, 5e8, 3.2),            # C = 6e17
}


def _curves(**fields):
  config = curves.default_config()
  config.update(fields)
  return config


def test_targets_by_condition_and_fit_runs_default_to_every_other_run():
  fit, targets = run_selection.select(RUNS, _curves(targets_where="flops == max"),
                                      "validation")
  assert targets == ["e", "f"] and fit == ["a", "b", "c", "d"]


def test_conditions_join_with_and_take_counts_min_and_the_final_checkpoint():
  fit, targets = run_selection.select(RUNS, _curves(
      targets_where="flops >= 6e17", fit_where="flops < 1e17 and N >= 20M"), "validation")
  assert targets == ["e", "f"] and fit == ["b", "d"]
  # Run c's early checkpoints have higher losses; its final one decides.
  _, targets = run_selection.select(RUNS, _curves(targets_where="loss <= 3.6"),
                                    "validation")
  assert targets == ["c", "e", "f"]
  _, targets = run_selection.select(RUNS, _curves(targets_where="N == min"), "validation")
  assert targets == ["a", "c"]


def test_named_and_selected_runs_add_up():
  fit, targets = run_selection.select(RUNS, _curves(
      targets="a", targets_where="flops == max", fit_runs="b", fit_where="M > 50"),
      "validation")
  assert targets == ["a", "e", "f"] and fit == ["b", "c"]


@pytest.mark.parametrize("text,message", [
    ("flops >> 1e20", r"'flops >> 1e20' is not 'FIELD OP VALUE'"),
    ("compute >= 1e20", r"names field 'compute'; fields: N, tokens, flops"),
    ("flops >= lots", r"the value must be a number like 1e21"),
    ("flops >= 1e20 or N < 1e8", r"is not 'FIELD OP VALUE'"),
])
def test_bad_conditions_name_the_field(text, message):
  with pytest.raises(fitting.StudyError, match=r"study.curves.targets_where.*" + message):
    run_selection.parse(text, "study.curves.targets_where")


def test_a_condition_selecting_nothing_or_everything_is_said():
  with pytest.raises(fitting.StudyError, match=r"selects no run; over the 6 runs: N 1e\+07"
                                               r"\.\.2e\+08"):
    run_selection.select(RUNS, _curves(targets_where="N > 1e12"), "validation")
  with pytest.raises(fitting.StudyError, match=r"every run is a target"):
    run_selection.select(RUNS, _curves(targets_where="N > 0"), "validation")


def test_any_selection_field_asks_for_a_curve_fit_and_needs_targets():
  assert not run_selection.requested(_curves())
  for field in ("fit_runs", "targets", "fit_where", "targets_where"):
    assert run_selection.requested(_curves(**{field: "x"}))
  study = fitting_settings.default_study_config()
  study.curves.fit_where = "N < 1e8"
  with pytest.raises(fitting.StudyError, match=r"'study.curves.targets' and "
                                               r"'.targets_where' are empty"):
    curves.check(study)
  study.curves.targets_where = "N >> 1"
  with pytest.raises(fitting.StudyError, match=r"study.curves.targets_where"):
    curves.check(study)


def test_a_named_target_not_in_the_table_is_refused_before_any_fit():
  rows = [dict(r, run=name) for name, checkpoints in RUNS.items() for r in checkpoints]
  study = fitting_settings.default_study_config()
  study.curves.targets = "e,nope"
  with pytest.raises(fitting.StudyError, match=r"'study.curves.targets' names run\(s\) "
                                               r"\['nope'\] that are not in the runs table"):
    curves.fit(rows, {}, study)
