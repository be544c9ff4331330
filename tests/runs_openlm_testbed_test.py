"""The released testbed: import, the task-subset rule, and Table 6 of the paper."""
import json
import logging
import shutil

import pytest

from scaling_jax.fitting import task_subset
from scaling_jax.runs import openlm_testbed
from scaling_jax.runs import table as runs_table
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms

# Table 6 of Gadre et al. 2024 (C4 eval loss, 17-task error), to 3 significant figures.
TABLE_6 = {
    "c4_original": dict(E=1.51, a=141, b=190, eta=0.121, eps=0.850, k=2.08, gamma=0.756),
    "rpj": dict(E=1.84, a=212, b=367, eta=0.136, eps=0.857, k=2.21, gamma=0.715),
    "rw_original": dict(E=1.73, a=157, b=246, eta=0.127, eps=0.865, k=2.21, gamma=0.707),
}
PAPER_SUBSET = {
    "bigbench_operators", "pubmed_qa_labeled", "hellaswag_zeroshot", "boolq", "arc_easy",
    "coqa", "bigbench_dyck_languages", "lambada_openai", "bigbench_novel_concepts",
    "winograd", "bigbench_cs_algorithms", "commonsense_qa", "bigbench_qa_wikidata",
    "hellaswag", "copa", "squad", "piqa"}
# The paper's Table 1 design, as (model, M): Eq. 4 on four sizes at M = 20 and the
# smallest at M = 320; Eq. 5 on those and the 1.4B model.
SIZES = ("d=96_l=8_h=4", "d=512_l=8_h=4", "d=576_l=24_h=8", "d=1024_l=24_h=8")
LOSS_DESIGN = [(m, 20.0) for m in SIZES] + [("d=96_l=8_h=4", 320.0)]
ERR_DESIGN = LOSS_DESIGN + [("open_lm_1b", 20.0)]
REFERENCE_N = 153_677_376


@pytest.fixture(scope="module")
def rows(testbed_dir):
  return openlm_testbed.load_rows(testbed_dir)


@pytest.fixture(scope="module")
def baselines(testbed_dir):
  info = openlm_testbed.load_task_info(testbed_dir)
  return {name: t.random_baseline for name, t in info.items()}


def test_every_model_becomes_one_row(rows):
  assert len(rows) == 98
  row = next(r for r in rows if r["run"] == "rpj-d=576_l=24_h=8-1.0")
  assert row["N"] == 153_677_376 and row["M"] == 20.0
  assert row["flops"] == 6.0 * row["N"] * row["tokens"]
  assert {"loss/c4_val", "loss/paloma_ptb", "loss/de-en", "loss_ci/c4_val"} <= set(row)
  assert 0.0 < row["acc/hellaswag"] < 1.0


def test_subset_rule_gives_the_papers_17_tasks_and_46_in_all(rows, baselines):
  assert len(task_subset.common_tasks(rows, baselines)) == 46
  subset = task_subset.tasks_above_chance(rows, baselines, reference_params=153_677_376)
  assert set(subset) == PAPER_SUBSET


def _sig3(value):
  return float(f"{value:.3g}")


def _design(rows, train, design):
  by_point = {(r["model"], r["M"]): r for r in rows if r["dataset"] == train}
  return [by_point[point] for point in design]


def _fit_table_6(rows, baselines, train, reference_rows):
  """Table 6's parameters for `train`, with tasks chosen on its error design."""
  err_rows = _design(rows, train, ERR_DESIGN)
  tasks = task_subset.tasks_above_chance(err_rows, baselines, reference_params=REFERENCE_N,
                                   reference_rows=reference_rows)
  assert set(tasks) == PAPER_SUBSET
  loss_rows = _design(rows, train, LOSS_DESIGN)
  loss = fit_lib.fit(forms.OVERTRAINING, {"C": [r["flops"] for r in loss_rows],
                                          "M": [r["M"] for r in loss_rows]},
                     [r["loss/c4_val"] for r in loss_rows])
  err = fit_lib.fit(forms.DOWNSTREAM, {"L": [r["loss/c4_val"] for r in err_rows]},
                    [task_subset.average_error(r, tasks) for r in err_rows])
  got = {**loss.named_params, **err.named_params}
  return {k: _sig3(got[k]) for k in TABLE_6[train]}


