"""The released testbed: import, the task-subset rule, and Table 6 of the paper."""
import json
import shutil

import numpy as np
import pytest

from scaling_jax import fit_study
from scaling_jax.evals import task_subset
from scaling_jax.runs import openlm_testbed
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms

import configs.testbed as testbed_config

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
  subset = task_subset.select_tasks(rows, baselines, reference_params=153_677_376)
  assert set(subset) == PAPER_SUBSET


def _sig3(value):
  return float(f"{value:.3g}")


@pytest.mark.parametrize("train", sorted(TABLE_6))
def test_table_6_is_reproduced(rows, baselines, train):
  config = testbed_config.get_config(f"train={train}")
  tasks = task_subset.select_tasks(rows, baselines, reference_params=153_677_376)
  train_rows = [dict(r, err=task_subset.average_error(r, tasks))
                for r in rows if r["dataset"] == train]
  loss_rows = fit_study.select_design(train_rows, config.loss_design)
  err_rows = fit_study.select_design(train_rows, config.err_design)
  loss = fit_lib.fit(forms.OVERTRAINING, {"C": [r["flops"] for r in loss_rows],
                                          "M": [r["M"] for r in loss_rows]},
                     [r["loss/c4_val"] for r in loss_rows])
  err = fit_lib.fit(forms.DOWNSTREAM, {"L": [r["loss/c4_val"] for r in err_rows]},
                    [r["err"] for r in err_rows])
  got = {**loss.named_params, **err.named_params}
  assert {k: _sig3(got[k]) for k in TABLE_6[train]} == TABLE_6[train]


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
