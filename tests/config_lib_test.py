"""config_lib: the default tree, the variant parser, and the run's plan."""
import pytest

from conftest import load_config_module
from scaling_jax import config_lib
from scaling_jax import plan as plan_lib
from scaling_jax import model as model_lib
from scaling_jax.evals.icl import evaluator as icl_evaluator


def _plan(**fields):
  config = config_lib.default_config()
  config.model = dict(config.model, **{k[6:]: v for k, v in fields.items()
                                       if k.startswith("model.")})
  for key, value in fields.items():
    section, _, leaf = key.partition(".")
    if section != "model":
      config[section][leaf] = value
  return plan_lib.plan(config)


def test_default_tree_has_every_section_and_locks():
  config = config_lib.default_config()
  for section in ("model", "data", "train", "optim", "mesh", "distributed", "evals",
                  "launch", "study", "runs", "sweep", "datasets"):
    assert section in config, section
  config.lock()
  with pytest.raises(AttributeError, match="Did you mean"):
    config.train.global_bach = 32


def test_icl_batch_size_has_one_default_everywhere():
  one = icl_evaluator.DEFAULTS["batch_size"]
  assert config_lib.default_config().evals.icl.batch_size == one
  assert load_config_module("tasks/embedded").get_config("").batch_size == one
  assert config_lib.default_config().evals.val.batch_size == one  # shared shape


def test_parse_arg_types_flags_and_errors():
  knobs = dict(smoke=False, seeds=1, train="rpj", lr=0.5)
  assert config_lib.parse_arg("", knobs, "x.py") == knobs
  got = config_lib.parse_arg("smoke,seeds=3,train=c4,lr=1e-3", knobs, "x.py")
  assert got == dict(smoke=True, seeds=3, train="c4", lr=1e-3)
  assert config_lib.parse_arg("smoke=false", knobs, "x.py")["smoke"] is False
  with pytest.raises(ValueError, match="x.py: unknown variant 'sedes'.*seeds"):
    config_lib.parse_arg("sedes=2", knobs, "x.py")
  with pytest.raises(ValueError, match="seeds='two' must be an integer"):
    config_lib.parse_arg("seeds=two", knobs, "x.py")
  with pytest.raises(ValueError, match="'smoke' is a flag"):
    config_lib.parse_arg("smoke=maybe", knobs, "x.py")


def test_steps_tokens_and_flops_follow_n_and_m():
  plan = _plan(**{"train.tokens_per_param": 20.0, "train.global_batch": 8})
  n = model_lib.num_params(model_lib.preset("tiny-3"))
  tokens_per_step = 8 * model_lib.preset("tiny-3").seq_len
  assert plan.num_params == n and plan.tokens_per_step == tokens_per_step
  assert plan.steps == round(20 * n / tokens_per_step)
  assert plan.tokens == plan.steps * tokens_per_step
  assert plan.flops == pytest.approx(6 * n * plan.tokens)


def test_warmup_from_steps_tokens_or_fraction():
  base = {"train.global_batch": 8}
  steps = _plan(**base).steps
  assert _plan(**base, **{"optim.warmup_fraction": 0.1}).warmup_steps == -(-steps // 10)
  assert _plan(**base, **{"optim.warmup_steps": 7}).warmup_steps == 7
  tokens_per_step = _plan(**base).tokens_per_step
  assert _plan(**base, **{"optim.warmup_tokens": 3 * tokens_per_step}).warmup_steps == 3
  with pytest.raises(ValueError, match="both warmup_steps and warmup_tokens"):
    _plan(**base, **{"optim.warmup_steps": 7, "optim.warmup_tokens": 100})
  with pytest.raises(ValueError, match="warmup_fraction must be in"):
    _plan(**base, **{"optim.warmup_fraction": 1.0})


def test_eval_steps_end_at_the_last_and_skip_near_duplicates():
  plan = _plan(**{"train.global_batch": 8})
  steps = plan_lib.eval_steps(plan)
  assert steps[-1] == plan.steps and steps == sorted(set(steps))
  assert all(plan.steps - s >= plan.eval_every_steps / 2 for s in steps[:-1])


def test_bad_plan_fields_are_named():
  with pytest.raises(ValueError, match="config.train.global_batch"):
    _plan(**{"train.global_batch": 0})
  with pytest.raises(ValueError, match="config.train.tokens_per_param"):
    _plan(**{"train.tokens_per_param": -1.0})
