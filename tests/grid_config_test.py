"""configs/grid.py: the design tables, the paper's 104 runs, config.study."""
import collections
import json

import pytest

from conftest import load_config_module
from scaling_jax import launch
from scaling_jax import model as model_lib
from scaling_jax.fitting import points

grid = load_config_module("grid")


def _compute(preset, multiplier):
  n = model_lib.num_params(model_lib.preset(preset))
  return 6.0 * n * (multiplier * n)


def test_targets_cost_at_least_4x_the_largest_fit_run():
  largest = max(_compute(p, m) for p, m in grid.FIT_UNITS)
  for preset, multiplier in grid.TARGET_UNITS:
    assert _compute(preset, multiplier) >= 4 * largest, (preset, multiplier)


def test_default_design_shape_and_study_fields():
  sizes = [p for p, m in grid.FIT_UNITS if m == 20]
  assert len(set(sizes)) == 4
  smallest = min(sizes, key=lambda p: model_lib.num_params(model_lib.preset(p)))
  assert (smallest, 320) in grid.FIT_UNITS
  for arg in ("", "smoke", "paper"):
    config = grid.get_config(arg)
    labels = {u.label for u in launch.build_units(config, "/tmp/unused")}
    loss, err, targets = (set(points.names(config.study[k]))
                          for k in ("loss_design", "err_design", "targets"))
    assert loss and targets and loss <= labels and targets <= labels
    assert loss <= err <= labels and not err & targets
    assert config.launch.backend == "local"


def test_paper_variant_is_the_released_104_runs():
  config = grid.get_config("paper")
  units = launch.build_units(config, "/tmp/unused")
  assert len(units) == 104 and len({u.name for u in units}) == 104
  per_dataset = collections.Counter(u.config.dataset for u in units)
  assert per_dataset == {"c4": 34, "rpj": 35, "rw": 35}
  by_label = {(u.config.dataset, u.label): u for u in units}
  assert ("rpj", "openlm-1b@640") in by_label and ("c4", "openlm-7b@20") in by_label
  assert ("c4", "openlm-411m@640") not in by_label
  big = by_label[("rpj", "openlm-1b@640")]
  assert big.N == 1_439_795_200 and big.config.train.global_batch == 256
  assert big.config.optim.warmup_steps == 5000
  assert big.config.model.seq_len == 2048 and big.config.model.vocab_size == 50432
  assert by_label[("c4", "openlm-11m@20")].config.train.global_batch == 64
  assert points.names(config.study.err_design)[-1] == "openlm-1b@20"


def test_paper_dry_run_writes_each_units_config_and_trains_nothing(tmp_path, capsys):
  config = grid.get_config("paper")
  config.launch.dry_run = True
  units = launch.run(config, str(tmp_path))
  out = capsys.readouterr().out
  assert len(units) == 104 and "104 units" in out and "rpj_openlm-1b_M640_s0" in out
  written = sorted((tmp_path / "runs").glob("*/unit_config.json"))
  assert len(written) == 104
  assert not list((tmp_path / "runs").glob("*/records.jsonl"))
  for path in written:  # the file the workers read
    unit = json.loads(path.read_text())
    assert unit["model"]["compute_dtype"] == "bfloat16", path
  assert unit["name"] == path.parent.name
  # The fields where units differ are listed; shared ones are not.
  assert "model.width:" in out and "optim.warmup_steps:" in out
  assert "model.compute_dtype" not in out
  # The corpus paths the paper grid ships empty are listed, one override each.
  assert "--config.datasets.rpj.files.path=...  (35 units)" in out
  assert "--config.datasets.rw.files.path=...  (35 units)" in out
  assert "--config.data.hf.path=...  (104 units)" in out
  assert "datasets.c4" not in out  # a TFDS name is set


def test_paper_launch_names_every_unset_path_before_preparing_any_data(tmp_path):
  config = grid.get_config("paper")
  with pytest.raises(ValueError) as raised:
    launch.run(config, str(tmp_path))
  message = str(raised.value)
  for flag in ("--config.datasets.rpj.files.path", "--config.datasets.rw.files.path",
               "--config.data.hf.path"):
    assert flag in message
  # With every path given, the check has nothing to say.
  config.data.hf.path = "/tok.json"
  config.datasets.rpj.files.path = "/rpj/*.jsonl"
  config.datasets.rw.files.path = "/rw/*.jsonl"
  assert launch.units.unset_data_paths(launch.build_units(config, str(tmp_path))) == []
