"""A run's plan: every quantity derived from its config, computed in one place.

N is counted from the model's real parameter tree (`model.num_params`, which the
tests hold equal to it); the run's length follows from N and the token multiplier
M: tokens = M x N, steps = tokens / (global_batch x seq_len). Every cadence given
in tokens becomes steps here, so nothing else converts units. A sweep plans each
unit once (launch/units.py holds the plan on its WorkUnit); FLOPs are the runs
table's 6 N D (runs/table.py), reached through the plan rather than written again.
"""
from __future__ import annotations

import dataclasses
import math

from scaling_jax import model as model_lib
from scaling_jax import optim
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
  # A WSD ladder (config.train.branch_multipliers): a branch starts from its trunk's
  # state at `branch_from_step` (0: trains from scratch, as a trunk or a lone run);
  # the trunk saves its state at each `branch_points` step for the branches.
  branch_from_step: int = 0
  branch_points: tuple[int, ...] = ()

  @property
  def tokens(self) -> int:
    """Tokens the run trains on (the plan rounded to whole steps)."""
    return self.steps * self.tokens_per_step

  @property
  def in_ladder(self) -> bool:
    """Whether the run is a WSD ladder's trunk or one of its branches."""
    return bool(self.branch_from_step or self.branch_points)

  def cost_flops_at(self, step: int) -> float:
    """The compute this unit itself has spent by `step`: a branch only from its fork,
    since its trunk paid for the steps before (6 N x the tokens it trains)."""
    return self.flops_at(self.tokens_at(step - self.branch_from_step))

  @property
  def cost_flops(self) -> float:
    """The compute the whole unit spends (cost_flops_at its last step)."""
    return self.cost_flops_at(self.steps)

  @property
  def flops(self) -> float:
    """Training FLOPs of the whole run, as the runs table counts them."""
    return runs_table.training_flops(self.num_params, self.tokens)

  def tokens_at(self, step: int) -> int:
    return step * self.tokens_per_step

  def flops_at(self, tokens: float) -> float:
    """Training FLOPs after `tokens` tokens of this run (the runs table's count)."""
    return runs_table.training_flops(self.num_params, tokens)

  def tokens_for(self, flops: float) -> float:
    """Tokens this run has trained on after `flops` training FLOPs."""
    return runs_table.tokens_of(self.num_params, flops)


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
  steps_of = lambda m: tokens_to_steps(m * n, tokens_per_step, "train.tokens_per_param")
  steps = steps_of(train.tokens_per_param)
  ladder = ladder_multipliers(config)
  # A ladder's runs share their trunk's warmup, and every rung needs a constant
  # phase to fork from: a warmup fraction counts the shortest rung's steps.
  warmup = _warmup_steps(config.optim, steps_of(min(ladder)) if ladder else steps,
                         tokens_per_step)
  cooldown = config.optim.get("cooldown_fraction", 0.2)
  fork = lambda m: max(warmup, optim.cooldown_start(steps_of(m), cooldown))
  is_trunk = bool(ladder) and math.isclose(train.tokens_per_param, max(ladder))
  short = [m for m in ladder if fork(m) >= steps_of(m)]
  if short:
    raise ValueError(
        f"config.train.branch_multipliers: the run(s) at M={short} end by step "
        f"{steps_of(short[0])}, before the ladder's warmup ({warmup} steps) ends, so "
        f"they cannot branch from its trunk; train them alone (drop them from "
        f"the ladder) or shorten config.optim's warmup")
  return RunPlan(
      num_params=n,
      tokens_per_param=float(train.tokens_per_param),
      tokens_per_step=tokens_per_step,
      steps=steps,
      warmup_steps=warmup,
      branch_from_step=fork(train.tokens_per_param) if ladder and not is_trunk else 0,
      branch_points=tuple(sorted({fork(m) for m in ladder if m < max(ladder)}))
      if is_trunk else (),
      eval_every_steps=min(steps, tokens_to_steps(
          train.eval_every_tokens, tokens_per_step, "train.eval_every_tokens")),
      checkpoint_every_steps=tokens_to_steps(
          train.checkpoint_every_tokens, tokens_per_step,
          "train.checkpoint_every_tokens"),
  )


def ladder_multipliers(config) -> tuple[float, ...]:
  """config.train.branch_multipliers as numbers ('' -> no ladder), checked against
  the run's own M and schedule."""
  text = str(config.train.get("branch_multipliers", "") or "").strip()
  if not text:
    return ()
  field = "config.train.branch_multipliers"
  try:
    ladder = tuple(float(v) for v in text.split(","))
  except ValueError:
    raise ValueError(f"{field} is {text!r}; give token multipliers separated by "
                     f"commas, e.g. '10,20,40,80'") from None
  if any(not m > 0 for m in ladder) or len(set(ladder)) != len(ladder):
    raise ValueError(f"{field} is {text!r}; the multipliers must be positive and "
                     f"distinct")
  if config.optim.get("schedule", "cosine") != "wsd":
    raise ValueError(f"{field} is {text!r}, but branches fork from a trunk's constant "
                     f"learning rate: set --config.optim.schedule=wsd (it is "
                     f"{config.optim.get('schedule', 'cosine')!r})")
  m = config.train.tokens_per_param
  if not any(math.isclose(m, b) for b in ladder):
    raise ValueError(f"config.train.tokens_per_param is {m:g}, not one of {field} "
                     f"({text}): a ladder's runs are its trunk and its branches")
  return ladder


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
