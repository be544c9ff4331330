"""The sweep ETA: exact on a sweep whose costs are known, live from step logs."""
import io
import json
import os
import time

import pytest

from scaling_jax import train_metrics
from scaling_jax.launch import eta
from scaling_jax.launch import progress as progress_lib

from configs import grid
from scaling_jax import launch

FIXED_S = 20.0     # start-up, compilation and evaluations of every unit
FLOP_RATE = 1e10   # training FLOP/s of every unit


def _clock(name, n, flops, **kw):
  return eta.UnitClock(name=name, num_params=n, flops=flops, **kw)


def _tokens_per_s(n):
  return FLOP_RATE / (6.0 * n)


def _finished(name, n, flops, start):
  wall = FIXED_S + flops / FLOP_RATE
  return _clock(name, n, flops, started=start, ended=start + wall,
                tokens_done=flops / (6 * n), first_step_at=start + 5,
                rates=[_tokens_per_s(n)] * 3)


def test_nothing_measured_means_no_eta_rather_than_a_guess():
  clocks = [_clock("a", 1e4, 1e11), _clock("b", 1e5, 1e12)]
  assert eta.seconds_left(clocks, now=0.0, parallel=1) is None
  clocks[0].started = 0.0  # running, but no step logged yet
  assert eta.seconds_left(clocks, now=3.0, parallel=1) is None


def test_time_left_is_fixed_cost_plus_flops_over_the_measured_rate():
  done = _finished("a", 1e4, 1e11, start=0.0)
  running = _clock("b", 1e5, 4e12, started=30.0, first_step_at=35.0,
                   tokens_done=1e12 / 6e5, rates=[_tokens_per_s(1e5)] * 4)
  waiting = [_clock("c", 2e5, 2e12), _clock("d", 2e4, 3e12)]
  left = eta.seconds_left([done, running] + waiting, now=135.0, parallel=1)
  # b: 3e12 FLOPs left; c, d: a fixed cost each plus their FLOPs, one after another.
  assert left == pytest.approx(3e12 / FLOP_RATE + 2 * FIXED_S + 5e12 / FLOP_RATE)
  # Two slots: c (220 s) runs beside b (300 s); d (320 s) takes c's slot when it frees.
  two = eta.seconds_left([done, running] + waiting, now=135.0, parallel=2)
  assert two == pytest.approx(220.0 + 320.0)


def test_units_not_started_borrow_the_rate_of_the_nearest_size():
  small = _finished("small", 1e4, 1e11, start=0.0)
  big = _finished("big", 1e6, 1e13, start=0.0)
  big.rates = [r / 2 for r in big.rates]  # big models run at half the FLOP/s here
  big.ended = big.started + FIXED_S + 2 * 1e13 / FLOP_RATE
  near_big = _clock("near_big", 8e5, 4e12)
  left = eta.seconds_left([small, big, near_big], now=5000.0, parallel=1)
  assert left == pytest.approx(FIXED_S + 4e12 / (FLOP_RATE / 2))


def test_the_fixed_cost_before_any_unit_finishes_is_the_wait_for_the_first_step():
  running = _clock("a", 1e4, 1e11, started=0.0, first_step_at=12.0,
                   tokens_done=0.0, rates=[_tokens_per_s(1e4)])
  waiting = _clock("b", 1e4, 1e11)
  left = eta.seconds_left([running, waiting], now=12.0, parallel=1)
  assert left == pytest.approx(2 * 1e11 / FLOP_RATE + 12.0)


def _expected(name, n, flops, fixed=FIXED_S, rate=FLOP_RATE, **kw):
  return _clock(name, n, flops, expected_fixed=fixed, expected_rate=rate, **kw)


def test_with_the_probe_s_expectations_the_eta_exists_from_the_start():
  clocks = [_expected("a", 1e4, 1e11), _expected("b", 1e5, 2e12, rate=2 * FLOP_RATE)]
  # Nothing measured: the expectation itself, each unit at its own expected rate.
  assert eta.seconds_left(clocks, now=0.0, parallel=1) == pytest.approx(
      FIXED_S + 10.0 + FIXED_S + 100.0)


