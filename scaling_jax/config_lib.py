"""The whole default config tree and the one variant parser.

`default_config()` builds every section from its owner's defaults (model presets,
data, evals, launch, study, runs); study configs (configs/*.py) start from it, and
main.py locks it, so a misspelt override fails at once with ml_collections' own
"did you mean" hint. `parse_arg` reads the text after the colon of
`--config=configs/x.py:arg`.

What a run's config implies (tokens, steps, warmup, cadences, FLOPs) is derived in
scaling_jax/plan.py, never stored here as separate knobs.
"""
from __future__ import annotations

import dataclasses

import ml_collections

from scaling_jax import model as model_lib


def parse_arg(arg: str, knobs: dict, where: str) -> dict:
  """The text after the colon, 'key=value,flag,...', over `knobs` (name -> default).

  Values take the type of their default (a bare flag sets a bool knob to True);
  unknown names and values of the wrong type fail naming `where` (the config file).
  """
  out = dict(knobs)
  for item in filter(None, (arg or "").split(",")):
    key, has_value, value = (part.strip() for part in item.partition("="))
    if key not in knobs:
      raise ValueError(f"{where}: unknown variant {key!r} in {arg!r}; known: "
                       f"{', '.join(knobs)}")
    default = knobs[key]
    if isinstance(default, bool):
      if has_value and value.lower() not in ("true", "false", "1", "0"):
        raise ValueError(f"{where}: variant {key!r} is a flag; write '{key}' or "
                         f"'{key}=false'")
      out[key] = not has_value or value.lower() in ("true", "1")
    else:
      try:
        out[key] = type(default)(value)
      except ValueError:
        kind = {int: "an integer", float: "a number"}.get(type(default),
                                                          type(default).__name__)
        raise ValueError(f"{where}: variant {key}={value!r} must be {kind}, e.g. "
                         f"{key}={default!r}") from None
  return out


def default_config() -> ml_collections.ConfigDict:
  """Every field of a study, each with its one default, from its owner.

  A study config (configs/*.py) starts here and changes what it needs; a single
  training run reads model, data, train, optim, mesh, distributed, evals and wandb;
  the study job adds sweep, launch, runs and study.
  """
  # Imported here: each owner's defaults pull in its package, which a caller that
  # only plans runs does not need. None of these imports config_lib back.
  from scaling_jax import data  # pylint: disable=g-import-not-at-top
  from scaling_jax import evals  # pylint: disable=g-import-not-at-top
  from scaling_jax import runs  # pylint: disable=g-import-not-at-top
  from scaling_jax import wandb_log  # pylint: disable=g-import-not-at-top
  from scaling_jax.fitting import settings as fitting_settings  # pylint: disable=g-import-not-at-top
  from scaling_jax.launch import options as launch_options  # pylint: disable=g-import-not-at-top
  config = ml_collections.ConfigDict()
  config.name = ""  # run name in the runs table; '' -> the workdir's basename
  config.seed = 0
  config.dataset = ""  # the runs table's dataset column; '' -> data.dataset_name
  config.model = dataclasses.asdict(model_lib.preset("tiny-3"))
  config.data = data.default_data_config()
  # Partial data configs by name, for sweeps over datasets (launch/sweep.py).
  config.datasets = ml_collections.ConfigDict()
  config.train = dict(
      tokens_per_param=20.0,  # M = D / N
      global_batch=16,  # sequences per step, all processes together
      eval_every_tokens=2_000_000,  # the last step is always evaluated too
      checkpoint_every_tokens=4_000_000,  # and at the last step
      keep_checkpoints=2,
      log_every_steps=50,
      stop_after_steps=0,  # >0: stop (with a checkpoint) after this many steps
      # A WSD ladder ('10,20,40,80'; needs optim.schedule='wsd'): the largest M is
      # the trunk, the others branch from its state where their cooldowns start
      # (plan.py; a warmup_fraction counts the shortest rung). branch_dir is where
      # the trunk leaves those states ('' -> the launcher sets
      # <workdir>/runs/<trunk>/branch_points).
      branch_multipliers="",
      branch_dir="",
      branch_wait_minutes=24 * 60.0,  # how long a branch waits for its trunk
      # JAX's persistent compilation cache, shared by a sweep's units so those of
      # one shape reuse compiled steps (scaling_jax/compile_cache.py).
      compilation_cache=True,
      compilation_cache_dir="",  # '' -> the launcher's <workdir>/.jax_cache
  )
  config.optim = dict(peak_lr=3e-3, final_lr=3e-5, beta1=0.9, beta2=0.95, eps=1e-8,
                      weight_decay=0.033, grad_clip=1.0,
                      # Warmup: steps or tokens (> 0) win over the fraction.
                      warmup_fraction=0.05, warmup_steps=0, warmup_tokens=0,
                      # 'cosine' or 'wsd' (warmup-stable-decay; optim.py), whose
                      # last cooldown_fraction of steps decay 'linear' or '1-sqrt'.
                      schedule="cosine", cooldown_fraction=0.2,
                      cooldown_shape="linear")
  config.mesh = dict(data=-1, fsdp=1, tensor=1)  # -1: the devices left over
  config.distributed = dict(
      initialize=False,  # call jax.distributed.initialize (multi-host)
      coordinator_address="",  # '' -> let JAX detect the cluster
      num_processes=1, process_id=0)
  config.evals = evals.default_evals_config()
  config.wandb = wandb_log.default_wandb_config()  # a W&B mirror of TensorBoard
  config.sweep = []  # override dicts, one per unit (see launch/sweep.py)
  config.launch = launch_options.default_launch_config()
  config.runs = runs.default_runs_config()
  config.study = fitting_settings.default_study_config()
  return config
