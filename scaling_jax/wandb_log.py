"""A unit's Weights & Biases run: a mirror of its TensorBoard log, when asked for.

W&B is an optional extra (`pip install -e '.[wandb]'`), so this is the only module
that imports `wandb`, and only when `config.wandb.project` is set: a unit then
logs to W&B exactly what it writes to TensorBoard (event_log.py), plus the tokens
trained by each logged step, which a fit of the project needs (the W&B runs
source, runs/wandb_runs.py, reads them back):

  scalars(step, values)           wandb.log(values | {"tokens": ...}, step=step)
  hparams(step, hparams, tags)    the run's config, and the tags' last values as
                                  its summary

The run is named after the unit, grouped by its sweep (the study's folder), and
its config holds the unit's HParams (N, M, model, dataset, ...) from the start, so
runs in progress can be sliced too. Resuming: the run's id is kept in the unit's
folder (RUN_ID_FILENAME), so a resumed unit continues its run; steps the run had
already logged past the restored checkpoint are dropped by W&B (with a warning).
Only process 0 logs (train.py creates no mirror elsewhere).
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import uuid
from typing import Callable, Iterable, Mapping

from scaling_jax import config_fields

MODES = ("online", "offline", "disabled")
INSTALL = "pip install -e '.[wandb]'"
RUN_ID_FILENAME = "wandb_run_id"


def default_wandb_config():
  """`config.wandb`: where a unit mirrors its TensorBoard log ('' project: nowhere)."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  return ml_collections.ConfigDict(dict(
      project="",  # the W&B project; '' -> no W&B logging
      entity="",  # team or user; '' -> your default entity
      mode="online",  # one of MODES: 'offline' writes under the unit, `wandb sync` later
      group="",  # '' -> the sweep's name (the study's folder), if the unit has one
  ))


def enabled(config) -> bool:
  """Whether `config` (a unit's or the study's) asks for W&B logging."""
  wandb_cfg = config.get("wandb")
  return bool(wandb_cfg and wandb_cfg.project and wandb_cfg.mode != "disabled")


def check(config) -> None:
  """Fails before any training when W&B is asked for but cannot be used."""
  wandb_cfg = config.get("wandb")
  if not wandb_cfg:
    return
  config_fields.require_choice("wandb.mode", wandb_cfg.mode, MODES)
  if enabled(config) and not _installed():
    raise ValueError(f"config field 'wandb.project' is {wandb_cfg.project!r}, so the "
                     f"units log to Weights & Biases, but the wandb package is not "
                     f"installed: {INSTALL} (or set --config.wandb.project='' to log "
                     f"to TensorBoard only)")


def _installed() -> bool:
  if "wandb" in sys.modules:  # imported already (or blocked: None)
    return sys.modules["wandb"] is not None
  return importlib.util.find_spec("wandb") is not None


def _group(wandb_cfg, workdir: str) -> str | None:
  """config.wandb.group, else the study folder of a sweep unit's WORKDIR/runs/<name>."""
  if wandb_cfg.group:
    return wandb_cfg.group
  parent = os.path.dirname(os.path.abspath(workdir))
  if os.path.basename(parent) == "runs":
    return os.path.basename(os.path.dirname(parent)) or None
  return None


def run_id(workdir: str, name: str) -> str:
  """The unit's W&B run id: read from its folder, else made and saved there, so a
  resumed unit continues its run and a retrained (wiped) one starts a new run."""
  path = os.path.join(workdir, RUN_ID_FILENAME)
  try:
    with open(path, encoding="utf-8") as f:
      saved = f.read().strip()
    if saved:
      return saved
  except FileNotFoundError:
    pass
  # W&B ids may not hold '/', '\', '#', '?', '%' or ':'; a random tail keeps the
  # ids of same-named units (other studies, one project) apart.
  new = f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)[:48]}-{uuid.uuid4().hex[:8]}"
  os.makedirs(workdir, exist_ok=True)
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(new + "\n")
  os.replace(tmp, path)
  return new


