"""The trainer's mirror to Weights & Biases: what it logs and resumes, on a fake
`wandb` module and once on the real one, offline; and that the runs source
(tests/wandb_source_test.py) reads back what it logged.
"""
import glob
import json
import os
import pathlib
import sys
import types

import pytest

import wandb_api_fake
from scaling_jax import config_lib
from scaling_jax import event_log
from scaling_jax import runs
from scaling_jax import wandb_log
from scaling_jax.runs import wandb_runs


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
  export.write_text(json.dumps(wandb_runs.export([wandb_api_fake.ApiRun(r) for r in recorded])))
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
