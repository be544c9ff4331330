"""A sweep's units of one shape reuse compiled steps from JAX's persistent cache,
and train exactly as they would without it."""
import json
import os

import jax
import pytest

from conftest import tiny_train_config
from scaling_jax import compile_cache
from scaling_jax import train
from scaling_jax import train_metrics
from scaling_jax.launch import units as units_lib

# Trains (or fits) a shared module fixture: every test here is of the full tier.
pytestmark = pytest.mark.slow

CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"
# The programs of train.Program, by the name JAX gives their cache entries.
_UNIT_PROGRAMS = ("jit_train_step-", "jit__init_state-", "jit__apply-")


def _config(data_cache, cache_dir, **train_overrides):
  # 9 steps of 256 tokens, one evaluation (the last step).
  config = tiny_train_config(data_cache, **dict(dict(
      tokens_per_param=0.05, eval_every_tokens=1 << 20, checkpoint_every_tokens=1 << 20,
      log_every_steps=1, compilation_cache_dir=cache_dir), **train_overrides))
  config.evals.val.update(dict(max_tokens=256, batch_size=8))
  return config


def _cache_entries(cache_dir) -> set[str]:
  return set(os.listdir(cache_dir)) if os.path.isdir(cache_dir) else set()


def _losses(workdir) -> list[float]:
  with open(os.path.join(workdir, train_metrics.FILENAME), encoding="utf-8") as f:
    return [json.loads(line)["loss"] for line in f]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
  """Two equal units, cold then warm cache: the entries and cache hits of each."""
  data_cache = str(tmp_path_factory.mktemp("data_cache"))
  cache_dir = str(tmp_path_factory.mktemp("sweep") / ".jax_cache")
  hits = []
  jax.monitoring.register_event_listener(
      lambda event, **kw: hits.append(event) if event == CACHE_HIT_EVENT else None)
  runs = {}
  # cold and warm: one unit twice; other_M: the same shape at twice the tokens.
  for name, multiplier in (("cold", 0.05), ("warm", 0.05), ("other_M", 0.1)):
    workdir = str(tmp_path_factory.mktemp(name))
    del hits[:]
    train.train_run(_config(data_cache, cache_dir, tokens_per_param=multiplier),
                    workdir)
    runs[name] = dict(losses=_losses(workdir), hits=len(hits),
                      entries=_cache_entries(cache_dir))
  return runs


def test_second_unit_of_a_shape_reads_its_programs_from_the_cache(two_runs):
  cold, warm = two_runs["cold"], two_runs["warm"]
  assert cold["entries"] and cold["hits"] == 0
  assert warm["hits"] >= 1
  assert warm["entries"] == cold["entries"]  # every program was found: none added


def test_a_unit_of_the_same_shape_at_another_m_compiles_nothing(two_runs):
  # The LR schedule (warmup and total steps) is an input of the step, not a
  # constant: another M runs the very same programs.
  # (Evaluating the schedule's table on the host compiles a few elementwise
  # programs of its length; those are not the unit's.)
  other = two_runs["other_M"]
  assert len(other["losses"]) > len(two_runs["cold"]["losses"])  # another schedule
  unit_programs = lambda entries: {e for e in entries if e.startswith(_UNIT_PROGRAMS)}
  cold = unit_programs(two_runs["cold"]["entries"])
  assert all(any(e.startswith(p) for e in cold) for p in _UNIT_PROGRAMS), cold
  assert other["hits"] >= len(_UNIT_PROGRAMS)
  assert unit_programs(other["entries"]) == cold


def test_results_from_cached_programs_equal_a_fresh_compiles(two_runs):
  # The cold run compiled every program; the warm one ran them from disk.
  assert len(two_runs["cold"]["losses"]) == 9
  assert two_runs["warm"]["losses"] == two_runs["cold"]["losses"]


def test_compilation_cache_false_turns_the_cache_off(tmp_path):
  on = _config("", str(tmp_path / "cache")).train
  assert compile_cache.configure(on) == str(tmp_path / "cache")
  assert jax.config.jax_compilation_cache_dir == str(tmp_path / "cache")
  off = _config("", str(tmp_path / "cache"), compilation_cache=False).train
  assert compile_cache.configure(off) is None
  assert jax.config.jax_compilation_cache_dir is None


def test_a_sweeps_units_share_one_cache_under_its_workdir(tmp_path):
  config = _config("", "")
  config.sweep = [dict(tokens_per_param=m) for m in (0.05, 0.1)]
  units = units_lib.build_units(config, str(tmp_path))
  assert {u.config.train.compilation_cache_dir for u in units} == {
      str(tmp_path / ".jax_cache")}