class WandbLog:
  """EventLog's two writes, made to a W&B run (see the module docstring)."""

  def __init__(self, run, tokens_at: Callable[[int], int] | None = None):
    self.run, self._tokens_at, self._last = run, tokens_at, {}

  def scalars(self, step: int, values: Mapping) -> dict[str, float]:
    """Logs the numeric values at `step` (as EventLog does); returns those logged."""
    from scaling_jax import event_log  # pylint: disable=g-import-not-at-top
    numbers = {tag: event_log.as_number(v) for tag, v in values.items()}
    numbers = {tag: v for tag, v in numbers.items() if v is not None}
    if numbers:
      self._last.update(numbers)
      extra = {} if self._tokens_at is None else {"tokens": self._tokens_at(int(step))}
      self.run.log(numbers | extra, step=int(step))
    return numbers

  def hparams(self, step: int, hparams: Mapping, metric_tags: Iterable[str]) -> None:
    """The finished unit: `hparams` into the run's config, the last values of
    `metric_tags` into its summary."""
    del step  # a W&B run's config and summary have no step
    self.run.config.update({k: v for k, v in hparams.items() if v is not None},
                           allow_val_change=True)
    self.run.summary.update({t: self._last[t] for t in metric_tags if t in self._last})

  def close(self) -> None:
    # Called from train.py's `finally`: an exception on its way out (a crash, a
    # preemption) marks the run failed in W&B; the resumed unit finishes it.
    self.run.finish(exit_code=1 if sys.exc_info()[0] is not None else 0)


class Mirrored:
  """A log and its W&B mirror behind EventLog's methods; the log's results win."""

  def __init__(self, log, mirror: WandbLog):
    self.log, self.mirror = log, mirror

  def scalars(self, step: int, values: Mapping) -> dict[str, float]:
    written = self.log.scalars(step, values)
    self.mirror.scalars(step, values)
    return written

  def hparams(self, step: int, hparams: Mapping, metric_tags: Iterable[str]) -> None:
    self.log.hparams(step, hparams, metric_tags)
    self.mirror.hparams(step, hparams, metric_tags)

  def close(self) -> None:
    try:
      self.log.close()
    finally:
      self.mirror.close()


def open_run(config, workdir: str, name: str, run_config: Mapping,
             tokens_at: Callable[[int], int] | None = None) -> WandbLog:
  """Starts (or resumes) the unit's W&B run; `run_config` is its first config."""
  check(config)
  import wandb  # pylint: disable=g-import-not-at-top
  wandb_cfg = config.wandb
  unit = json.loads(json.dumps(config.to_dict(), default=str))  # JSON-safe copy
  unit.pop("sweep", None)
  try:
    run = wandb.init(
        project=wandb_cfg.project, entity=wandb_cfg.entity or None,
        group=_group(wandb_cfg, workdir), name=name, id=run_id(workdir, name),
        resume="allow", mode=wandb_cfg.mode,
        # Beside the unit's other logs, unless WANDB_DIR says otherwise.
        dir=None if os.environ.get("WANDB_DIR") else workdir,
        config=dict(run_config, unit=unit))
  except wandb.errors.Error as e:
    raise ValueError(f"cannot start the W&B run of {name!r} (config.wandb: project "
                     f"{wandb_cfg.project!r}, mode {wandb_cfg.mode!r}): {e}; log in "
                     f"with `wandb login` (or set WANDB_API_KEY), or pass "
                     f"--config.wandb.mode=offline and `wandb sync` later") from e
  return WandbLog(run, tokens_at)


def mirrored(log, config, workdir: str, name: str, run_config: Mapping,
             tokens_at: Callable[[int], int] | None = None):
  """`log`, mirrored to W&B when `config` asks for it (else `log` itself)."""
  if not enabled(config):
    return log
  return Mirrored(log, open_run(config, workdir, name, run_config, tokens_at))
