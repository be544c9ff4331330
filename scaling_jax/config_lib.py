"""The whole default config tree, the one variant parser, and the run's plan.

`default_config()` builds every section from its owner's defaults (model presets,
data, evals, launch, study, runs); study configs (configs/*.py) start from it, and
main.py locks it, so a misspelt override fails at once with ml_collections' own
"did you mean" hint. `parse_arg` reads the text after the colon of
`--config=configs/x.py:arg`.

`plan()` is the one place for quantities derived from a run's config. N is counted from the model's real parameter tree (`model.num_params`, which the
tests hold equal to it); the run's length follows from N and the token multiplier
M: tokens = M x N, steps = tokens / (global_batch x seq_len). Every cadence given
in tokens becomes steps here, so nothing else converts units.
"""
from __future__ import annotations

import dataclasses
import json
import math

import ml_collections

from scaling_jax import model as model_lib
from scaling_jax.runs import table as runs_table


@dataclasses.dataclass(frozen=True)
class RunPlan:
  """What a run will do, derived once from its config."""
  num_params: int
  tokens_per_param: float
  tokens_per_step: int
  steps: int
  warmup_steps: int
  eval_every_steps: int
  checkpoint_every_steps: int
  flops_per_token: float

  @property
  def tokens(self) -> int:
    """Tokens the run trains on (the plan rounded to whole steps)."""
    return self.steps * self.tokens_per_step

  @property
  def flops(self) -> float:
    """Training FLOPs of the whole run, as the runs table counts them."""
    return runs_table.training_flops(self.num_params, self.tokens)

  def tokens_at(self, step: int) -> int:
    return step * self.tokens_per_step


def model_config(config) -> model_lib.ModelConfig:
  """`config.model` as the model's dataclass, in one hop (unknown fields fail)."""
  fields = dict(config.model)
  known = {f.name for f in dataclasses.fields(model_lib.ModelConfig)}
  unknown = sorted(set(fields) - known)
  if unknown:
    raise ValueError(f"config.model has unknown field(s) {unknown}; known: "
                     f"{sorted(known)}")
  return model_lib.ModelConfig(**fields)


def tokens_to_steps(tokens: float, tokens_per_step: int, name: str) -> int:
  """Tokens -> whole steps (at least 1); `name` is the field, for errors."""
  if not tokens > 0:
    raise ValueError(f"config.{name} must be positive, got {tokens!r}")
  return max(1, round(tokens / tokens_per_step))


def plan(config) -> RunPlan:
  """Derives the run's length and cadences from `config.model` and `config.train`."""
  cfg = model_config(config)
  train = config.train
  if not isinstance(train.global_batch, int) or train.global_batch <= 0:
    raise ValueError(f"config.train.global_batch must be a positive int, got "
                     f"{train.global_batch!r}")
  if not train.tokens_per_param > 0:
    raise ValueError(f"config.train.tokens_per_param (M) must be positive, got "
                     f"{train.tokens_per_param!r}")
  n = model_lib.num_params(cfg)
  tokens_per_step = train.global_batch * cfg.seq_len
  steps = tokens_to_steps(train.tokens_per_param * n, tokens_per_step,
                          "train.tokens_per_param")
  return RunPlan(
      num_params=n,
      tokens_per_param=float(train.tokens_per_param),
      tokens_per_step=tokens_per_step,
      steps=steps,
      warmup_steps=_warmup_steps(config.optim, steps, tokens_per_step),
      eval_every_steps=min(steps, tokens_to_steps(
          train.eval_every_tokens, tokens_per_step, "train.eval_every_tokens")),
      checkpoint_every_steps=tokens_to_steps(
          train.checkpoint_every_tokens, tokens_per_step,
          "train.checkpoint_every_tokens"),
      flops_per_token=model_lib.flops_per_token(cfg),
  )


