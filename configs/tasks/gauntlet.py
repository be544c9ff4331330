"""The paper's 46-task LLM-Foundry suite, read from its eval YAML and task files.

  config.evals.icl = gauntlet.get_config(
      "/path/to/llm-foundry/scripts/eval/yamls/heavy.yaml,"
      "data_root=/path/to/llm-foundry/scripts/eval")

The YAML is LLM-Foundry's (`icl_tasks` with label, dataset_uri, num_fewshot,
icl_task_type, delimiters); relative dataset_uris resolve against data_root
(default: the YAML's directory). Random baselines come from `metadata=PATH`
(default: eval_metadata.csv beside the YAML, if present). The gauntlet's contexts
reach 2,048 tokens, so rows are that long and every example is scored.
"""
import pathlib

import ml_collections

from scaling_jax import config_lib
from scaling_jax.evals.icl import evaluator

_KNOBS = dict(metadata="", data_root="", seq_len=2048,
              batch=evaluator.DEFAULTS["batch_size"])


def get_config(arg: str) -> ml_collections.ConfigDict:
  if not arg:
    raise ValueError("give the eval YAML: gauntlet.py:/path/heavy.yaml[,data_root=DIR]")
  path, _, rest = arg.partition(",")
  knobs = config_lib.parse_arg(rest, _KNOBS, "configs/tasks/gauntlet.py")
  beside = pathlib.Path(path).with_name("eval_metadata.csv")
  config = ml_collections.ConfigDict()
  config.kind = "icl"
  config.suite = path
  config.metadata_csv = ml_collections.config_dict.placeholder(str)
  config.metadata_csv = knobs["metadata"] or (str(beside) if beside.is_file() else None)
  config.data_root = ml_collections.config_dict.placeholder(str)
  config.data_root = knobs["data_root"] or None
  config.examples_per_task = ml_collections.config_dict.placeholder(int)  # None: all
  config.seq_len = knobs["seq_len"]
  config.batch_size = knobs["batch"]
  config.seed = 0
  config.tasks = ml_collections.config_dict.placeholder(list)
  return config