def test_units_that_ran_slower_than_expected_stretch_the_rest_alike():
  done = _expected("a", 1e4, 1e11, started=0.0, ended=60.0, tokens_done=1e11 / 6e4)
  waiting = _expected("b", 1e5, 2e12, rate=2 * FLOP_RATE)
  # a took 60 s against an expected 30 s: b's expected 120 s becomes 240 s.
  assert eta.slowdown([done, waiting]) == pytest.approx(2.0)
  assert eta.seconds_left([done, waiting], now=61.0, parallel=1) == pytest.approx(240.0)


def test_before_any_unit_ends_the_running_unit_s_rate_sets_the_slowdown():
  running = _expected("a", 1e4, 1e11, started=0.0, first_step_at=5.0,
                      tokens_done=0.0, rates=[_tokens_per_s(1e4) / 3])
  waiting = _expected("b", 1e5, 2e12)
  assert eta.slowdown([running, waiting]) == pytest.approx(3.0)
  # a: its 30 s expected, tripled, less the 5 s spent; b: (20 + 200) s tripled.
  assert eta.seconds_left([running, waiting], now=5.0, parallel=1) == pytest.approx(
      3 * 30.0 - 5.0 + 3 * 220.0)


def _write_step_log(unit, rows):
  with open(os.path.join(unit.workdir, train_metrics.FILENAME), "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)


def test_progress_moves_with_the_step_log_and_its_eta_follows_the_rate(tmp_path):
  units = launch.build_units(grid.get_config("smoke"), str(tmp_path))
  out = io.StringIO()
  progress = progress_lib.Progress(units, every_s=0, stream=out)
  unit = units[0]
  progress.started(unit)
  os.makedirs(unit.workdir, exist_ok=True)
  now = time.time()
  half = unit.flops / (6 * unit.N) / 2
  tok_s = 1000.0
  _write_step_log(unit, [dict(step=1, tokens=half / 2, wall_time=now, tokens_per_s=None),
                         dict(step=2, tokens=half, wall_time=now + 1, tokens_per_s=tok_s)])
  line = progress.summary()
  # Half of the first unit is done, between evaluations: progress shows it.
  share = unit.flops / 2 / sum(u.flops for u in units)
  assert f"({share:.0%})" in line
  left = progress.seconds_left()
  # This unit's other half at its own rate, then the rest at the borrowed rate with
  # the start-up cost seen so far (the wait for the first step) each.
  assert left > half / tok_s
  # A rate ten times higher gives an ETA about ten times lower.
  _write_step_log(unit, [dict(step=1, tokens=half / 2, wall_time=now, tokens_per_s=None),
                         dict(step=2, tokens=half, wall_time=now + 1,
                              tokens_per_s=10 * tok_s)])
  assert progress.seconds_left() < left / 5


RECORDED = os.path.join(os.path.dirname(__file__), "data", "recorded_sweep.json")


def _replay(units: dict, now: float) -> list[eta.UnitClock]:
  """The clocks a launcher held at `now`, rebuilt from a recorded sweep."""
  clocks = []
  for name, u in units.items():
    started = u["started"] if u["started"] <= now else None
    ended = u["ended"] if u["ended"] <= now else None
    rows = [r for r in u["rows"] if started is not None and started <= r[0] <= now]
    clocks.append(eta.UnitClock(
        name, u["N"], u["flops"], started=started, ended=ended,
        tokens_done=max([r[1] for r in rows], default=0.0),
        first_step_at=rows[0][0] if rows else None,
        rates=[r[2] for r in rows if r[2]],
        expected_fixed=u.get("expected_fixed"), expected_rate=u.get("expected_rate"),
        tokens_at_launch=u.get("tokens_at_launch", 0.0)))
  return clocks


def _recorded():
  with open(RECORDED) as f:
    return json.load(f)["units"]


def test_on_a_recorded_sweep_the_eta_after_each_finished_unit_is_within_2x():
  """The default study, recorded on this project's 2-core machine (see
  tests/data/record_sweep.py): after the first unit ends, and after every later
  one, the ETA is within a factor of 2 of the time the sweep really took."""
  units = _recorded()
  end = max(u["ended"] for u in units.values())
  ratios = {}
  for name, u in sorted(units.items(), key=lambda kv: kv[1]["ended"]):
    now = u["ended"] + 1.0
    if now >= end:
      continue
    left = eta.seconds_left(_replay(units, now), now, parallel=1)
    ratios[name] = left / (end - now)
  assert len(ratios) == len(units) - 1
  assert all(0.5 <= r <= 2.0 for r in ratios.values()), ratios