@pytest.mark.slow
@pytest.mark.parametrize("train", sorted(TABLE_6))
def test_table_6_is_reproduced(rows, baselines, train):
  # The paper picks tasks with the 154M models of all three training sets.
  assert _fit_table_6(rows, baselines, train, reference_rows=rows) == TABLE_6[train]


def test_accepts_a_model_it_has_never_seen(testbed_dir, tmp_path):
  copy = tmp_path / "tb"
  shutil.copytree(testbed_dir, copy)
  source = json.loads((copy / "models" / "rpj-d=96_l=8_h=4-1.0.json").read_text())
  source["name"] = "rpj-mystery-2.0"
  source["hyperparameters"].update(params=12_345_678, tokens=12_345_678 * 40,
                                   chinchilla_multiplier=2.0, model="x/mystery.json")
  (copy / "models" / "rpj-mystery-2.0.json").write_text(json.dumps(source))
  rows = openlm_testbed.load_rows(copy)
  new = next(r for r in rows if r["run"] == "rpj-mystery-2.0")
  assert new["M"] == 40.0 and new["model"] == "mystery" and "acc/copa" not in new


@pytest.mark.parametrize("corrupt,message", [
    (lambda d: (d / "models" / "rpj-d=96_l=8_h=4-1.0.json").write_text("{\"name\": 1,"),
     r"rpj-d=96_l=8_h=4-1.0.json: malformed JSON at line 1"),
    (lambda d: _edit(d, "rpj-d=96_l=8_h=4-1.0", lambda m: m["hyperparameters"].pop("params")),
     r"rpj-d=96_l=8_h=4-1.0.json: missing field 'hyperparameters.params'"),
    (lambda d: _edit(d, "rpj-d=96_l=8_h=4-1.0", lambda m: m["results"][1].update(loss="NaN")),
     r"field 'results\[1\].loss' \(c4_val\) must be a finite number"),
    (lambda d: shutil.rmtree(d / "models"), "has no models/ folder"),
])
def test_bad_directories_name_file_and_field(testbed_dir, tmp_path, corrupt, message):
  copy = tmp_path / "tb"
  shutil.copytree(testbed_dir, copy)
  corrupt(copy)
  with pytest.raises(openlm_testbed.TestbedError, match=message):
    openlm_testbed.load_rows(copy)


def _edit(root, name, change):
  path = root / "models" / f"{name}.json"
  model = json.loads(path.read_text())
  change(model)
  path.write_text(json.dumps(model).replace('"NaN"', "NaN"))


def test_missing_directory_is_named(tmp_path):
  with pytest.raises(openlm_testbed.TestbedError, match="does not exist"):
    openlm_testbed.load_rows(tmp_path / "nowhere")


def _copy(testbed_dir, tmp_path):
  copy = tmp_path / "tb"
  shutil.copytree(testbed_dir, copy)
  return copy


def test_duplicate_model_names_are_an_error_naming_both_files(testbed_dir, tmp_path):
  copy = _copy(testbed_dir, tmp_path)
  shutil.copy(copy / "models" / "rpj-d=96_l=8_h=4-1.0.json", copy / "models" / "zz-copy.json")
  with pytest.raises(openlm_testbed.TestbedError,
                     match=r"rpj-d=96_l=8_h=4-1.0.json and .*zz-copy.json both hold the "
                           r"model named 'rpj-d=96_l=8_h=4-1.0'"):
    openlm_testbed.load_rows(copy)


