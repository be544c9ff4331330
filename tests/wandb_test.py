"""Weights & Biases: the runs source on a recorded export, and the trainer's mirror.

The source is tested on tests/data/wandb_ladder.json (made by make_wandb_ladder.py
in the shape `wandb_runs.export` gives wandb.Api's runs) and on fake Api objects;
the mirror on a fake `wandb` module, and once on the real one, offline.
"""
import glob
import json
import os
import pathlib
import sys
import types

import pytest

import cli_runner
from conftest import REPO_ROOT
from scaling_jax import config_lib
from scaling_jax import event_log
from scaling_jax import runs
from scaling_jax import wandb_log
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


# --- the runs source -----------------------------------------------------------

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


class _ApiRun:
  """What `export` reads of a wandb.apis.public.Run (attribute for attribute)."""

  def __init__(self, recorded):
    self._recorded = recorded
    self.id, self.name, self.group, self.state = (
        recorded["id"], recorded["name"], recorded["group"], recorded["state"])
    self.config = recorded["config"]
    # The public Api's summary is a mapping type, not a dict.
    self.summary = types.MappingProxyType(recorded["summary"])
    self.scanned = []

  def scan_history(self, keys=None, page_size=1000):
    del page_size
    self.scanned.append(keys)
    rows = self._recorded["history"]
    return iter([{k: r[k] for k in keys} for r in rows if all(k in r for k in keys)]
                if keys else rows)


