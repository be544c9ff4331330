"""The WSD schedule and the ladder: a branch forked from its trunk ends where a
separate WSD run of its length ends, and is resumable like any unit."""
import json
import math

import numpy as np
import pytest

from conftest import tiny_train_config
from scaling_jax import ladder
from scaling_jax import optim
from scaling_jax import plan as plan_lib
from scaling_jax.launch import units as units_lib
from scaling_jax.runs import table as runs_table

LADDER = "0.05,0.1,0.15"  # tiny-1 at these M: 9, 17 and 26 steps of 256 tokens


@pytest.mark.parametrize("shape", ["linear", "1-sqrt"])
def test_wsd_warms_up_holds_the_peak_and_cools_down_to_the_final_lr(shape):
  # Planted bugs: the cooldown starting a step early or late, the wrong shape, or
  # the stable phase not at the peak.
  peak, final, warmup, total, fraction = 1e-2, 1e-4, 4, 50, 0.2
  lr_at = optim.schedule(peak, final, warmup, total, kind="wsd",
                         cooldown_fraction=fraction, cooldown_shape=shape)
  start = optim.cooldown_start(total, fraction)
  assert start == 40
  for k in range(total + 1):
    if k <= warmup:
      expected = peak * k / warmup
    elif k <= start:
      expected = peak
    else:
      done = (k - start) / (total - start)
      left = 1 - done if shape == "linear" else 1 - math.sqrt(done)
      expected = final + (peak - final) * left
    assert float(lr_at(k)) == pytest.approx(expected, rel=1e-5, abs=1e-9), k


def test_a_shorter_wsd_run_has_its_trunks_rates_until_its_cooldown():
  trunk = np.asarray(optim.schedule(1e-2, 0.0, 3, 100, kind="wsd")(np.arange(100)))
  branch = np.asarray(optim.schedule(1e-2, 0.0, 3, 40, kind="wsd")(np.arange(40)))
  fork = optim.cooldown_start(40, 0.2)
  np.testing.assert_array_equal(branch[:fork + 1], trunk[:fork + 1])
  assert branch[fork + 1] < trunk[fork + 1]


@pytest.mark.parametrize("field,value,match", [
    ("optim.schedule", "step", "choose one of"),
    ("optim.cooldown_fraction", 0.0, "cooldown_fraction"),
    ("optim.cooldown_shape", "cubic", "cooldown_shape"),
])
def test_bad_schedule_fields_are_refused_by_name(field, value, match, data_cache):
  config = tiny_train_config(data_cache)
  config.optim.schedule = "wsd"
  section, key = field.split(".")
  config[section][key] = value
  with pytest.raises(ValueError, match=match):
    units_lib.build_units(config, "/tmp/unused")


def _ladder_config(data_cache, m, **optim_fields):
  config = tiny_train_config(data_cache, tokens_per_param=m, branch_multipliers=LADDER)
  config.optim.update(dict(dict(schedule="wsd", warmup_steps=2), **optim_fields))
  return config


def test_the_plan_forks_each_branch_where_its_cooldown_starts(data_cache):
  trunk = plan_lib.plan(_ladder_config(data_cache, 0.15))
  branches = [plan_lib.plan(_ladder_config(data_cache, m)) for m in (0.05, 0.1)]
  assert trunk.branch_from_step == 0
  forks = [optim.cooldown_start(b.steps, 0.2) for b in branches]
  assert [b.branch_from_step for b in branches] == forks
  assert trunk.branch_points == tuple(forks)
  assert all(b.branch_points == () for b in branches)
  # A branch pays for its cooldown only.
  assert branches[1].cost_flops == pytest.approx(
      branches[1].flops * (branches[1].steps - forks[1]) / branches[1].steps)
  assert trunk.cost_flops == trunk.flops
  # With a warmup fraction, every run of the ladder warms up like its trunk, for
  # that fraction of the shortest rung (which must fork after it).
  shared = [plan_lib.plan(_ladder_config(data_cache, m, warmup_steps=0,
                                         warmup_fraction=0.3)).warmup_steps
            for m in (0.05, 0.1, 0.15)]
  assert shared == [math.ceil(0.3 * branches[0].steps)] * 3 and shared[0] > 1


