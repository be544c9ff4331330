"""Weights & Biases as a runs source: a recorded export read as runs-table rows.

Tested on tests/data/wandb_ladder.json (made by make_wandb_ladder.py in the shape
`wandb_runs.export` gives wandb.Api's runs) and on fake Api objects; the trainer's
mirror to W&B is tests/wandb_mirror_test.py.
"""
import json
import sys
import types

import pytest

import cli_runner
import wandb_api_fake
from conftest import REPO_ROOT
from scaling_jax import config_lib
from scaling_jax import runs
from scaling_jax.fitting import curves
from scaling_jax.fitting import settings as fitting_settings
from scaling_jax.runs import wandb_runs

LADDER = REPO_ROOT / "tests" / "data" / "wandb_ladder.json"
FINISHED = ["ladder-20M", "ladder-50M", "ladder-120M", "ladder-300M"]


def _payload():
  return json.loads(LADDER.read_text())


def _source_config(path=LADDER):
  """The flags of the README's command: the ladder's columns, finished runs only."""
  config = config_lib.default_config()
  config.runs.source, config.runs.path = "wandb", str(path)
  config.runs.csv.columns.params = "model.n_params"
  config.runs.csv.columns.loss = "eval/loss"
  config.runs.csv.columns.step = "_step"
  config.runs.csv.filters = ("run_state == finished",)
  return config


def test_the_recorded_export_becomes_runs_table_rows(tmp_path):
  loaded = runs.load(_source_config(), tmp_path)
  by_run = {}
  for row in loaded.rows:
    by_run.setdefault(row["run"], []).append(row)
  assert list(by_run) == FINISHED  # the crashed run filtered out by its state
  payload = {r["name"]: r for r in _payload()["runs"]}
  for name, rows in by_run.items():
    evals = [h for h in payload[name]["history"] if "eval/loss" in h]
    assert [r["step"] for r in rows] == [h["_step"] for h in evals]
    assert [r["tokens"] for r in rows] == [h["tokens"] for h in evals]
    assert [r["loss/validation"] for r in rows] == [h["eval/loss"] for h in evals]
    assert {r["N"] for r in rows} == {payload[name]["config"]["model"]["n_params"]}
    assert [r["final"] for r in rows] == [False] * (len(rows) - 1) + [True]
    assert rows[-1]["M"] == pytest.approx(evals[-1]["tokens"] / rows[-1]["N"], rel=1e-5)
    assert rows[0]["source"] == f"{LADDER}:{payload[name]['id']}@_step={evals[0]['_step']}"
  assert "35 history row(s) without 'eval/loss'" in loaded.notes[0]
  assert "'run_state == finished' removed 3 of 35" in loaded.notes[1]


def test_columns_config_dotted_history_over_config_run_columns_over_both():
  payload = dict(format=wandb_runs.FORMAT, runs=[dict(
      id="ab12", name="r", group="g", state="finished",
      config={"model": {"n_params": 5}, "tokens": 999, "run": "shadowed",
              "_wandb": {"x": 1}},
      summary={"eval/loss": 2.0, "_runtime": 3},
      history=[{"_step": 1, "tokens": 10, "eval/loss": 2.5}, {"_step": 2, "tokens": 20}])])
  header, records, notes = wandb_runs.records(payload, "P", "eval/loss")
  assert header[:4] == list(wandb_runs.RUN_COLUMNS)
  assert "_wandb" not in header and "summary._runtime" not in header
  [record] = records  # the row without the loss is left out, and counted
  assert record.cells == {"run": "r", "run_id": "ab12", "run_group": "g",
                          "run_state": "finished", "model.n_params": "5",
                          "tokens": "10", "_step": "1", "eval/loss": "2.5",
                          "summary.eval/loss": "2.0"}
  assert record.at("ignored") == "P:ab12@_step=1"
  assert notes == ["P: 1 history row(s) without 'eval/loss' (steps with no evaluation) "
                   "left out, of runs r (1)"]


def test_export_of_api_runs_is_the_recorded_shape():
  payload = _payload()
  api_runs = [wandb_api_fake.ApiRun(r) for r in payload["runs"]]
  assert wandb_runs.export(api_runs, payload["path"]) == payload
  only = wandb_runs.export(api_runs[:1], "p", keys=["tokens", "eval/loss"])
  assert api_runs[0].scanned[-1] == ["_step", "tokens", "eval/loss"]
  assert len(only["runs"][0]["history"]) == 8  # the rows holding both keys


def _fake_wandb(monkeypatch, payload, calls):
  """A `wandb` module whose Api serves `payload`'s runs and records its queries."""
  module = types.ModuleType("wandb")
  module.errors = types.SimpleNamespace(Error=type("Error", (Exception,), {}))

  class Api:
    def runs(self, path, filters=None):
      calls.append((path, filters))
      return [wandb_api_fake.ApiRun(r) for r in payload["runs"]
              if not filters or r["state"] == filters.get("state")]

  module.Api = Api
  monkeypatch.setitem(sys.modules, "wandb", module)
  return module