def test_export_of_api_runs_is_the_recorded_shape():
  payload = _payload()
  api_runs = [_ApiRun(r) for r in payload["runs"]]
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
      return [_ApiRun(r) for r in payload["runs"]
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


# --- the trainer's mirror ----------------------------------------------------------

class _FakeRun:
  """A wandb Run as the mirror uses it, keeping what it was given."""

  def __init__(self, **init):
    self.init, self.logged, self.finished = init, [], False
    self.config = _Config(init["config"])
    self.summary = {}

  def log(self, values, step):
    self.logged.append((step, dict(values)))

  def finish(self, exit_code=0):
    self.finished = exit_code


class _Config(dict):
  def update(self, values, allow_val_change=False):
    assert allow_val_change  # the final HParams restate the first config
    super().update(values)


def _fake_wandb_init(monkeypatch):
  started = []
  module = types.ModuleType("wandb")
  module.errors = types.SimpleNamespace(Error=type("Error", (Exception,), {}))
  module.init = lambda **kwargs: started.append(_FakeRun(**kwargs)) or started[-1]
  monkeypatch.setitem(sys.modules, "wandb", module)
  monkeypatch.delenv("WANDB_DIR", raising=False)
  return started


def _unit_config(project="lab-scaling", mode="offline"):
  config = config_lib.default_config()
  config.wandb.project, config.wandb.mode = project, mode
  return config


HPARAMS = dict(N=1000, M=20.0, model="tiny-3", dataset="embedded", seed=0)


def test_the_mirror_logs_what_tensorboard_gets_and_resumes_its_run(monkeypatch, tmp_path):
  started = _fake_wandb_init(monkeypatch)
  workdir = tmp_path / "study" / "runs" / "tiny-3_M20"
  tb = event_log.EventLog(workdir / "tb")
  log = wandb_log.mirrored(tb, _unit_config(), str(workdir), "tiny-3_M20", HPARAMS,
                           tokens_at=lambda step: step * 64)
  assert log is not tb
  written = log.scalars(10, {"train/loss": 3.0, "train/tokens_per_s": None, "note": "x"})
  assert written == {"train/loss": 3.0}  # TensorBoard's result
  log.scalars(20, {"loss/validation": 2.5})
  log.hparams(20, dict(HPARAMS, steps=20), metric_tags=["loss/validation"])
  log.close()
  [run] = started
  assert run.logged == [(10, {"train/loss": 3.0, "tokens": 640}),
                        (20, {"loss/validation": 2.5, "tokens": 1280})]
  assert run.summary == {"loss/validation": 2.5} and run.finished == 0
  assert run.config["steps"] == 20 and run.config["N"] == 1000
  assert run.config["unit"]["wandb"]["project"] == "lab-scaling"
  init = run.init
  assert (init["project"], init["name"], init["group"], init["mode"], init["resume"]) == (
      "lab-scaling", "tiny-3_M20", "study", "offline", "allow")
  assert init["dir"] == str(workdir) and init["entity"] is None
  # A resumed unit continues the same run; another unit gets its own.
  resumed = wandb_log.mirrored(event_log.EventLog(workdir / "tb"), _unit_config(),
                               str(workdir), "tiny-3_M20", HPARAMS)
  try:
    raise KeyboardInterrupt  # stopped again: its run is marked failed
  except KeyboardInterrupt:
    resumed.close()
  assert started[1].finished == 1
  other = tmp_path / "study" / "runs" / "tiny-3_M40"
  wandb_log.mirrored(tb, _unit_config(), str(other), "tiny-3_M40", HPARAMS)
  assert started[1].init["id"] == init["id"] != started[2].init["id"]
  assert init["id"].startswith("tiny-3_M20-")


def test_the_trainers_reporter_mirrors_its_scalars_and_hparams(monkeypatch, tmp_path):
  from scaling_jax import plan as plan_lib  # pylint: disable=import-outside-toplevel
  from scaling_jax import train  # pylint: disable=import-outside-toplevel
  started = _fake_wandb_init(monkeypatch)
  config = _unit_config()
  config.name = "tiny-3_M20"
  plan = plan_lib.plan(config)
  workdir = tmp_path / "study" / "runs" / config.name
  reporter = train._Reporter(  # pylint: disable=protected-access
      config, str(workdir), plan, plan_lib.model_config(config), "embedded", 0)
  reporter.train_metrics(1, {"loss": 5.0, "lr": 1e-3})
  reporter.eval_row(plan.steps, {"loss/validation": 4.0})
  reporter.close()
  [run] = started
  assert run.init["name"] == "tiny-3_M20" and run.init["config"]["N"] == plan.num_params
  assert run.logged == [
      (1, {"train/loss": 5.0, "train/lr": 1e-3, "tokens": plan.tokens_at(1)}),
      (plan.steps, {"loss/validation": 4.0, "tokens": plan.tokens_at(plan.steps)})]
  assert run.config["steps"] == plan.steps and run.summary == {"loss/validation": 4.0}
  assert run.finished == 0


def test_a_group_given_wins_and_a_lone_unit_has_none(monkeypatch, tmp_path):
  started = _fake_wandb_init(monkeypatch)
  config = _unit_config()
  wandb_log.mirrored(None, config, str(tmp_path / "alone"), "alone", HPARAMS)
  config.wandb.group, config.wandb.entity = "ablation", "lab"
  wandb_log.mirrored(None, config, str(tmp_path / "alone"), "alone", HPARAMS)
  assert [(r.init["group"], r.init["entity"]) for r in started] == [
      (None, None), ("ablation", "lab")]


def test_off_unless_a_project_is_set_and_wandb_is_then_required(monkeypatch, tmp_path):
  monkeypatch.setitem(sys.modules, "wandb", None)  # not installed
  tb = object()
  for config in (config_lib.default_config(), _unit_config(mode="disabled")):
    wandb_log.check(config)
    assert wandb_log.mirrored(tb, config, str(tmp_path), "r", HPARAMS) is tb
  with pytest.raises(ValueError, match=r"'wandb.project' is 'lab-scaling'.*"
                                       r"pip install -e '\.\[wandb\]'"):
    wandb_log.check(_unit_config())
  with pytest.raises(ValueError, match="'wandb.mode' is 'ofline'"):
    wandb_log.check(_unit_config(mode="ofline"))


def test_what_the_mirror_logs_is_what_the_source_fits(monkeypatch, tmp_path):
  # This project's own W&B runs, read back: N from the config, tokens from history.
  started = _fake_wandb_init(monkeypatch)
  for name, n in (("a", 1000), ("b", 4000)):
    log = wandb_log.open_run(_unit_config(), str(tmp_path / name), name,
                             dict(HPARAMS, N=n), tokens_at=lambda step: step * 64)
    for step in (100, 200):
      log.scalars(step, {"train/loss": 3.0})
      log.scalars(step, {"loss/validation": 10.0 / step})
    log.close()
  recorded = []
  for run in started:
    steps = {}
    for step, values in run.logged:
      steps.setdefault(step, {"_step": step}).update(values)
    recorded.append(dict(id=run.init["id"], name=run.init["name"], group=None,
                         state="finished", config=dict(run.config), summary={},
                         history=list(steps.values())))
  export = tmp_path / "export.json"
  export.write_text(json.dumps(wandb_runs.export([_ApiRun(r) for r in recorded])))
  config = config_lib.default_config()
  config.runs.source, config.runs.path = "wandb", str(export)
  config.runs.csv.columns.update(params="N", loss="loss/validation", step="_step")
  rows = runs.load(config, tmp_path).rows
  assert [(r["run"], r["N"], r["step"], r["tokens"], r["loss/validation"]) for r in rows] == [
      ("a", 1000, 100, 6400, 0.1), ("a", 1000, 200, 12800, 0.05),
      ("b", 4000, 100, 6400, 0.1), ("b", 4000, 200, 12800, 0.05)]


@pytest.mark.slow  # wandb's import and its service process: ~10 s
def test_real_wandb_offline_writes_the_run_under_wandb_dir(monkeypatch, tmp_path):
  wandb = pytest.importorskip("wandb")
  monkeypatch.setenv("WANDB_DIR", str(tmp_path))
  monkeypatch.setenv("WANDB_MODE", "offline")
  monkeypatch.setenv("WANDB_SILENT", "true")
  monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
  monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "cache"))
  workdir = tmp_path / "study" / "runs" / "u"
  log = wandb_log.open_run(_unit_config(mode="offline"), str(workdir), "u", HPARAMS,
                           tokens_at=lambda step: step * 64)
  assert log.scalars(10, {"train/loss": 3.0}) == {"train/loss": 3.0}
  log.scalars(10, {"loss/validation": 2.9})
  log.hparams(10, HPARAMS, ["loss/validation"])
  log.close()
  # finish() can return before wandb's service process has written the run out
  # (seen on a busy machine); its shutdown waits for that.
  wandb.teardown()
  run_id = (workdir / wandb_log.RUN_ID_FILENAME).read_text().strip()
  [run_dir] = glob.glob(str(tmp_path / "wandb" / f"offline-run-*-{run_id}"))
  data = (pathlib.Path(run_dir) / f"run-{run_id}.wandb").read_bytes()
  for logged in (b"train/loss", b"loss/validation", b"tokens", b"lab-scaling", b"study"):
    assert logged in data, logged
  assert os.path.isdir(os.path.join(run_dir, "files"))
