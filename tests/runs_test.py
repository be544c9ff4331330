"""runs: choosing a source, and its errors."""
import pytest

from scaling_jax import config_lib
from scaling_jax import runs
from scaling_jax.runs import table as runs_table


def test_own_runs_are_read_below_workdir_runs(tmp_path):
  row = dict(run="r", N=10, tokens=100, M=10.0, flops=6000.0, step=1, final=True)
  runs_table.append_rows(tmp_path / "runs" / "r" / "records.jsonl", [row])
  loaded = runs.load(config_lib.default_config(), tmp_path)
  assert loaded.rows == [row] and loaded.where == str(tmp_path / "runs")
  assert "indent_after_colon" in loaded.task_baselines  # from config.evals' ICL suite


def test_missing_runs_and_bad_source_are_named(tmp_path):
  config = config_lib.default_config()
  with pytest.raises(runs.RunsError, match="no runs under .*train them first"):
    runs.load(config, tmp_path)
  config.runs.source = "mlflow"
  with pytest.raises(runs.RunsError, match="runs.source' is 'mlflow'"):
    runs.load(config, tmp_path)
  config.runs.source = "openlm_testbed"
  with pytest.raises(runs.RunsError, match="runs.path' is empty"):
    runs.load(config, tmp_path)


def test_testbed_notes_name_gaps_of_the_chosen_training_set_only(testbed_dir, tmp_path):
  import shutil  # pylint: disable=import-outside-toplevel
  copy = tmp_path / "testbed"
  shutil.copytree(testbed_dir, copy)
  c4_eval = sorted((copy / "evals").glob("evaluation_c4_original-d=512*1.0_heavy.json"))[0]
  c4_eval.unlink()
  config = config_lib.default_config()
  config.runs.source, config.runs.path = "openlm_testbed", str(copy)
  config.study.dataset = "rpj"
  assert runs.load(config, tmp_path).notes == []
  config.study.dataset = "c4_original"
  notes = runs.load(config, tmp_path).notes
  assert len(notes) == 1 and c4_eval.name in notes[0]
