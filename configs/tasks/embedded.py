"""The embedded ICL suite: tasks generated from the held-out split of the corpus.

As an entry of a training config's evals (the `kind` selects the factory):

  config.evals.icl = embedded.get_config("examples=50")

Knobs (`key=value` pairs after the colon): examples (per task), seq_len, batch,
seed. Cost per evaluation: 25 model rows of seq_len tokens per example index
(each option of a multiple-choice or schema task is a row), so 1,250 rows of 128
tokens (160k tokens forward, like training on ~53k tokens) at the defaults. To
stay under 10% of training time, a run of D training tokens affords about
D / 530k evaluations at 50 examples per task.
"""
import ml_collections

from scaling_jax import config_lib
from scaling_jax.evals.icl import evaluator

_KNOBS = dict(examples=evaluator.DEFAULTS["examples_per_task"],
              seq_len=evaluator.DEFAULTS["seq_len"],
              batch=evaluator.DEFAULTS["batch_size"], seed=evaluator.DEFAULTS["seed"])


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  knobs = config_lib.parse_arg(arg, _KNOBS, "configs/tasks/embedded.py")
  config = ml_collections.ConfigDict()
  config.kind = "icl"
  config.suite = "embedded"
  config.examples_per_task = knobs["examples"]
  config.seq_len = knobs["seq_len"]
  config.batch_size = knobs["batch"]
  config.seed = knobs["seed"]
  config.max_context_chars = evaluator.DEFAULTS["max_context_chars"]
  config.tasks = ml_collections.config_dict.placeholder(list)  # None: all tasks
  return config
