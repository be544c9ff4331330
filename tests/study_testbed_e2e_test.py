"""The testbed study end to end: outputs, intervals, summary.md, nothing written on failure."""
import csv
import json
import numpy as np

import pytest

from conftest import load_config
from scaling_jax import fitting
from scaling_jax import runs
from scaling_jax import study
from scaling_jax.report import outputs


def _config(directory, **overrides):
  config = load_config("testbed", "train=rpj")
  config.runs.path = str(directory)
  config.study.bootstrap.num_resamples = 64  # intervals are checked, not their precision
  for key, value in overrides.items():
    node, _, leaf = key.rpartition(".")
    setattr(config[node] if node else config, leaf, value)
  return config


@pytest.mark.slow
def test_writes_the_report_with_summary(testbed_dir, tmp_path):
  study.run(_config(testbed_dir), str(tmp_path))
  report = tmp_path / "report"
  assert {p.name for p in tmp_path.iterdir()} == {"report"}
  assert {p.name for p in report.iterdir()} == {
      ".fit_cache.npz", "summary.md", "fit.json", "predictions.csv",
      "loss_vs_compute.png", "error_vs_loss.png", "relative_error_heatmap.png",
      "predicted_vs_measured.png", "replicates.npz"}
  fit = json.loads((report / "fit.json").read_text())
  # Standard errors: the replicates' sd, and the replicates themselves exported.
  with np.load(report / "replicates.npz") as npz:
    for label, law in (("loss", "loss_law"), ("error", "error_law")):
      names = list(npz[f"{label}/param_names"])
      np.testing.assert_allclose(
          np.nanstd(npz[f"{label}/replicates"], axis=0, ddof=1),
          [fit[law]["params"][n]["se"] for n in names], rtol=1e-9)
  assert "| parameter | value | 95% interval | standard error |" in (
      report / "summary.md").read_text()
  # The paper's 5-run design leaves one residual df: no objective comparison.
  assert "1 residual degree(s) of freedom" in fit["objectives"]["skipped"]
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
  # The paper design's one residual degree of freedom leaves E's interval below 0:
  # the reader is told so in a line right after the targets, in full under Details.
  assert summary.index("## Targets") < summary.index("## Warnings")
  top = summary.split("## Warnings")[1].split("## Laws")[0]
  assert "Read with care: The irreducible loss E = 1.84 has a 95% interval reaching" in top
  care = summary.split("### Read with care")[1]
  assert "irreducible loss E = 1.84 has a 95% interval reaching" in care
  assert "2 targets predicted with 95% prediction intervals, not yet measured" in (
      "\n".join(summary.splitlines()[:25]))


@pytest.mark.slow
def test_switching_eval_set_and_task_average(testbed_dir, tmp_path):
  config = _config(testbed_dir, **{"study.val_set": "paloma_c4_en",
                                   "study.downstream": "all"})
  result = study.run(config, str(tmp_path))
  assert result.val_set == "paloma_c4_en" and len(result.tasks) == 46


