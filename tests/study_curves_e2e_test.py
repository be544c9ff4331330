"""configs/curves.py end to end: a CSV log in the default layout, fitted and predicted."""
import pytest
import csv
import json
import subprocess
import sys

import numpy as np

from conftest import REPO_ROOT

pytestmark = pytest.mark.slow  # every test here is of the full tier

TRUTH = dict(E=1.7, A=400.0, B=1200.0, alpha=0.34, beta=0.28)


def _write_log(path, sizes=(2e7, 5e7, 1.2e8, 3e8), noise=0.002):
  rng = np.random.default_rng(0)
  with path.open("w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["run", "params", "tokens", "loss"])
    for name, n in zip("abcd", sizes):
      for d in np.geomspace(20 * n / 30, 20 * n, 12):
        loss = TRUTH["E"] + TRUTH["A"] * n ** -TRUTH["alpha"] + TRUTH["B"] * d ** -TRUTH["beta"]
        writer.writerow([name, f"{n:.0f}", f"{d:.0f}", f"{loss * (1 + noise * rng.standard_normal()):.5f}"])


def _run(log, workdir, *flags):
  return subprocess.run(
      [sys.executable, "-m", "scaling_jax.main", f"--config=configs/curves.py:csv={log}",
       "--config.study.curves.fit_runs=a,b,c", "--config.study.curves.targets=d",
       "--config.study.curves.min_tokens=1e8", "--config.study.bootstrap.num_resamples=64",
       f"--workdir={workdir}", *flags],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)


def test_the_documented_command_fits_and_predicts_a_csv_log(tmp_path):
  log = tmp_path / "log.csv"
  _write_log(log)
  proc = _run(log, tmp_path / "out")
  assert proc.returncode == 0, proc.stderr[-2000:]
  report = tmp_path / "out" / "report"
  fit = json.loads((report / "fit.json").read_text())
  [target] = fit["targets"]
  assert target["run"] == "d" and target["fit"] == "all checkpoints"
  assert target["are"] < 0.02 and target["are_lo"] <= target["are_hi"]
  with (report / "predictions.csv").open() as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 48 and {r["run"] for r in rows} == set("abcd")
  assert not any(r["used_in_fit"] == "True" for r in rows if r["run"] == "d")
  assert any(r["used_in_fit"] == "False" for r in rows if r["run"] == "a")  # the cut
  summary = (report / "summary.md").read_text()
  assert "ARE" in summary and "| d |" in summary and "final-only fit not made" in summary
  assert (report / "curves.png").stat().st_size > 1000


def test_a_malformed_log_is_refused_by_file_row_and_column_and_writes_nothing(tmp_path):
  log = tmp_path / "log.csv"
  _write_log(log)
  lines = log.read_text().splitlines()
  lines[5] = lines[5].rsplit(",", 1)[0] + ",nan"
  log.write_text("\n".join(lines) + "\n")
  proc = _run(log, tmp_path / "out")
  assert proc.returncode == 2 and "Traceback" not in proc.stderr
  assert "log.csv:6" in proc.stderr and "'loss'" in proc.stderr
  assert not (tmp_path / "out" / "report").exists()
