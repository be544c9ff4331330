"""The command line: flags only, plain errors for bad overrides."""
import pytest
import subprocess
import sys

from conftest import REPO_ROOT

pytestmark = pytest.mark.slow  # every test here is of the full tier


def test_unknown_config_field_is_named_before_anything_runs(tmp_path):
  out = tmp_path / "out"
  proc = subprocess.run(
      [sys.executable, "-m", "scaling_jax.main", "--config=configs/grid.py:smoke",
       "--config.train.bogus=1", f"--workdir={out}"],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode != 0
  assert "--config.train.bogus=1" in proc.stderr and "'bogus'" in proc.stderr
  assert "Traceback" not in proc.stderr
  assert not out.exists()


def test_a_misspelt_field_keeps_ml_collections_did_you_mean(tmp_path):
  proc = subprocess.run(
      [sys.executable, "-m", "scaling_jax.main", "--config=configs/grid.py:smoke",
       "--config.train.global_bach=32", f"--workdir={tmp_path / 'out'}"],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode != 0 and "Traceback" not in proc.stderr
  assert 'Did you mean "global_batch" instead of "global_bach"?' in proc.stderr


def test_a_refused_input_is_one_message_without_traceback(tmp_path):
  proc = subprocess.run(
      [sys.executable, "-m", "scaling_jax.main", "--config=configs/grid.py:smoke",
       "--config.study.bootstrap.num_resamples=1", f"--workdir={tmp_path / 'out'}"],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2 and "Traceback" not in proc.stderr
  assert "study.bootstrap.num_resamples" in proc.stderr and "error:" in proc.stderr
  assert not (tmp_path / "out").exists()  # refused before anything was trained