@pytest.mark.parametrize("ladder_text,schedule,m,match", [
    ("10,20", "cosine", 20.0, "optim.schedule=wsd"),
    ("10,20", "wsd", 40.0, "not one of config.train.branch_multipliers"),
    ("10,ten", "wsd", 10.0, "separated by commas"),
    ("10,10", "wsd", 10.0, "distinct"),
])
def test_a_bad_ladder_is_refused_by_field(ladder_text, schedule, m, match, data_cache):
  config = tiny_train_config(data_cache, tokens_per_param=m, branch_multipliers=ladder_text)
  config.optim.schedule = schedule
  with pytest.raises(ValueError, match=match):
    plan_lib.plan(config)


def _sweep(data_cache, multipliers):
  config = _ladder_config(data_cache, 0.15)
  config.sweep = [dict(tokens_per_param=m) for m in multipliers]
  return config


def test_the_launcher_puts_trunks_first_and_points_branches_at_them(data_cache, tmp_path):
  units = units_lib.build_units(_sweep(data_cache, (0.05, 0.15, 0.1)), tmp_path)
  assert [u.M for u in units] == [0.15, 0.05, 0.1]
  trunk = units[0]
  for unit in units:
    assert unit.config.train.branch_dir == str(tmp_path / "runs" / trunk.name /
                                               ladder.BRANCH_POINTS_DIRNAME)
  # A branch's fork was trained by its trunk: the ETA counts only its cooldown.
  from scaling_jax.launch import progress  # pylint: disable=import-outside-toplevel
  branch = units[1]
  assert progress.partial_flops(branch) == branch.plan.flops_at(
      branch.plan.tokens_at(branch.plan.branch_from_step)) > 0
  assert progress.partial_flops(trunk) == 0
  with pytest.raises(ValueError, match="M=0.15.*does not train"):
    units_lib.build_units(_sweep(data_cache, (0.05, 0.1)), tmp_path)


def _final(workdir):
  rows = runs_table.read_rows(workdir / runs_table.RECORDS_FILENAME)
  return rows, [r for r in rows if r["final"]][0]


@pytest.mark.slow  # trains four tiny runs
def test_a_branch_ends_where_a_separate_wsd_run_ends_and_resumes_without_duplicates(
    data_cache, tmp_path):
  # Planted bugs this catches: the branch restoring the trunk's state of another
  # step, reading batches from step 0 again, or taking its trunk's rates (no
  # cooldown); a resumed branch forking afresh (rows twice, another loss).
  from scaling_jax import train  # pylint: disable=import-outside-toplevel
  points = tmp_path / "trunk" / ladder.BRANCH_POINTS_DIRNAME
  trunk_config = _ladder_config(data_cache, 0.15)
  train.train_run(trunk_config, str(tmp_path / "trunk"))
  branch_config = _ladder_config(data_cache, 0.1)
  branch_config.train.branch_dir = str(points)
  fork = plan_lib.plan(branch_config).branch_from_step
  branch_config.train.stop_after_steps = fork + 1  # preempted one step in
  train.train_run(branch_config, str(tmp_path / "branch"))
  branch_config.train.stop_after_steps = 0
  train.train_run(branch_config, str(tmp_path / "branch"))
  separate = tiny_train_config(data_cache, tokens_per_param=0.1)
  separate.optim.update(schedule="wsd", warmup_steps=2)
  train.train_run(separate, str(tmp_path / "separate"))

  rows, final = _final(tmp_path / "branch")
  _, alone = _final(tmp_path / "separate")
  assert final["step"] == alone["step"]
  assert final["loss/validation"] == pytest.approx(alone["loss/validation"], rel=1e-5)
  steps = [r["step"] for r in rows]
  assert len(steps) == len(set(steps)) and min(steps) > fork
  assert final["branch_of"] == "trunk"
  assert final["cost_flops"] == pytest.approx(
      final["flops"] * (final["step"] - fork) / final["step"])
  _, trunk_final = _final(tmp_path / "trunk")
  assert trunk_final["branch_of"] == "" and trunk_final["cost_flops"] == trunk_final["flops"]
  # It cooled down: its last update's rate is below the trunk's peak.
  logged = (tmp_path / "branch" / "train_metrics.jsonl").read_text().splitlines()
  lrs = {r["step"]: r["lr"] for r in map(json.loads, logged)}
  assert lrs[final["step"]] < 0.5 * trunk_config.optim.peak_lr


