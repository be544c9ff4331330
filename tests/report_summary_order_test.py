"""The answer first: summary.md and the console lead with the targets and a verdict.

A study exists to predict runs it did not fit; when its warnings came first, half of
summary.md stood before the targets and the console never said whether a prediction
came true. These tests pin the order on a fake StudyFit and CurveFit (no fit): the
targets and the verdict before any warning, on the first screen; each warning one
line at the top and whole under Details; the console's measured against predicted.
"""
import types

import pytest

from scaling_jax.fitting import study_fit
from scaling_jax.report import caveats
from scaling_jax.report import curve_report
from scaling_jax.report import headlines
from scaling_jax.report import summary
from scaling_jax.report import verdict

LONG_NOTE = ("loss law: 5 points for the 4 parameters leave 1 residual degree(s) of "
             "freedom; a noise scale on 1 df is uncertain by a factor of 72 (95% range), "
             "so the intervals are t-corrected, very wide, and rest on Gaussian noise "
             "that the design cannot check. For a calibrated interval add runs at new "
             "(N, M), or seeds of the design runs")
SHORT_NOTE = "target tiny-1_M160: also in the loss design"
# One seeded, one with its measurement inside, one outside, one not yet measured.
MEASURED = dict(run="tiny-4_M20", N=493920, M=20.0, flops=2.9e13, loss=2.10,
                loss_pred=2.12, loss_lo=2.0, loss_hi=2.3, loss_rel_err=0.0095, err=0.60,
                err_pred=0.59, err_lo=0.55, err_hi=0.65, err_rel_err=0.0167)
OUTSIDE = dict(MEASURED, run="tiny-1_M160", loss=2.40, loss_rel_err=0.1167)
UNMEASURED = dict(MEASURED, run="N=1e9,M=20", loss=None, loss_rel_err=None, err=None,
                  err_rel_err=None)


class _Law:
  """What render() reads of a study_fit.LawFit."""

  def __init__(self, formula, intervals, runs):
    self._intervals = intervals
    self.runs = runs
    self.result = types.SimpleNamespace(law=types.SimpleNamespace(formula=formula),
                                        converged=True)
    self.boot = types.SimpleNamespace(method="residual_t", num_valid=64, valid=[True] * 64,
                                      num_converged=64, noise_source="residuals",
                                      residual_df=1)
    self.run_noise = types.SimpleNamespace(sigma=0.006, source="the prior")
    self.backtest, self.extrapolation, self.extrapolation_growth = None, "prior", 0.0106

  def param_intervals(self, level):
    del level
    return self._intervals


def _p(value, lo, hi):
  return {"value": value, "lo": lo, "hi": hi, "se": (hi - lo) / 4}


def fake_study(targets=(MEASURED,), notes=(LONG_NOTE, SHORT_NOTE)):
  """A StudyFit whose E interval reaches below 0, so caveats.py has a sentence."""
  runs = ["tiny-0_M20", "tiny-1_M20", "tiny-2_M20", "tiny-3_M20", "tiny-0_M320"]
  predictions = [dict(run=r, N=1e4 * 4**i, M=20.0, flops=6e9 * 16**i, loss=3.0 - 0.2 * i,
                      err=0.8, used_in_fit=True, used_in_err_fit=True)
                 for i, r in enumerate(runs)]
  loss = _Law("L(C, M) = E + (a M^eta + b M^-eta) C^-eta",
              {"E": _p(1.8, -0.8, 3.8), "a": _p(200, 100, 300), "b": _p(300, 150, 500),
               "eta": _p(0.14, 0.1, 0.2)}, runs)
  error = _Law("Err(L) = eps - k exp(-gamma L)",
               {"eps": _p(0.85, 0.8, 0.9), "k": _p(2.0, 1.5, 3.0),
                "gamma": _p(0.7, 0.5, 0.9)}, runs)
  return study_fit.StudyFit(
      rows=[], val_set="validation", tasks=["a", "b"], task_rule="2 tasks", level=0.95,
      loss=loss, error=error, predictions=predictions, targets=[dict(t) for t in targets],
      compute_optimal=types.SimpleNamespace(flops=1e20, multiplier=(20.0, 10.0, 40.0),
                                            params=(1e9, 5e8, 2e9),
                                            tokens=(2e10, 1e10, 4e10)),
      notes=list(notes))


def _render(study):
  return summary.render(study, {"workdir": "w", "source": "own (w/runs)", "num_runs": 9,
                                "num_rows": 18})


