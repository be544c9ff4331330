"""The train loop reads its batches through data.reader: grain or numpy, same run."""
import os
import pathlib
import subprocess
import sys

import pytest

from scaling_jax import data
from scaling_jax import train
from scaling_jax.data import grain_reader
from scaling_jax.runs import table as runs_table
from conftest import tiny_train_config

REPO = pathlib.Path(__file__).resolve().parents[1]




def _losses(run_dir) -> list[float]:
  return [r["loss/validation"] for r in
          runs_table.read_rows(pathlib.Path(run_dir) / runs_table.RECORDS_FILENAME)]


@pytest.mark.skipif(not grain_reader.has_grain(), reason="needs grain: "
                    "pip install 'scaling_jax[grain]'")
def test_a_grain_fed_worker_trains_as_numpy_and_exits(tmp_path, data_cache):
  config = tiny_train_config(data_cache)
  config.data.reader = "numpy"
  want = _losses_of(train.train_run(config, str(tmp_path / "numpy")))
  # In a worker process, as the launcher runs it: grain's prefetch threads must
  # not keep it from exiting once the unit is done.
  config.data.reader = "grain"
  run_dir = tmp_path / "grain"
  run_dir.mkdir()
  (run_dir / "unit_config.json").write_text(config.to_json())
  done = subprocess.run([sys.executable, "-m", "scaling_jax.launch.worker", str(run_dir)],
                        capture_output=True, text=True, timeout=300,
                        env=dict(os.environ, PYTHONPATH=str(REPO)))
  assert done.returncode == 0, done.stderr[-3000:]
  assert _losses(run_dir) == want and len(want) == 3


def _losses_of(rows) -> list[float]:
  return [r["loss/validation"] for r in rows]


def test_an_unknown_reader_is_named_with_its_choices():
  with pytest.raises(ValueError, match=r"'reader' is 'tf'; expected one of "
                     r"\['auto', 'grain', 'numpy'\]"):
    data.resolve_config({"reader": "tf"})