def test_a_missing_eval_file_elsewhere_leaves_the_fit_alone(testbed_dir, tmp_path, baselines):
  # A c4 reference-size model loses its eval file: the rpj fit must not notice.
  copy = _copy(testbed_dir, tmp_path)
  gone = copy / "evals" / "evaluation_c4_original-d=576_l=24_h=8-1.0_heavy.json"
  gone.unlink()
  rows = openlm_testbed.load_rows(copy)
  assert _fit_table_6(rows, baselines, "rpj", reference_rows=rows) == TABLE_6["rpj"]
  expected = _measured(rows, baselines)
  assert openlm_testbed.eval_coverage(_design(rows, "rpj", ERR_DESIGN), expected).lines() == []
  c4 = openlm_testbed.eval_coverage(_design(rows, "c4_original", ERR_DESIGN), expected)
  assert c4.lines() == [f"run c4_original-d=576_l=24_h=8-1.0: no eval file {gone}; it has "
                        "no accuracies"]
  assert c4.gaps[0].file_missing


def test_tasks_missing_from_one_eval_file_are_named(testbed_dir, tmp_path, baselines, caplog):
  copy = _copy(testbed_dir, tmp_path)
  path = copy / "evals" / "evaluation_rpj-d=512_l=8_h=4-1.0_heavy.json"
  data = json.loads(path.read_text())
  del data["eval_metrics"]["icl"]["copa"], data["eval_metrics"]["icl"]["boolq"]
  path.write_text(json.dumps(data))
  rows = openlm_testbed.load_rows(copy)
  err_rows = _design(rows, "rpj", ERR_DESIGN)
  run = "rpj-d=512_l=8_h=4-1.0"
  expected = _measured(rows, baselines)
  assert openlm_testbed.eval_coverage(err_rows, expected).lines() == [
      f"run {run}: {path} lacks task(s) boolq, copa"]
  assert task_subset.task_coverage(err_rows, expected) == {"boolq": [run], "copa": [run]}
  with caplog.at_level(logging.WARNING):
    tasks = task_subset.tasks_above_chance(err_rows, baselines, reference_params=REFERENCE_N,
                                     reference_rows=rows)
  assert set(tasks) == PAPER_SUBSET - {"boolq", "copa"}  # smaller, but not silently:
  assert f"boolq, copa (missing in {run})" in caplog.text


def test_every_eval_file_lacks_a_task_of_one_training_set(testbed_dir, tmp_path, baselines):
  copy = _copy(testbed_dir, tmp_path)
  for path in (copy / "evals").glob("evaluation_rpj-*.json"):
    data = json.loads(path.read_text())
    del data["eval_metrics"]["icl"]["copa"]
    path.write_text(json.dumps(data))
  rows = openlm_testbed.load_rows(copy)
  err_rows = _design(rows, "rpj", ERR_DESIGN)
  coverage = task_subset.task_coverage(err_rows, _measured(rows, baselines))
  assert coverage == {"copa": [r["run"] for r in err_rows]}  # no rpj model has it


def test_the_released_testbed_has_no_gaps(rows, baselines):
  expected = _measured(rows, baselines)
  assert len(expected) == 46  # eval_metadata.csv's 5 generation tasks are unmeasured
  assert openlm_testbed.eval_coverage(rows, expected).gaps == []
  assert task_subset.task_coverage(rows, expected) == {}


def _measured(rows, baselines):
  """Tasks with a chance level that some run of the whole directory reports."""
  return set(baselines) & set(runs_table.metric_names(rows, runs_table.ACC_PREFIX))


def test_accuracies_in_percent_name_the_eval_file_and_field(testbed_dir, tmp_path):
  root = _copy(testbed_dir, tmp_path)
  path = root / "evals" / "evaluation_rpj-d=96_l=8_h=4-1.0_heavy.json"
  data = json.loads(path.read_text())
  data["eval_metrics"]["icl"] = {k: 100 * v for k, v in data["eval_metrics"]["icl"].items()}
  path.write_text(json.dumps(data))
  with pytest.raises(openlm_testbed.TestbedError,
                     match=r"evaluation_rpj-d=96_l=8_h=4-1.0_heavy.json: field "
                           r"'eval_metrics.icl.\w+' must be an accuracy in \[0, 1\].*percentage"):
    openlm_testbed.load_rows(root)
