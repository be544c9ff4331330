"""The run advisor in a study: config checks, advice.csv and summary.md, the replay."""
import csv
import types

import pytest

from conftest import load_config
from scaling_jax import config_lib
from scaling_jax import fitting
from scaling_jax import study
from scaling_jax.fitting import advice
from scaling_jax.fitting import study_fit
from scaling_jax.report import advice_report


def _testbed(directory, arg="train=rpj", **overrides):
  config = load_config("testbed", arg)
  config.runs.path = str(directory)
  config.study.bootstrap.num_resamples = 32
  for key, value in overrides.items():
    node, _, leaf = key.rpartition(".")
    setattr(config[node] if node else config, leaf, value)
  return config


@pytest.mark.parametrize("field,value,message", [
    ("budget_flops", -1.0, "study.advise.budget_flops"),
    ("k", -2, "study.advise.k"),
    ("criterion", "width", "study.advise.criterion"),
    ("multipliers", "20,zero", "study.advise.multipliers"),
    ("candidates", "tiny-0", "must read 'model@M'"),
    ("confirm_top", -1, "study.advise.confirm_top"),
])
def test_bad_advice_fields_are_refused_before_anything_runs(field, value, message):
  config = config_lib.default_config()
  config.study.advise[field] = value
  with pytest.raises(fitting.StudyError, match=message):
    advice.check(config.study)


@pytest.mark.slow
def test_advice_ranks_candidates_and_its_batch_fits_the_budget(testbed_dir, tmp_path):
  budget = 2e19
  config = _testbed(testbed_dir, **{"study.advise.budget_flops": budget})
  result = study.run(config, str(tmp_path))
  got = result.advice
  assert got.batch and got.target == "1439795200@640"
  cum = [row["batch_cum_flops"] for row in got.batch]
  assert cum == sorted(cum) and cum[-1] <= budget
  # Each pick narrows the target further: widths after the batch so far never grow
  # (a table that showed each run's width alone would break this).
  widths = [row["loss_width_after"] for row in got.batch]
  assert all(b <= a + 1e-12 for a, b in zip(widths, widths[1:]))
  assert [row["batch_order"] for row in got.batch] == list(range(1, len(got.batch) + 1))
  report = tmp_path / "report"
  with (report / "advice.csv").open() as f:
    table = list(csv.DictReader(f))
  assert tuple(table[0]) == advice.CSV_COLUMNS
  # Every model of the rpj runs at every default multiplier is a candidate.
  models = {r["model"] for r in result.rows}
  assert len(table) == len(models) * len(advice._multipliers(config.study.advise))
  scores = [float(r["reduction_per_flop"]) for r in table]
  assert scores == sorted(scores, reverse=True)
  assert (report / "advice_width_vs_flops.png").stat().st_size > 0
  summary = (report / "summary.md").read_text()
  assert "## Advice: which runs to train next" in summary
  assert got.batch[0]["candidate"] in summary
  # The top three are checked by simulated refits, in the ranking's order.
  assert [c["candidate"] for c in got.confirmed] == [r["candidate"] for r in got.ranked[:3]]
  assert all(c["loss_width_sim"] > 0 for c in got.confirmed)
  assert "Checked by simulation" in summary


@pytest.mark.slow
def test_named_candidates_and_an_unknown_model(testbed_dir, tmp_path, monkeypatch):
  config = _testbed(testbed_dir, **{"study.advise.budget_flops": 1e18,
                                    "study.advise.candidates": "d=96_l=8_h=4@640,1e8@40"})
  result = study.run(config, str(tmp_path))
  assert {r["candidate"] for r in result.advice.ranked} == {"d=96_l=8_h=4@640", "1e8@40"}
  config.study.advise.candidates = "tiny-9@20"
  # Refused after the runs are read, before the fit (issue 22: no late refusals).
  monkeypatch.setattr(study_fit, "fit", lambda *a: pytest.fail("fitted anyway"))
  with pytest.raises(fitting.StudyError, match="has no model 'tiny-9'"):
    study.run(config, str(tmp_path / "again"))


@pytest.mark.slow
def test_retrospective_writes_one_row_per_target_after_each_addition(testbed_dir, tmp_path):
  config = _testbed(testbed_dir, "train=rpj,replay", **{
      "study.retrospective.strategies": "compute,paper",
      "study.retrospective.advisor_budget_share": 0.0,
      "study.retrospective.max_flops_share": 0.06,
      "study.retrospective.num_resamples": 32})
  result = study.run(config, str(tmp_path))
  records = result.retrospective["records"]
  with (tmp_path / "report" / "retrospective.csv").open() as f:
    table = list(csv.DictReader(f))
  assert tuple(table[0]) == advice_report.RETROSPECTIVE_COLUMNS
  assert len(table) == len(records)
  compute = [r for r in records if r["strategy"] == "compute" and r["metric"] == "loss"]
  flops = [r["cum_flops"] for r in compute]
  assert flops == sorted(flops) and len(compute) >= 3
  paper = [r for r in records if r["strategy"] == "paper"]
  assert {r["metric"] for r in paper} == {"loss", "err"}
  assert "## Retrospective" in (tmp_path / "report" / "summary.md").read_text()


def test_train_next_trains_the_advised_batch_then_refits(monkeypatch, tmp_path):
  config = load_config("grid", "advise")
  assert config.study.advise.train_next and config.study.loss_design == ""
  batch = [{"candidate": "tiny-1@40", "batch_order": 1},
           {"candidate": "5e5@20", "batch_order": 2}]  # a size, not a preset: skipped
  advised = advice.StudyAdvice("tiny-3@20", 3e12, "both", [], batch, {}, "")
  sweeps, fits = [], []

  def fake_train(cfg, workdir):
    sweeps.append(list(cfg.sweep))
    return True

  def fake_fit_and_report(cfg, workdir, train_seconds=None):
    fits.append(len(sweeps))
    return types.SimpleNamespace(advice=advised if len(fits) == 1 else None,
                                 rows=[dict(model="tiny-1", M=40.0, seeds=2)])

  monkeypatch.setattr(study, "_train", fake_train)
  monkeypatch.setattr(study, "fit_and_report", fake_fit_and_report)
  study.run(config, str(tmp_path))
  # The sweep, then the sweep plus the advised preset run; a fit after each.
  assert len(sweeps) == 2 and fits == [1, 2]
  assert sweeps[1][:len(sweeps[0])] == sweeps[0]
  # tiny-1@40 was trained with seeds 0 and 1: the advised repeat is seed 2.
  assert sweeps[1][len(sweeps[0]):] == [dict(model="tiny-1", tokens_per_param=40.0, seed=2)]


def test_an_advised_repeat_of_a_sweep_unit_gets_a_new_seed():
  batch = [{"candidate": "tiny-0.5@20"}, {"candidate": "tiny-0.5@20"}]
  advised = advice.StudyAdvice("t", 1.0, "loss", [], batch, {}, "")
  todo, _ = advice.units(advised, [("tiny-0.5", 20, 0)])
  assert [u["seed"] for u in todo] == [1, 2]