def test_a_branch_whose_trunk_ended_without_its_state_says_so(tmp_path):
  trunk = tmp_path / "trunk"
  runs_table.append_rows(trunk / runs_table.RECORDS_FILENAME, [dict(
      run="trunk", N=1e6, tokens=1e7, M=10.0, flops=6e13, step=10, final=True)])
  with pytest.raises(ladder.LadderError, match="finished .* without saving"):
    ladder.trunk_state(str(trunk / ladder.BRANCH_POINTS_DIRNAME), 7, {},
                       wait_seconds=60, poll_seconds=0.01)
  (trunk / runs_table.RECORDS_FILENAME).unlink()
  with pytest.raises(ladder.LadderError, match="branch_wait_minutes"):
    ladder.trunk_state(str(trunk / ladder.BRANCH_POINTS_DIRNAME), 7, {},
                       wait_seconds=0.05, poll_seconds=0.01)


def test_the_paper_ladder_dry_run_lists_trunks_branches_and_the_saving(tmp_path):
  from conftest import load_config  # pylint: disable=import-outside-toplevel
  units = units_lib.build_units(load_config("grid", "paper,ladder"), tmp_path)
  assert len(units) == 104
  trunks = [u for u in units if u.plan.branch_points]
  branches = [u for u in units if u.plan.branch_from_step]
  lone = sorted(u.name for u in units if u not in trunks and u not in branches)
  # Per dataset: 4 small sizes + the 1.4B (M = 20 and one over-trained M) each
  # have a trunk. Alone: the 6.9B (one M), and 79M and 411M at M = 5, which end
  # (376 and 1963 steps) before their released warmups (400 and 2000) do.
  assert len(trunks) == 15 and len(branches) == 80
  assert lone == sorted(f"{d}_{m}_s0" for d in ("c4", "rpj", "rw") for m in
                        ("openlm-79m_M5", "openlm-411m_M5", "openlm-7b_M20"))
  for unit in branches:  # a branch pays for its 20% cooldown
    assert unit.plan.cost_flops == pytest.approx(0.2 * unit.flops, rel=0.01)
  for unit in trunks:
    assert unit.plan.branch_points[-1] < unit.plan.steps
  table = units_lib.format_table(units)
  alone = sum(u.flops for u in trunks + branches)
  cost = sum(u.flops for u in trunks) + sum(0.2 * u.flops for u in branches)
  assert (f"WSD ladders: 15 trunk(s) and 80 cooldown branch(es) train for "
          f"{cost:.3e} FLOPs".replace("e+", "e")) in table
  assert f"({100 * (1 - cost / alone):.0f}% saved" in table


def test_the_summary_says_what_the_ladder_saved():
  from scaling_jax.report import summary  # pylint: disable=import-outside-toplevel
  rows = [dict(run="t", flops=100.0, cost_flops=100.0, branch_of=""),
          dict(run="b", flops=50.0, cost_flops=10.0, branch_of="t"),
          dict(run="alone", flops=30.0)]
  assert summary.ladder_lines(rows) == [
      "WSD ladder: 2 design points (1 cooldown branches) cost 110 FLOPs to train, "
      "against 150 as separate runs (27% saved).", ""]
  assert summary.ladder_lines(rows[2:]) == []


def test_the_ladder_main_job_keeps_the_targets_4x_beyond_every_fit_run(tmp_path):
  from conftest import load_config  # pylint: disable=import-outside-toplevel
  units = units_lib.build_units(load_config("grid", "ladder"), tmp_path)
  fit = [u for u in units if u.plan.branch_points or u.plan.branch_from_step]
  targets = [u for u in units if u not in fit]
  assert len(fit) == 19 and sum(bool(u.plan.branch_points) for u in fit) == 4
  assert {u.label for u in targets} == {"tiny-3@20", "tiny-2@80"}
  # (4x in 6 N D up to the rounding of M x N tokens to whole steps)
  assert min(t.flops for t in targets) >= 4 * max(u.flops for u in fit) * (1 - 1e-3)
  assert all(u.config.optim.schedule == "wsd" for u in units)