def test_the_targets_and_verdict_come_before_any_warning():
  text = _render(fake_study())
  table = text.index("| target | N | M |")
  verdict_at = text.index("**Verdict:")
  assert table < verdict_at < text.index("## Warnings") < text.index("## Laws")
  assert text.index("## Laws") < text.index("## Details")
  # Nothing long stands between the title and the table: one line of what was fitted.
  head = text[:table].strip().splitlines()
  assert [line for line in head if line] == [
      "# Scaling study: w", head[2], "## Targets"] and head[2].startswith("Fitted:")


def test_the_first_screen_holds_the_verdict():
  first = _render(fake_study()).splitlines()[:25]
  assert any(line.startswith("**Verdict: 1 of 1 targets inside their 95% prediction "
                             "intervals (loss and error)") for line in first)


def test_each_warning_is_one_line_at_the_top_and_whole_under_details():
  study = fake_study()
  text = _render(study)
  top = text.split("## Warnings")[1].split("## Laws")[0]
  details = text.split("## Details")[1]
  items = [line for line in top.splitlines() if line.startswith("- ")]
  found = caveats.caveats(study)
  assert found and len(items) == len(study.notes) + len(found)
  for item in items:
    assert "\n" not in item and len(item) < headlines.HEADLINE_CHARS + 30
  assert items[0] == ("- loss law: 5 points for the 4 parameters leave 1 residual "
                      "degree(s) of freedom ...")
  assert items[1] == f"- {SHORT_NOTE}"  # short: whole, unclipped
  assert items[2].startswith("- Read with care: The irreducible loss E = 1.8")
  for note in study.notes:
    assert f"- **{note}**" in details and f"**{note}**" not in top
  for sentence in found:
    assert f"- {sentence}." in details
  # What the intervals cover moved down with them; nothing was lost.
  assert "### Intervals" in details and "Intervals: a `prediction` interval" in details


def test_without_warnings_there_is_no_warnings_section():
  study = fake_study(notes=())
  study.loss._intervals["E"] = _p(1.8, 1.6, 2.0)  # pylint: disable=protected-access
  text = _render(study)
  assert "## Warnings" not in text and "### Read with care" not in text
  assert "### Intervals" in text  # Details still says what the intervals rest on


@pytest.mark.parametrize("targets,said", [
    ((MEASURED,), "Verdict: 1 of 1 targets inside their 95% prediction intervals (loss "
                  "and error); largest relative error 1.67% (tiny-4_M20, error)."),
    ((MEASURED, OUTSIDE), "Verdict: 1 of 2 targets inside their 95% prediction intervals "
                          "(loss and error); outside: tiny-1_M160 (loss); largest "
                          "relative error 11.67% (tiny-1_M160, loss)."),
    ((MEASURED, UNMEASURED), "Verdict: 1 of 1 measured targets inside their 95% "
                             "prediction intervals (loss and error); largest relative "
                             "error 1.67% (tiny-4_M20, error); 1 more predicted, not yet "
                             "measured."),
    ((UNMEASURED,), "Verdict: 1 target predicted with 95% prediction intervals, not yet "
                    "measured: no prediction is checked yet."),
    ((), f"Verdict: {summary.NO_TARGETS}."),
])
def test_the_verdict_says_how_many_predictions_came_true(targets, said):
  study = fake_study(targets)
  assert summary.console_lines(study)[0] == said
  assert f"**{said}**" in _render(study)


def test_the_console_says_measured_against_predicted_before_any_warning():
  lines = summary.console_lines(fake_study((MEASURED, UNMEASURED)))
  assert lines[1:5] == [
      "target tiny-4_M20: loss measured 2.1000, predicted 2.1200 [2.0000, 2.3000], "
      "relative error 0.95%, inside",
      "target tiny-4_M20: error measured 0.6000, predicted 0.5900 [0.5500, 0.6500], "
      "relative error 1.67%, inside",
      "target N=1e9,M=20: loss predicted 2.1200 [2.0000, 2.3000], not yet measured",
      "target N=1e9,M=20: error predicted 0.5900 [0.5500, 0.6500], not yet measured"]
  first_warning = next(i for i, line in enumerate(lines) if line.startswith("WARNING:"))
  assert first_warning > 4 and lines[-1] == "Each in full: summary.md, under Details."
  warnings = [line for line in lines if line.startswith(("WARNING:", "Read with care:"))]
  assert len(warnings) == 3 and all(len(w) < headlines.HEADLINE_CHARS + 30
                                    for w in warnings)
  outside = summary.console_lines(fake_study((OUTSIDE,)))[1]
  assert outside.endswith("relative error 11.67%, OUTSIDE its interval")