def test_the_live_path_reads_the_project_like_its_export(monkeypatch, tmp_path):
  calls = []
  _fake_wandb(monkeypatch, _payload(), calls)
  config = _source_config(path="ladder-lab/scaling")
  config.runs.wandb.filters = '{"state": "finished"}'
  config.runs.wandb.history_keys = "tokens, eval/loss"
  live = runs.load(config, tmp_path)
  assert calls == [("ladder-lab/scaling", {"state": "finished"})]
  from_file = runs.load(_source_config(), tmp_path)
  strip = lambda rows: [{k: v for k, v in r.items() if k != "source"} for r in rows]  # noqa: E731
  assert strip(live.rows) == strip(from_file.rows)
  assert live.rows[0]["source"] == "ladder-lab/scaling:k3j9x2ab@_step=190"


def test_the_export_command_writes_what_the_source_reads(monkeypatch, tmp_path, capsys):
  _fake_wandb(monkeypatch, _payload(), [])
  out = tmp_path / "saved.json"
  assert wandb_runs.main(["export", "ladder-lab/scaling", str(out)]) == 0
  assert json.loads(out.read_text()) == _payload()
  assert "wrote 5 runs" in capsys.readouterr().out


def test_errors_name_the_field_and_the_fix(monkeypatch, tmp_path):
  config = _source_config(path=tmp_path / "missing.json")
  with pytest.raises(runs.RunsError, match="missing.json: no such file"):
    runs.load(config, tmp_path)
  (tmp_path / "other.json").write_text('{"runs": []}')
  config.runs.path = str(tmp_path / "other.json")
  with pytest.raises(runs.RunsError, match="not a W&B export.*wandb_runs export ENTITY/PROJECT"):
    runs.load(config, tmp_path)
  config.runs.path = str(LADDER)
  config.runs.csv.columns.loss = "eval/los"
  with pytest.raises(runs.RunsError, match="did you mean 'eval/loss'"):
    runs.load(config, tmp_path)
  config.runs.csv.columns.loss = "eval/loss"
  config.runs.csv.columns.params = "n_params"
  with pytest.raises(runs.RunsError, match="columns.params.*did you mean 'model.n_params'"):
    runs.load(config, tmp_path)
  config.runs.path = "a/b/c"
  with pytest.raises(runs.RunsError, match="give ENTITY/PROJECT"):
    runs.load(config, tmp_path)
  config.runs.path = "lab/project"
  config.runs.wandb.filters = "state=finished"
  with pytest.raises(runs.RunsError, match="runs.wandb.filters.*not JSON"):
    runs.load(config, tmp_path)
  config.runs.wandb.filters = ""
  monkeypatch.setitem(sys.modules, "wandb", None)  # not installed
  with pytest.raises(runs.RunsError, match=r"pip install -e '\.\[wandb\]'"):
    runs.load(config, tmp_path)


def _curve_study(config):
  config.study.curves.fit_runs = ",".join(FINISHED[:3])
  config.study.curves.targets = FINISHED[3]
  config.study.curves.min_tokens = 1e8
  config.study.bootstrap.num_resamples = 16
  return config.study


@pytest.mark.slow  # ~8 s on a busy 2-core machine
def test_the_rows_fit_through_the_curve_study(tmp_path):
  # Exponents borrowed, so the solver is linear; the full fit is the CLI test's.
  config = _source_config()
  study = _curve_study(config)
  study.curves.borrow, study.curves.borrow_values = "alpha,beta", "alpha=0.34,beta=0.28"
  fitting_settings.check(study)
  loaded = runs.load(config, tmp_path)
  fit = curves.fit(loaded.rows, loaded.task_baselines, study)
  params = fit.fits["borrowed"].param_intervals(0.95)
  assert params["E"]["value"] == pytest.approx(1.69, abs=0.03)  # make_wandb_ladder.TRUTH
  assert params["B"]["value"] == pytest.approx(410.7, rel=0.03)
  [target] = fit.targets
  assert target["run"] == "ladder-300M" and target["are"] < 0.01


@pytest.mark.slow  # a curve study with 64 resamples (in this process: no start-up)
def test_the_documented_command_fits_a_wandb_export(tmp_path, monkeypatch, capsys):
  code, err = cli_runner.run_main(
      [f"--config={REPO_ROOT / 'configs' / 'curves.py'}",
       "--config.runs.source=wandb", f"--config.runs.path={LADDER}",
       "--config.runs.csv.columns.params=model.n_params",
       "--config.runs.csv.columns.loss=eval/loss", "--config.runs.csv.columns.step=_step",
       "--config.runs.csv.filters=('run_state == finished',)",
       f"--config.study.curves.fit_runs={','.join(FINISHED[:3])}",
       f"--config.study.curves.targets={FINISHED[3]}",
       "--config.study.curves.min_tokens=1e8", "--config.study.bootstrap.num_resamples=64",
       f"--workdir={tmp_path / 'out'}"], monkeypatch, capsys)
  assert code == 0, err[-2000:]
  fit = json.loads((tmp_path / "out" / "report" / "fit.json").read_text())
  [target] = fit["targets"]
  assert target["run"] == "ladder-300M" and target["are"] < 0.02
  assert fit["source"] == f"wandb ({LADDER})"
  assert any("'run_state == finished' removed 3" in note for note in fit["notes"])
