"""AdamW with gradient clipping, and a learning-rate schedule from config.optim.

`optim.schedule` picks the shape after a linear warmup:
- 'cosine' (default): cosine decay from the peak to `final_lr` at the last step;
- 'wsd' (warmup-stable-decay, Hägele et al. 2024): the peak held until the last
  `cooldown_fraction` of the steps, then a cooldown to `final_lr`, 'linear' or
  '1-sqrt' (`cooldown_shape`). Up to its cooldown a WSD run's rates do not depend on
  its length, which is what lets one trunk serve runs of several lengths: a branch
  forks from it where its own cooldown starts (`cooldown_start`; plan.py, train.py).

The schedule is optax's, evaluated on the host (`learning_rates`, one value per
step) and handed to each step, which writes it into the optimiser state of
`optax.inject_hyperparams` (`with_learning_rate`) before the update. The
compiled step therefore holds no step count: units of one shape at different
token multipliers run the same program, which JAX's persistent cache then
compiles once (compile_cache.py). The state keeps the rate each update used
(`learning_rate(opt_state)`), which the train loop logs.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax


SCHEDULES = ("cosine", "wsd")
COOLDOWN_SHAPES = ("linear", "1-sqrt")


def cooldown_start(total_steps: int, cooldown_fraction: float) -> int:
  """The first step of a WSD run's cooldown: its last round(fraction x steps) steps
  (at least one) decay. A branch of that length forks from its trunk here."""
  total_steps = max(int(total_steps), 1)
  return total_steps - min(total_steps, max(1, round(cooldown_fraction * total_steps)))


def schedule(peak_lr: float, final_lr: float, warmup_steps: int,
             total_steps: int, kind: str = "cosine", cooldown_fraction: float = 0.2,
             cooldown_shape: str = "linear") -> optax.Schedule:
  """Linear 0 -> peak over `warmup_steps`, then `kind`'s decay to final by `total_steps`.

  At least one warmup step (step 0 trains at LR 0) and one decay step, so a run
  with no warmup, or with warmup >= total steps, still has a valid schedule; the
  cosine values are those of the hand-joined schedule this replaced
  (tests/optim_schedule_test.py). A WSD cooldown that would start inside the warmup
  starts where the warmup ends.
  """
  if not 0 <= final_lr <= peak_lr:
    raise ValueError(f"optim.final_lr ({final_lr}) must lie in [0, optim.peak_lr "
                     f"({peak_lr})]")
  if kind not in SCHEDULES:
    raise ValueError(f"optim.schedule is {kind!r}; choose one of {list(SCHEDULES)}")
  warmup_steps = max(int(warmup_steps), 1)
  if kind == "cosine":
    decay_steps = max(int(total_steps) - warmup_steps, 1)
    # optax's `decay_steps` counts the warmup too.
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=peak_lr, warmup_steps=warmup_steps,
        decay_steps=warmup_steps + decay_steps, end_value=final_lr)
  if not 0 < cooldown_fraction <= 1:
    raise ValueError(f"optim.cooldown_fraction must be in (0, 1], got "
                     f"{cooldown_fraction!r}")
  if cooldown_shape not in COOLDOWN_SHAPES:
    raise ValueError(f"optim.cooldown_shape is {cooldown_shape!r}; choose one of "
                     f"{list(COOLDOWN_SHAPES)}")
  start = max(cooldown_start(total_steps, cooldown_fraction), warmup_steps)
  length = max(int(total_steps) - start, 1)

  def cooldown(count):
    done = jnp.clip(count / length, 0.0, 1.0)  # optax counts from the boundary
    left = 1.0 - done if cooldown_shape == "linear" else 1.0 - jnp.sqrt(done)
    return final_lr + (peak_lr - final_lr) * left

  warmup = optax.linear_schedule(0.0, peak_lr, warmup_steps)
  stable = optax.constant_schedule(peak_lr)
  return optax.join_schedules([warmup, stable, cooldown], [warmup_steps, start])


def schedule_of(optim_config, warmup_steps: int, total_steps: int) -> optax.Schedule:
  """`schedule` with config.optim's fields (the WSD ones default when absent)."""
  return schedule(optim_config.peak_lr, optim_config.final_lr, warmup_steps, total_steps,
                  kind=optim_config.get("schedule", "cosine"),
                  cooldown_fraction=optim_config.get("cooldown_fraction", 0.2),
                  cooldown_shape=optim_config.get("cooldown_shape", "linear"))


def _decay_mask(params):
  # Norm gains are not decayed; their names end in "norm" (see model.py).
  return jax.tree_util.tree_map_with_path(
      lambda path, _: not str(getattr(path[-1], "key", "")).endswith("norm"),
      params)


def learning_rates(optim_config, warmup_steps: int, total_steps: int) -> np.ndarray:
  """float32 [total_steps]: the LR of update k (0-based) at index k."""
  lr_at = schedule_of(optim_config, warmup_steps, total_steps)
  return np.asarray(lr_at(jnp.arange(max(int(total_steps), 1))), np.float32)


def make_optimizer(optim_config) -> optax.GradientTransformation:
  """optax AdamW from `config.optim`; its LR is set per step by with_learning_rate
  (until then, the peak LR)."""

  def clipped_adamw(learning_rate):
    parts = []
    if optim_config.grad_clip > 0:
      parts.append(optax.clip_by_global_norm(optim_config.grad_clip))
    parts.append(optax.adamw(learning_rate, b1=optim_config.beta1,
                             b2=optim_config.beta2, eps=optim_config.eps,
                             weight_decay=optim_config.weight_decay,
                             mask=_decay_mask))
    return optax.chain(*parts)

  return optax.inject_hyperparams(clipped_adamw)(
      learning_rate=float(optim_config.peak_lr))  # a number: kept in the state


def with_learning_rate(opt_state, lr):
  """`opt_state` whose next update uses learning rate `lr` (a scalar)."""
  hyperparams = dict(opt_state.hyperparams)
  old = hyperparams["learning_rate"]
  hyperparams["learning_rate"] = jnp.asarray(lr, dtype=jnp.result_type(old))
  return opt_state._replace(hyperparams=hyperparams)


def learning_rate(opt_state) -> jax.Array:
  """The learning rate of the update that produced `opt_state` (a scalar array;
  in a fresh state, the peak LR)."""
  return opt_state.hyperparams["learning_rate"]
