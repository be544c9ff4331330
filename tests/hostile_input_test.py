"""Hostile or careless input: nothing lands outside the workdir, nothing in a report
runs as a formula or breaks a table, a bug is never shown as the user's fault and
an optional part that fails costs no report. (The planted pickle: report_fit_cache_test.)"""
import csv

import numpy as np
import pytest

import cli_runner
from conftest import REPO_ROOT
from conftest import eq4_rows
from conftest import load_config
from scaling_jax import refusals
from scaling_jax import study
from scaling_jax.fitting import settings as fitting_settings
from scaling_jax.launch import sweep
from scaling_jax.laws import influence
from scaling_jax.report import outputs
from scaling_jax.report import summary

GRID = str(REPO_ROOT / "configs" / "grid.py")
TESTBED = str(REPO_ROOT / "configs" / "testbed.py")


_cli = cli_runner.run_main


# --- names become paths only after validation ---------------------------------------

@pytest.mark.parametrize("name", ["../escape", "a/../../b", "/etc/x", ".hidden", "a\\b",
                                  "a b", ""])
def test_a_unit_name_that_is_not_one_safe_directory_is_refused(name):
  config = load_config("grid", "smoke")
  with config.unlocked():
    config.sweep = [dict(config.sweep[0], name=name or "..")]
  with pytest.raises(ValueError, match="cannot be a directory under WORKDIR/runs"):
    sweep.expand(config)


def test_a_dry_run_writes_nothing_outside_the_workdir(tmp_path, monkeypatch, capsys):
  # A study config whose sweep names a unit '../outside' (as a shared or downloaded
  # config might); the dry run wrote its unit_config.json beside the workdir.
  hostile = tmp_path / "hostile.py"
  hostile.write_text(
      "import importlib.util\n"
      f"spec = importlib.util.spec_from_file_location('grid', {GRID!r})\n"
      "grid = importlib.util.module_from_spec(spec)\n"
      "spec.loader.exec_module(grid)\n"
      "def get_config(arg=''):\n"
      "  config = grid.get_config('smoke')\n"
      "  config.sweep = [dict(config.sweep[0], name='../outside')] + config.sweep[1:]\n"
      "  return config\n")
  workdir = tmp_path / "work"
  code, err = _cli([f"--config={hostile}", f"--workdir={workdir}",
                    "--config.launch.dry_run=True"], monkeypatch, capsys)
  assert code == 2 and "cannot be a directory under WORKDIR/runs" in err, err
  assert not (tmp_path / "outside").exists()
  assert not list(tmp_path.rglob("unit_config.json"))


# --- report cells --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["=1+2*cmd|' /C calc'!A0", "@SUM(A1)", "+1", "-1+2",
                                  "\tx", "\rx"])
def test_a_run_name_never_reaches_a_spreadsheet_as_a_formula(tmp_path, name):
  path = tmp_path / "predictions.csv"
  outputs.write_csv(path, ("run", "loss"), [{"run": name, "loss": -1.5}])
  with path.open(newline="") as f:
    row = next(csv.DictReader(f))
  assert row["run"] == "'" + name  # shown as text, the name kept after the quote
  assert row["loss"] == "-1.5"     # numbers are never quoted


def test_a_run_name_cannot_split_a_markdown_row():
  target = dict(run="a|b\nc <script>", N=1e6, M=20.0, flops=1.2e14, loss=2.0,
                loss_pred=2.1, loss_lo=1.9, loss_hi=2.3, loss_rel_err=0.05)
  boot = type("Boot", (), dict(method="residual_t"))()
  noise = type("Noise", (), dict(sigma=0.01, source="residuals"))()
  fit = type("Fit", (), dict(targets=[target], level=0.95, interval="prediction",
                             loss=type("Law", (), dict(
                                 boot=boot, run_noise=noise, backtest=None,
                                 extrapolation="backtest",
                                 extrapolation_growth=0.01))()))()
  lines = summary._targets_section(fit)  # pylint: disable=protected-access
  row = next(line for line in lines if "a\\|b" in line)
  header = next(line for line in lines if line.startswith("| target"))
  unescaped = lambda line: line.replace("\\|", "").count("|")
  assert unescaped(row) == unescaped(header) and "<script>" not in row


