"""The logged train/lr is the LR each step's update used, read from the optimiser state."""
import json

import numpy as np
import pytest

from conftest import tiny_train_config
from scaling_jax import plan as plan_lib
from scaling_jax import optim
from scaling_jax import train
from scaling_jax import train_metrics


def _config(data_cache):
  # 26 steps of 256 tokens; a warmup of 6 steps, where the LR rises every step,
  # so an LR one step ahead or behind is caught.
  config = tiny_train_config(data_cache, eval_every_tokens=4096,
                             checkpoint_every_tokens=8192, log_every_steps=1)
  config.optim.update(dict(warmup_steps=6, peak_lr=1e-2, final_lr=1e-3))
  config.evals.val.update(dict(max_tokens=512, batch_size=8))
  return config


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("unit")
  config = _config(str(tmp_path_factory.mktemp("data_cache")))
  train.train_run(config, str(workdir))
  with open(workdir / train_metrics.FILENAME, encoding="utf-8") as f:
    rows = [json.loads(line) for line in f]
  return config, {r["step"]: r["lr"] for r in rows}


@pytest.mark.slow
def test_lr_logged_at_step_s_is_the_schedule_at_s_minus_one(logged):
  config, lr_by_step = logged
  plan = plan_lib.plan(config)
  assert sorted(lr_by_step) == list(range(1, plan.steps + 1))
  lr_at = optim.schedule(config.optim.peak_lr, config.optim.final_lr,
                         plan.warmup_steps, plan.steps)
  # Step s (1-based: s updates done) is optax's update number s - 1: the first
  # update trains at LR 0, the warmup's start.
  want = [float(np.float32(lr_at(s - 1))) for s in sorted(lr_by_step)]
  got = [lr_by_step[s] for s in sorted(lr_by_step)]
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)
  assert got[0] == 0.0 and got[plan.warmup_steps] == pytest.approx(1e-2)


def test_optimizer_state_holds_the_lr_of_the_update_that_made_it():
  config = _config("")
  tx = optim.make_optimizer(config.optim)
  lrs = optim.learning_rates(config.optim, warmup_steps=4, total_steps=10)
  params = {"w": np.ones((2, 2), np.float32)}
  state = tx.init(params)
  lr_at = optim.schedule(1e-2, 1e-3, 4, 10)
  for count in range(10):
    state = optim.with_learning_rate(state, lrs[count])
    _, state = tx.update({"w": np.ones((2, 2), np.float32)}, state, params)
    assert float(optim.learning_rate(state)) == float(np.float32(lr_at(count)))

