"""configs/grid.py:smoke end to end: train, fit, report; a second run trains nothing.

The workdir is shared with tests/colabs_test.py (the quickstart notebook runs the
same study): whichever runs first trains, the other finds every unit finished.
"""
import time

import configs.grid as grid
from scaling_jax.runs import table as runs_table
from scaling_jax import study

NUM_RESAMPLES = 64  # intervals are checked, not their precision


def smoke_config():
  config = grid.get_config("smoke")
  config.study.bootstrap.num_resamples = NUM_RESAMPLES
  return config


def smoke_workdir(tmp_path_factory):
  return tmp_path_factory.getbasetemp() / "smoke_study"


def test_smoke_study_trains_fits_and_reports(tmp_path_factory):
  workdir = smoke_workdir(tmp_path_factory)
  result = study.run(smoke_config(), workdir)
  text = (workdir / "report" / "summary.md").read_text()
  assert result.targets, "configs/grid.py:smoke names no targets"
  for t in result.targets:
    assert t["loss"] is not None and t["loss_lo"] <= t["loss_pred"] <= t["loss_hi"]
    assert f"{100 * t['loss_rel_err']:.2f}%" in text
  assert "measured targets inside their 95% intervals" in text
  assert {"fit.json", "predictions.csv", "loss_vs_compute.png",
          "predicted_vs_measured.png"} <= {p.name for p in (workdir / "report").iterdir()}


def test_second_run_trains_nothing_and_is_fast(tmp_path_factory):
  workdir = smoke_workdir(tmp_path_factory)
  study.run(smoke_config(), workdir)  # trains only if the test above did not run
  rows = runs_table.read_rows(workdir / "runs")
  start = time.time()
  study.run(smoke_config(), workdir)
  seconds = time.time() - start
  assert runs_table.read_rows(workdir / "runs") == rows
  assert "fit reused" in (workdir / "report" / "summary.md").read_text()
  assert seconds < 30, seconds  # about 5 s on 2 idle cores: launcher check + plots