def _warmup_steps(optim, steps: int, tokens_per_step: int) -> int:
  """Warmup from whichever of warmup_steps, warmup_tokens, warmup_fraction is set.

  Steps or tokens (> 0) take precedence over the fraction, so a study can give the
  released warmup of each size without re-deriving the run's steps itself.
  """
  given = [k for k in ("warmup_steps", "warmup_tokens") if optim.get(k, 0)]
  if len(given) > 1:
    raise ValueError("config.optim sets both warmup_steps and warmup_tokens; keep one")
  if given == ["warmup_steps"]:
    if not isinstance(optim.warmup_steps, int) or optim.warmup_steps < 0:
      raise ValueError(f"config.optim.warmup_steps must be a non-negative int, got "
                       f"{optim.warmup_steps!r}")
    return optim.warmup_steps
  if given == ["warmup_tokens"]:
    return tokens_to_steps(optim.warmup_tokens, tokens_per_step, "optim.warmup_tokens")
  if not 0 <= optim.warmup_fraction < 1:
    raise ValueError(f"config.optim.warmup_fraction must be in [0, 1), got "
                     f"{optim.warmup_fraction!r}")
  return math.ceil(optim.warmup_fraction * steps)


def eval_steps(run_plan: RunPlan) -> list[int]:
  """Steps after which the in-loop evaluation runs; always includes the last.

  A periodic evaluation within half a period of the last is dropped: it would
  add a near-duplicate point to the fit.
  """
  every, last = run_plan.eval_every_steps, run_plan.steps
  steps = [s for s in range(every, last, every) if last - s >= every / 2]
  return steps + [last]


def check_data_fits(run_plan: RunPlan, train_tokens: int, where: str = "") -> None:
  """Fails before training when the run needs more tokens than the split holds."""
  if run_plan.tokens > train_tokens:
    raise ValueError(
        f"{where}the run needs {run_plan.tokens:,} training tokens "
        f"(M={run_plan.tokens_per_param:g} x N={run_plan.num_params:,}, rounded "
        f"to {run_plan.steps} steps) but the train split holds {train_tokens:,} "
        f"without repeating; lower config.train.tokens_per_param, pick a smaller "
        f"model, or use a larger dataset")


def to_json(config) -> str:
  """The config as stable JSON, for the runs table's `config` column."""
  if isinstance(config, ml_collections.ConfigDict):
    config = config.to_dict()
  return json.dumps(config, sort_keys=True, default=str)


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
        raise ValueError(f"{where}: variant {key}={value!r} must be a "
                         f"{type(default).__name__}") from None
  return out


def default_config() -> ml_collections.ConfigDict:
  """Every field of a study, each with its one default, from its owner.

  A study config (configs/*.py) starts here and changes what it needs; a single
  training run reads model, data, train, optim, mesh, distributed and evals; the
  study job adds sweep, launch, runs and study.
  """
  # Imported here: each owner's defaults pull in its package, which a caller that
  # only plans runs does not need. None of these imports config_lib back.
  from scaling_jax import advice  # pylint: disable=g-import-not-at-top
  from scaling_jax import curves  # pylint: disable=g-import-not-at-top
  from scaling_jax import data  # pylint: disable=g-import-not-at-top
  from scaling_jax import evals  # pylint: disable=g-import-not-at-top
  from scaling_jax import fitting  # pylint: disable=g-import-not-at-top
  from scaling_jax import runs  # pylint: disable=g-import-not-at-top
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
      # JAX's persistent compilation cache, shared by a sweep's units so those of
      # one shape reuse compiled steps (scaling_jax/compile_cache.py).
      compilation_cache=True,
      compilation_cache_dir="",  # '' -> the launcher's <workdir>/.jax_cache
  )
  config.optim = dict(peak_lr=3e-3, final_lr=3e-5, beta1=0.9, beta2=0.95, eps=1e-8,
                      weight_decay=0.033, grad_clip=1.0,
                      # Warmup: steps or tokens (> 0) win over the fraction.
                      warmup_fraction=0.05, warmup_steps=0, warmup_tokens=0)
  config.mesh = dict(data=-1, fsdp=1, tensor=1)  # -1: the devices left over
  config.distributed = dict(
      initialize=False,  # call jax.distributed.initialize (multi-host)
      coordinator_address="",  # '' -> let JAX detect the cluster
      num_processes=1, process_id=0)
  config.evals = evals.default_evals_config()
  config.sweep = []  # override dicts, one per unit (see launch/sweep.py)
  config.launch = launch_options.default_launch_config()
  config.runs = runs.default_runs_config()
  config.study = fitting.default_study_config()
  config.study.update(curves.default_curve_config())
  config.study.advise = advice.default_advise_config()
  config.study.retrospective = advice.default_retrospective_config()
  return config
