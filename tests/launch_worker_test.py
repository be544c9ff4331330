"""launch/worker: the process that trains units from their config files."""
import json
import os

from conftest import load_config
from scaling_jax import launch
from scaling_jax.launch import worker
from scaling_jax.runs import table as runs_table


def test_worker_reads_unit_configs_and_skips_finished_units(tmp_path, monkeypatch):
  units = launch.build_units(load_config("grid", "smoke"), str(tmp_path))[:3]
  for unit in units:
    unit.write_config()
  runs_table.append_rows(os.path.join(units[0].workdir, "records.jsonl"), [dict(
      run=units[0].name, N=1, tokens=1, M=1.0, flops=6.0, step=1, final=True)])
  seen = []

  def fake_train(config, run_dir):
    seen.append((config.name, config.model.width, run_dir))

  monkeypatch.setattr("scaling_jax.train.train_run", fake_train)
  assert worker.train_units([u.workdir for u in units]) == []  # none busy
  assert seen == [(u.name, u.config.model.width, u.workdir) for u in units[1:]]


def test_loaded_unit_config_equals_the_planned_one(tmp_path):
  unit = launch.build_units(load_config("grid", "paper"), str(tmp_path))[-1]
  unit.write_config()
  loaded = worker.load_unit_config(unit.workdir)
  assert loaded.to_dict() == json.loads(unit.config.to_json())  # tuples become lists
  assert loaded.model.compute_dtype == "bfloat16"