# --- advisor inputs are refused with the rest, before any compute -------------------

@pytest.mark.parametrize("budget", [float("nan"), float("inf"), -1.0])
def test_a_budget_that_is_not_a_finite_number_is_refused_up_front(budget):
  config = load_config("testbed", "train=rpj")
  config.study.advise.budget_flops = budget
  with pytest.raises(ValueError, match="study.advise.budget_flops"):
    fitting_settings.check(config.study)


def test_an_advised_model_the_sweep_lacks_is_refused_before_training(tmp_path,
                                                                     monkeypatch):
  config = load_config("grid", "smoke")
  config.study.advise.budget_flops = 1e12
  config.study.advise.candidates = "tiny-9@20"
  monkeypatch.setattr(study, "_train", lambda *a: pytest.fail("trained anyway"))
  with pytest.raises(ValueError, match="no model 'tiny-9'"):
    study.run(config, tmp_path)


def test_advice_without_any_target_is_refused_up_front():
  config = load_config("grid", "smoke")
  config.study.advise.budget_flops = 1e12
  config.study.targets = ""
  with pytest.raises(ValueError, match="study.advise needs a target"):
    fitting_settings.check(config.study)


# --- a bug is a bug, a refusal a refusal ---------------------------------------------

def test_numpys_errors_are_bugs_and_the_packages_are_refusals():
  try:
    np.linalg.cholesky(-np.eye(2))  # raised inside numpy: a LinAlgError (a ValueError)
  except ValueError as e:
    assert not refusals.is_refusal(e)
  try:
    sweep.check_unit_name("../x", "here")
  except ValueError as e:
    assert refusals.is_refusal(e)
  assert refusals.is_refusal(FileNotFoundError("no such file"))
  assert not refusals.is_refusal(KeyError("x")) and not refusals.is_refusal(OSError(28, "full"))


def test_an_internal_error_keeps_its_traceback(tmp_path, monkeypatch, capsys):
  def broken(config, workdir):
    np.linalg.eigvalsh(np.full((2, 2), np.nan))  # numpy's 'did not converge'
    return np.linalg.cholesky(-np.eye(2))
  monkeypatch.setattr(study, "run", broken)
  with pytest.raises(np.linalg.LinAlgError):
    _cli([f"--config={GRID}:smoke", f"--workdir={tmp_path}"], monkeypatch, capsys)


def test_a_vanishing_curvature_makes_no_influence_instead_of_a_crash():
  # The error law's Hessian of one smoke study: a diagonal entry near 4e-200, which
  # the scaling divided by, and numpy's eigensolver then failed.
  hessian = np.array([[2.0, 1e-101, 0.3], [1e-101, 3.9e-200, 1e-100], [0.3, 1e-100, 1.0]])
  assert influence._curvature_ratio(hessian) == 0.0  # pylint: disable=protected-access
  healthy = np.array([[2.0, 0.3], [0.3, 1.0]])
  assert 0 < influence._curvature_ratio(healthy) <= 1  # pylint: disable=protected-access


def test_a_failing_influence_costs_the_targets_nothing(monkeypatch):
  # The 3.12 smoke study died here once: numpy's 'Eigenvalues did not converge' (a
  # LinAlgError, so a ValueError) inside the optional influences. Whatever they
  # raise, the predictions come back, with the failure said on each target.
  from scaling_jax.fitting import predictions  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(predictions, "law_inputs", lambda targets: None)
  monkeypatch.setattr(predictions, "predict_rows",
                      lambda *args: [dict(run="t1", loss_pred=2.0), dict(run="t2")])
  def eigensolver_fails(result, x):
    raise np.linalg.LinAlgError("Eigenvalues did not converge")
  monkeypatch.setattr(predictions.influence_lib, "prediction_influence",
                      eigensolver_fails)
  loss = type("LawFit", (), dict(result=None, runs=["a", "b"]))()
  out = predictions.predict_targets([{}, {}], "validation", loss, None, 0.95)
  assert [p["run"] for p in out] == ["t1", "t2"] and out[0]["loss_pred"] == 2.0
  for p in out:
    assert "internal error" in p["influence_unavailable"]
    assert "Eigenvalues did not converge" in p["influence_unavailable"]
    assert "influence_on_loss" not in p


