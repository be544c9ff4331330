"""configs/grid.py:smoke end to end: train, fit, report; a second run trains nothing."""
import shutil

import pytest

import notebooks
from conftest import SMOKE_RESAMPLES
from conftest import smoke_config
from scaling_jax import study
from scaling_jax.runs import table as runs_table

# Slow: trains six runs (once per session, shared). smoke_study: the other Python's
# check runs it too (tests/python312.sh).
pytestmark = [pytest.mark.slow, pytest.mark.smoke_study]


def test_smoke_study_trains_fits_reports_and_resumes_as_a_no_op(smoke_study, tmp_path):
  trained, result = smoke_study
  shutil.copytree(trained, tmp_path, dirs_exist_ok=True)
  text = (tmp_path / "report" / "summary.md").read_text()
  assert result.targets, "configs/grid.py:smoke names no targets"
  for t in result.targets:
    assert t["loss"] is not None and t["loss_lo"] <= t["loss_pred"] <= t["loss_hi"]
    assert f"{100 * t['loss_rel_err']:.2f}%" in text
  assert "measured targets inside their 95% prediction intervals" in text
  assert {"fit.json", "predictions.csv", "loss_vs_compute.png",
          "predicted_vs_measured.png"} <= {p.name for p in (tmp_path / "report").iterdir()}
  # A second run trains nothing and reuses the fit.
  rows = runs_table.read_rows(tmp_path / "runs")
  study.run(smoke_config(), tmp_path)
  assert runs_table.read_rows(tmp_path / "runs") == rows
  assert "fit reused" in (tmp_path / "report" / "summary.md").read_text()


@pytest.mark.slow
def test_quickstart_runs_the_smoke_study(smoke_study, tmp_path, monkeypatch):
  # colabs/quickstart.ipynb, tested here beside the smoke study's own test so that a
  # parallel run (pytest -n, which splits by file) trains the session's smoke study
  # once. The notebook runs the smoke study in a copy of the session's trained one:
  # it finds every unit finished (training is tested with the study itself) and runs
  # each of its cells on the real runs.
  workdir = tmp_path / "smoke_study"
  shutil.copytree(smoke_study[0], workdir)
  notebook = notebooks.execute("quickstart.ipynb", monkeypatch,
                               SCALING_JAX_WORKDIR=workdir,
                               SCALING_JAX_RESAMPLES=SMOKE_RESAMPLES)
  text = notebooks.text(notebook)
  assert "relative error" in text and "second run:" in text
  assert (workdir / "report" / "summary.md").is_file()
