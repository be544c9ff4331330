"""launch/units: planning units, their config files, and what differs between them."""
import json

from conftest import load_config
from scaling_jax import launch
from scaling_jax.launch import units as units_lib


def test_units_are_planned_and_write_the_config_workers_read(tmp_path):
  config = load_config("grid", "smoke")
  units = launch.build_units(config, str(tmp_path))
  assert len(units) == len(config.sweep)
  for unit in units:
    assert unit.workdir == str(tmp_path / "runs" / unit.name)
    assert unit.flops == 6.0 * unit.N * unit.tokens
    assert abs(unit.tokens / (unit.M * unit.N) - 1) < 0.05  # rounded to whole steps
  path = units[0].write_config()
  written = json.loads(open(path, encoding="utf-8").read())
  assert written == json.loads(units[0].config.to_json())
  assert [p.name for p in (tmp_path / "runs" / units[0].name).iterdir()] == [
      "unit_config.json"]  # no temporary file left behind


def test_differing_fields_lists_what_units_do_not_share(tmp_path):
  units = launch.build_units(load_config("grid", "smoke"), str(tmp_path))
  diff = units_lib.differing_fields(units)
  assert "train.tokens_per_param" in diff and "model.width" in diff
  assert "optim.peak_lr" not in diff and "name" not in diff
  assert set(diff["train.tokens_per_param"]) == {repr(u.M) for u in units}
  text = units_lib.format_differences(units)
  assert text.startswith("config fields that differ") and "model.width:" in text
  same = units_lib.format_differences(units[:1])
  assert "share every config field" in same


def test_table_lists_every_unit_and_the_total(tmp_path):
  units = launch.build_units(load_config("grid", "smoke"), str(tmp_path))
  table = units_lib.format_table(units)
  for unit in units:
    assert unit.name in table
  assert f"{len(units)} units" in table and table.count("to train") == len(units)