@pytest.mark.parametrize("overrides,error,message", [
    ({"runs.path": ""}, runs.RunsError, "runs.path' is empty"),
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_eval_noise_uses_recorded_loss_intervals_and_the_report_says_it_is_too_small(
    testbed_dir, tmp_path):
  config = _config(testbed_dir, **{"study.bootstrap.method": "parametric",
                                   "study.bootstrap.noise": "eval"})
  result = study.run(config, str(tmp_path))
  fit = json.loads((tmp_path / "report" / "fit.json").read_text())
  loss_boot, err_boot = fit["loss_law"]["bootstrap"], fit["error_law"]["bootstrap"]
  assert loss_boot["method"] == "parametric"
  assert loss_boot["noise_source"].startswith("recorded evaluation noise (loss_ci/c4_val")
  assert err_boot["noise_source"].startswith("residuals of this fit")  # none recorded
  # Token-level loss noise (~0.4%) is far below the residual scatter: the chi-square
  # check flags the scale, and the interval on eta is the narrower one.
  assert "misses sources of variation" in loss_boot["calibration"]
  assert loss_boot["calibrated"] is False and loss_boot["noise_df"] is None
  residual = study.run(_config(testbed_dir), str(tmp_path / "residual"))
  eta = lambda s: s.loss.param_intervals(0.95)["eta"]
  assert eta(result)["hi"] - eta(result)["lo"] < eta(residual)["hi"] - eta(residual)["lo"]


@pytest.mark.slow
def test_pooled_noise_counts_training_sets_that_share_a_residual_pattern_once(
    testbed_dir, tmp_path):
  result = study.run(_config(testbed_dir, **{"study.bootstrap.noise": "pooled"}),
                     str(tmp_path))
  boot = result.loss.boot
  # 5 points for 4 parameters on each of rpj, c4_original, rw_original: 1 df each,
  # on one line, so sharing cannot be ruled out and the three count once (the
  # audit: they share 82% of their residual variance; summing gave 3 df, 0.88).
  assert boot.noise.df == pytest.approx(1) and "c4_original, rw_original" in boot.noise_source
  assert boot.calibration is not None
  # The error law (6 points, 3 df each): its residuals correlate no more than one
  # design makes independent noise correlate, so its 9 df stand.
  assert result.error.boot.noise.df == pytest.approx(3 * (6 - 3))
  fit = json.loads((tmp_path / "report" / "fit.json").read_text())
  loss_boot = fit["loss_law"]["bootstrap"]
  assert "pooled" in loss_boot["noise_source"] and "effective df of 3" in loss_boot["noise_source"]
  assert loss_boot["noise_df"] == pytest.approx(1) and loss_boot["residual_df"] == 1
  assert loss_boot["calibrated"] is False


@pytest.mark.slow
def test_eval_floor_never_lets_a_scale_below_the_recorded_noise(testbed_dir, tmp_path):
  result = study.run(_config(testbed_dir, **{"study.bootstrap.eval_floor": True}),
                     str(tmp_path))
  noise = result.loss.boot.noise
  assert noise.floor is not None and len(noise.floor) == 5
  assert "floor: recorded evaluation noise (loss_ci/c4_val / 1.96)" in noise.source
  assert result.loss.boot.noise_source == noise.source
  assert result.error.boot.noise.floor is None  # task averages record no noise


@pytest.mark.slow
@pytest.mark.parametrize("overrides,message", [
    ({"study.bootstrap.noise": "seeds"}, r"needs a design point trained with two or more"),
    ({"study.loss_design": "d=96_l=8_h=4@20,d=512_l=8_h=4@20,d=576_l=24_h=8@20,"
                           "d=96_l=8_h=4@320"},
     r"bootstrapping .* no residual degrees of freedom"),
])
def test_a_noise_scale_the_design_cannot_give_is_refused_clearly(testbed_dir, tmp_path,
                                                                 overrides, message):
  with pytest.raises(fitting.StudyError, match=message):
    study.run(_config(testbed_dir, **overrides), str(tmp_path / "out"))
  assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.slow
def test_physical_bounds_keep_the_papers_fit_and_narrow_its_intervals(testbed_dir, tmp_path):
  # The loss law is what is checked: no error law, whose bounded solver compiles
  # for half a minute.
  free = study.run(_config(testbed_dir, **{"study.downstream": "none"}),
                   str(tmp_path / "free"))
  bounded = study.run(_config(testbed_dir, **{"study.fit.bounds": "physical",
                                              "study.downstream": "none"}),
                      str(tmp_path / "bounded"))
  assert bounded.loss.result.params == pytest.approx(free.loss.result.params, rel=1e-6)
  # Unbounded, some resamples put the irreducible loss E below zero; bounded, none.
  assert free.loss.param_intervals(0.95)["E"]["lo"] < 0
  assert bounded.loss.param_intervals(0.95)["E"]["lo"] >= 0
