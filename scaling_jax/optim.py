"""AdamW with gradient clipping, and linear warmup then cosine decay to a final LR.

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


def schedule(peak_lr: float, final_lr: float, warmup_steps: int,
             total_steps: int) -> optax.Schedule:
  """Linear 0 -> peak over `warmup_steps`, cosine peak -> final by `total_steps`.

  At least one warmup step (step 0 trains at LR 0) and one decay step, so a run
  with no warmup, or with warmup >= total steps, still has a valid schedule; the
  values are those of the hand-joined schedule this replaced
  (tests/optim_schedule_test.py).
  """
  if not 0 <= final_lr <= peak_lr:
    raise ValueError(f"optim.final_lr ({final_lr}) must lie in [0, optim.peak_lr "
                     f"({peak_lr})]")
  warmup_steps = max(int(warmup_steps), 1)
  decay_steps = max(int(total_steps) - warmup_steps, 1)
  # optax's `decay_steps` counts the warmup too.
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=peak_lr, warmup_steps=warmup_steps,
      decay_steps=warmup_steps + decay_steps, end_value=final_lr)


def _decay_mask(params):
  # Norm gains are not decayed; their names end in "norm" (see model.py).
  return jax.tree_util.tree_map_with_path(
      lambda path, _: not str(getattr(path[-1], "key", "")).endswith("norm"),
      params)


def learning_rates(optim_config, warmup_steps: int, total_steps: int) -> np.ndarray:
  """float32 [total_steps]: the LR of update k (0-based) at index k."""
  lr_at = schedule(optim_config.peak_lr, optim_config.final_lr, warmup_steps,
                   total_steps)
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
