"""Evaluation: validation losses, in-context-learning tasks, and the task-subset rule."""
import ml_collections


def default_evals_config() -> ml_collections.ConfigDict:
  """`config.evals`: the validation losses and the embedded in-context tasks.

  Each entry takes its defaults from its evaluator's module (one home each). The
  acc/<task> columns of `icl` feed the downstream-error law; both entries share one
  batch shape, so they reuse one compiled forward pass (a compile costs more than
  a tiny model's evaluation).
  """
  # pylint: disable=g-import-not-at-top
  from scaling_jax.evals import val_loss
  from scaling_jax.evals.icl import evaluator as icl_evaluator
  icl = icl_evaluator.DEFAULTS
  return ml_collections.ConfigDict(dict(
      val=dict(kind="val_loss", **val_loss.DEFAULTS),
      icl=dict(kind="icl", suite=icl["suite"], examples_per_task=icl["examples_per_task"],
               batch_size=icl["batch_size"])))
