"""Sweep expansion, unit names, config errors and skipping finished units."""
import os

import pytest

from conftest import load_config
from conftest import load_config_module
from scaling_jax import launch
from scaling_jax.launch import sweep
from scaling_jax.runs import table as runs_table

grid = load_config_module("grid")


def test_grid_default_and_smoke_variants():
  config = grid.get_config("")
  names = [u.name for u in sweep.expand(config)]
  assert names[:4] == [f"{p}_M{m}_s0" for p, m in grid.FIT_UNITS[:4]]
  assert {f"{p}_M{m}_s0" for p, m in grid.TARGET_UNITS} <= set(names)
  smoke = grid.get_config("smoke")
  assert len(smoke.sweep) >= 2
  with pytest.raises(ValueError, match="unknown variant.*bogus"):
    grid.get_config("bogus=1")


def test_every_default_unit_fits_its_corpus(tmp_path):
  config = grid.get_config("")
  config.data.cache_dir = str(tmp_path)
  launch.units.validate_data(launch.build_units(config, str(tmp_path)))


def test_too_large_m_fails_before_training_naming_the_field(tmp_path, monkeypatch):
  config = grid.get_config("smoke")
  config.data.cache_dir = str(tmp_path / "cache")
  config.sweep = [dict(model="tiny-0"), dict(model="tiny-3", tokens_per_param=99)]
  monkeypatch.setattr("scaling_jax.train.train_run", lambda *a: pytest.fail("trained"))
  with pytest.raises(ValueError, match="'tiny-3_M99'.*config.train.tokens_per_param"):
    launch.run(config, str(tmp_path))
  config.launch.backend = "ssh"
  with pytest.raises(ValueError, match="config.launch.backend is 'ssh'"):
    launch.run(config, str(tmp_path))


def test_unit_config_applies_overrides():
  config = grid.get_config("smoke")
  unit = sweep.unit_config(config, dict(model="tiny-3", tokens_per_param=40,
                                        seed=2, **{"optim.peak_lr": 1e-3}))
  assert unit.model.name == "tiny-3" and unit.model.width == 64
  assert unit.train.tokens_per_param == 40.0 and unit.seed == 2
  assert unit.optim.peak_lr == 1e-3 and unit.name == "tiny-3_M40_s2_peak_lr=0.001"
  names = sweep.unit_names([dict(model="tiny-1", **{"optim.peak_lr": lr})
                            for lr in (1e-3, 3e-3)] + [dict(model="tiny-2", seed=0)])
  # Dotted keys name a unit only where they tell it apart from its siblings.
  assert names == ["tiny-1_peak_lr=0.001", "tiny-1_peak_lr=0.003", "tiny-2_s0"]
  assert config.model.name == "tiny-3"  # the parent config is untouched default


def test_unknown_preset_and_field_fail_clearly():
  config = grid.get_config("smoke")
  with pytest.raises(ValueError, match="unknown model preset 'huge'.*known"):
    sweep.unit_config(config, dict(model="huge"))
  with pytest.raises(ValueError, match="no field 'peak_rate'"):
    sweep.unit_config(config, {"optim.peak_rate": 1.0})
  config.sweep = [dict(model="tiny-1"), dict(model="tiny-1")]
  with pytest.raises(ValueError, match="several units"):
    sweep.expand(config)


def test_wrong_type_and_unknown_dataset_fail_naming_the_field():
  config = grid.get_config("smoke")
  with pytest.raises(ValueError, match="tokens_per_param='lots' must be a float"):
    sweep.unit_config(config, dict(model="tiny-1", tokens_per_param="lots"))
  with pytest.raises(ValueError, match="optim.peak_lr.*wrong type"):
    sweep.unit_config(config, {"optim.peak_lr": "fast"})
  with pytest.raises(ValueError, match="config.datasets has no entry 'c4'"):
    sweep.unit_config(config, dict(dataset="c4"))


def test_dataset_key_lays_a_named_data_config_over_config_data():
  config = grid.get_config("paper")
  unit = sweep.unit_config(config, dict(dataset="c4", model="openlm-11m"))
  assert unit.dataset == "c4" and unit.data.source == "tfds"
  assert unit.data.tfds.name == "c4/en:3.0.1" and unit.name == "c4_openlm-11m"


def test_finished_units_are_skipped(tmp_path, monkeypatch):
  config = grid.get_config("smoke")
  config.launch.backend = "inline"
  config.data.cache_dir = str(tmp_path / "cache")
  units = sweep.expand(config)
  row = dict(run=units[0].name, N=1, tokens=1, M=20.0, flops=6.0, step=1,
             final=True)
  runs_table.append_rows(tmp_path / "runs" / units[0].name / "records.jsonl", [row])
  trained = []
  def fake_train(unit, workdir):
    trained.append(unit.name)
    runs_table.append_rows(os.path.join(workdir, "records.jsonl"),
                        [dict(row, run=unit.name, final=True)])

  monkeypatch.setattr("scaling_jax.train.train_run", fake_train)
  launch.run(config, str(tmp_path))
  assert trained == [u.name for u in units[1:]]
  assert runs_table.is_finished(os.path.join(tmp_path, "runs", units[0].name))


@pytest.mark.parametrize("arg", ["paper", ""])
def test_explicit_model_fields_survive_the_preset_of_every_unit(arg):
  """A preset lies under the config's explicit model fields (flags included)."""
  config = load_config("grid", arg)
  config.model.compute_dtype = "bfloat16"  # as --config.model.compute_dtype=bfloat16
  config.model.z_loss = 3e-4
  units = sweep.expand(config)
  assert len(units) > 1
  for unit in units:
    assert unit.model.compute_dtype == "bfloat16" and unit.model.z_loss == 3e-4
    assert unit.model.name in unit.name  # the preset still picks the shape
  widths = {u.model.name: u.model.width for u in units}
  assert len(set(widths.values())) == len(widths) > 1


def test_paper_units_train_in_bfloat16_by_default():
  for unit in sweep.expand(load_config("grid", "paper")):
    assert unit.model.compute_dtype == "bfloat16" and unit.model.seq_len == 2048
    assert unit.model.vocab_size == 50432


def test_a_leaf_override_lands_on_the_units_preset():
  config = load_config("grid", "smoke")
  unit = sweep.unit_config(config, {"model.z_loss": 0.0, "model": "tiny-1"})
  assert unit.model.z_loss == 0.0 and unit.model.name == "tiny-1"
