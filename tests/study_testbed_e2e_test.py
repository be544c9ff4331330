"""The testbed study end to end: outputs, intervals, summary.md, nothing written on failure."""
import csv
import json

import pytest

from conftest import load_config
from scaling_jax import fitting
from scaling_jax import runs
from scaling_jax import study
from scaling_jax.report import outputs


def _config(directory, **overrides):
  config = load_config("testbed", "train=rpj")
  config.testbed_dir = str(directory)
  config.study.bootstrap.num_resamples = 64  # intervals are checked, not their precision
  for key, value in overrides.items():
    node, _, leaf = key.rpartition(".")
    setattr(config[node] if node else config, leaf, value)
  return config


def test_writes_the_report_with_summary(testbed_dir, tmp_path):
  study.run(_config(testbed_dir), str(tmp_path))
  report = tmp_path / "report"
  assert {p.name for p in tmp_path.iterdir()} == {"report"}
  assert {p.name for p in report.iterdir()} == {
      ".fit_cache.pkl", "summary.md", "fit.json", "predictions.csv",
      "loss_vs_compute.png", "error_vs_loss.png", "relative_error_heatmap.png",
      "predicted_vs_measured.png"}
  fit = json.loads((report / "fit.json").read_text())
  for law in ("loss_law", "error_law"):
    for name, p in fit[law]["params"].items():
      assert p["lo"] <= p["value"] <= p["hi"], (law, name, p)
  assert fit["loss_law"]["params"]["eta"]["value"] == pytest.approx(0.1364, abs=5e-4)
  assert fit["solver"]["num_starts"] == 128 and fit["versions"]["jax"]
  assert len(fit["downstream_tasks"]) == 17
  target = fit["targets"][0]
  assert target["N"] == 1439795200 and target["loss_lo"] <= target["loss_pred"] <= target["loss_hi"]
  assert set(target["influence_on_loss"]) == set(fit["loss_law"]["design"])
  with (report / "predictions.csv").open() as f:
    table = list(csv.DictReader(f))
  assert tuple(table[0]) == outputs.PREDICTION_COLUMNS
  assert len(table) == 33  # the rpj models only
  fitted = [r for r in table if r["used_in_fit"] == "True"]
  assert len(fitted) == 5
  # The fit runs are reproduced closely; the errors column is relative, not absolute.
  assert max(float(r["loss_rel_err"]) for r in fitted) < 0.01
  summary = (report / "summary.md").read_text()
  assert "N=1.44e+09,M=640" in summary and "openlm_testbed" in summary
  assert "17 of 46 tasks" in summary


def test_switching_eval_set_and_task_average(testbed_dir, tmp_path):
  config = _config(testbed_dir, **{"study.val_set": "paloma_c4_en",
                                   "study.downstream": "all"})
  result = study.run(config, str(tmp_path))
  assert result.val_set == "paloma_c4_en" and len(result.tasks) == 46


@pytest.mark.parametrize("overrides,error,message", [
    ({"testbed_dir": ""}, runs.RunsError, "runs.path' is empty"),
    ({"study.val_set": "c5_val"}, fitting.StudyError, r"no loss for eval set 'c5_val'"),
    ({"study.loss_design": "d=96_l=8_h=4@20,d=512_l=8_h=4@20,d=96_l=8_h=4@320"},
     fitting.StudyError, "cannot determine the 4 parameters"),
    ({"study.dataset": "pile"}, fitting.StudyError, "no run has that dataset"),
])
def test_bad_input_fails_clearly_and_writes_nothing(testbed_dir, tmp_path, overrides, error,
                                                    message):
  out = tmp_path / "out"
  with pytest.raises(error, match=message):
    study.run(_config(testbed_dir, **overrides), str(out))
  assert not out.exists() or not any(out.iterdir())


def test_failure_while_writing_keeps_previous_outputs(testbed_dir, tmp_path, monkeypatch):
  study.run(_config(testbed_dir), str(tmp_path))
  before = {p.name: p.read_bytes() for p in (tmp_path / "report").iterdir()}

  def broken_plots(*args, **kwargs):
    raise RuntimeError("disk full")

  monkeypatch.setattr("scaling_jax.report.plots.write_all", broken_plots)
  with pytest.raises(RuntimeError, match="disk full"):
    study.run(_config(testbed_dir, **{"study.bootstrap.seed": 5}), str(tmp_path))
  assert {p.name: p.read_bytes() for p in (tmp_path / "report").iterdir()} == before
  assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_parametric_bootstrap_uses_recorded_loss_intervals(testbed_dir, tmp_path):
  config = _config(testbed_dir, **{"study.bootstrap.method": "parametric"})
  result = study.run(config, str(tmp_path))
  fit = json.loads((tmp_path / "report" / "fit.json").read_text())
  assert fit["loss_law"]["bootstrap"]["method"] == "parametric"
  assert fit["error_law"]["bootstrap"]["method"] == "residual"  # no noise recorded
  # Token-level loss noise (~0.4%) is far below the residual scatter of 5 points
  # for 4 parameters: the parametric interval on eta must be the narrower one.
  residual = study.run(_config(testbed_dir), str(tmp_path / "residual"))
  eta = lambda s: s.loss.param_intervals(0.95)["eta"]
  assert eta(result)["hi"] - eta(result)["lo"] < eta(residual)["hi"] - eta(residual)["lo"]