def test_a_plot_that_fails_is_a_note_and_the_rest_is_written(tmp_path, monkeypatch):
  from scaling_jax.report import plots  # pylint: disable=import-outside-toplevel
  def broken(study_fit, path):
    raise RuntimeError("planted")
  monkeypatch.setitem(plots.PLOTS, "loss_vs_compute.png", broken)
  failed = []
  fit = type("Fit", (), dict(error=None))()
  plots.write_all(fit, tmp_path, names=("loss_vs_compute.png",), failed=failed)
  assert len(failed) == 1 and "loss_vs_compute.png" in failed[0] and "planted" in failed[0]
  with pytest.raises(RuntimeError, match="planted"):  # without a list, it still raises
    plots.write_all(fit, tmp_path, names=("loss_vs_compute.png",))


@pytest.mark.slow  # two real fits
def test_an_in_sample_target_and_too_few_resamples_are_said():
  from scaling_jax import config_lib  # pylint: disable=import-outside-toplevel
  from scaling_jax.fitting import study_fit  # pylint: disable=import-outside-toplevel
  study_cfg = config_lib.default_config().study
  study_cfg.downstream = "none"
  study_cfg.targets = "m8e+06@40"
  study_cfg.bootstrap.num_resamples = 200
  honest = study_fit.fit(eq4_rows(), {}, study_cfg)  # every point but the target
  assert not any("also in the loss design" in n or "resampling noise" in n
                 for n in honest.notes), honest.notes
  study_cfg.loss_design = ",".join(f"m{n:g}@{m:g}" for n in (1e6, 2e6, 4e6, 8e6)
                                   for m in (10, 20, 40))  # the target among them
  study_cfg.bootstrap.num_resamples = 2
  flagged = study_fit.fit(eq4_rows(), {}, study_cfg)
  assert any("m8e+06@40 is also in the loss design" in n for n in flagged.notes)
  assert any("num_resamples=2" in n and "resampling noise" in n for n in flagged.notes)


def test_a_full_disk_while_writing_the_report_is_said_and_keeps_the_old_report(
    tmp_path, monkeypatch, capsys):
  import errno  # pylint: disable=import-outside-toplevel
  from scaling_jax import report  # pylint: disable=import-outside-toplevel
  old = tmp_path / "report"
  old.mkdir()
  (old / "summary.md").write_text("the previous report")

  def full_disk(fit, stage, context):
    (stage / "half.md").write_text("half")
    raise OSError(errno.ENOSPC, "No space left on device", str(stage / "fit.json"))
  monkeypatch.setattr(report.curve_report, "write", full_disk)
  fit = type("CurveFit", (report.curves.CurveFit,), {})
  fake = fit.__new__(fit)
  with pytest.raises(OSError) as raised:
    report.write(fake, old, {})
  assert (old / "summary.md").read_text() == "the previous report"
  assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no staging left behind
  message = refusals.disk_problem(raised.value)
  assert "No space left on device" in message and "run the same command again" in message

  def study_run(config, workdir):
    raise raised.value
  monkeypatch.setattr(study, "run", study_run)
  code, err = _cli([f"--config={GRID}:smoke", f"--workdir={tmp_path}"], monkeypatch, capsys)
  assert code == 2 and "error: No space left on device" in err and "Traceback" not in err


def test_a_log_path_with_a_comma_is_taken_whole():
  config = load_config("curves", "csv=/data/runs,final.csv")
  assert config.runs.path == "/data/runs,final.csv"
  with pytest.raises(ValueError, match="unknown variant 'bogus'"):
    load_config("curves", "bogus")