def test_a_note_said_in_full_before_the_fit_is_not_repeated_at_the_end():
  # study.py drops the end's line for each source note it printed in full earlier.
  said = {headlines.warning_line(LONG_NOTE)}
  lines = [line for line in summary.console_lines(fake_study()) if line not in said]
  assert not any(line.startswith("WARNING: loss law") for line in lines)
  assert f"WARNING: {SHORT_NOTE}" in lines


@pytest.mark.parametrize("text,line", [
    ("one short sentence.", "one short sentence"),
    ("first sentence, e.g. with Eq. 4 inside. Second sentence.",
     "first sentence, e.g. with Eq. 4 inside ..."),
    # Too long a first sentence: cut at its last clause within the limit, else its
    # last phrase, never in a bracket.
    ("a" * 60 + " [1.5, 2.5], then " + "b" * 80 + "; and " + "c" * 80,
     "a" * 60 + " [1.5, 2.5], then " + "b" * 80 + " ..."),
    ("a" * 60 + " [1.5, 2.5], then " + "b" * 100 + "; and " + "c" * 80,
     "a" * 60 + " [1.5, 2.5] ..."),
    ("x" * 300, "x" * headlines.HEADLINE_CHARS + " ..."),
])
def test_a_headline_is_one_meaningful_line(text, line):
  assert headlines.headline(text) == line


def test_a_measured_value_counts_only_where_measured():
  checks = verdict.checks([MEASURED, UNMEASURED], "prediction")
  assert [(c.run, c.metric, c.inside) for c in checks] == [
      ("tiny-4_M20", "loss", True), ("tiny-4_M20", "error", True),
      ("N=1e9,M=20", "loss", None), ("N=1e9,M=20", "error", None)]
  assert verdict.coverage([MEASURED, OUTSIDE, UNMEASURED], "loss") == (1, 2)


# --- the curve fit's report (configs/curves.py) ------------------------------------

def _checkpoint(run, tokens, loss, pred, used):
  return dict(run=run, N=1e8, tokens=tokens, step=1, loss=loss, loss_pred=pred,
              loss_lo=pred * 0.98, loss_hi=pred * 1.02, used_in_fit=used)


def fake_curve_fit(notes=(LONG_NOTE,)):
  intervals = {"E": _p(1.7, 1.6, 1.8), "A": _p(400, 300, 500)}
  main = types.SimpleNamespace(
      result=None, runs=["a", "b", "c"], num_points=36, how="36 checkpoints of 3 runs",
      replicates=types.SimpleNamespace(method="cluster", num_valid=64, valid=[True] * 64),
      param_intervals=lambda level: intervals)
  checkpoints = ([_checkpoint("c", t, 2.5, 2.51, True) for t in (1e9, 2e9)] +
                 [_checkpoint("d", 1e9, 2.40, 2.41, False),
                  _checkpoint("d", 4e9, 2.30, 2.31, False)])
  return types.SimpleNamespace(
      law=types.SimpleNamespace(name="chinchilla", formula="L(N, D) = E + A N^-alpha"),
      level=0.95, val_set="validation", fits={"all checkpoints": main},
      checkpoints=checkpoints, notes=list(notes), objectives=None, backtest=None,
      extrapolation="prior", extrapolation_growth=0.0106, seed_spread=[],
      compute_optimal=None,
      targets=[dict(run="d", fit="all checkpoints", N=1e8, final_tokens=4e9,
                    late_checkpoints=2, are=0.0042, are_lo=0.003, are_hi=0.006,
                    final_rel_err=0.00435)])


def test_the_curve_report_leads_with_the_targets_final_loss_and_verdict():
  fit = fake_curve_fit()
  text = curve_report.render(fit, {"workdir": "w", "source": "csv"})
  said = ("Verdict: 1 of 1 targets inside their 95% prediction intervals (final loss); "
          "largest relative error 0.43% (d, final loss).")
  assert text.index("| target |") < text.index(f"**{said}**") < text.index("## Warnings")
  assert text.index("## Warnings") < text.index("## Laws") < text.index("## Details")
  assert "| 2.3000 | 2.3100 [2.2638, 2.3562] | yes |" in text
  assert f"- **{LONG_NOTE}**" in text.split("## Details")[1]
  lines = curve_report.console_lines(fit)
  assert lines[:2] == [said, "target d: final loss measured 2.3000, predicted 2.3100 "
                             "[2.2638, 2.3562], relative error 0.43%, inside"]
  assert lines.index(headlines.warning_line(LONG_NOTE)) > 2
