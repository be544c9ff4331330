"""The start-up estimate: its interpolation, its skip rules, its sums, and its
numbers against a real short sweep."""
import json
import math
import os
import re
import time

import ml_collections
import pytest

from conftest import load_config_module
from scaling_jax import launch
from scaling_jax import plan as plan_lib
from scaling_jax.launch import eta
from scaling_jax.launch import options
from scaling_jax.launch import probe
from scaling_jax.launch import units as units_lib

grid = load_config_module("grid")


def _units(tmp_path, arg=""):
  return units_lib.build_units(grid.get_config(arg), str(tmp_path))


def test_loglog_is_exact_at_points_and_a_power_law_between():
  points = [(1.0, 2.0), (100.0, 20.0)]
  assert probe.loglog(1.0, points) == 2.0
  assert probe.loglog(100.0, points) == 20.0
  assert probe.loglog(10.0, points) == pytest.approx(2.0 * math.sqrt(10.0))
  # Beyond the ends, the nearest segment goes on; one point is a constant.
  assert probe.loglog(1e4, points) == pytest.approx(200.0)
  assert probe.loglog(5.0, [(1.0, 3.0)]) == 3.0
  # Between the middle pair of three, not the outer two.
  three = [(1.0, 1.0), (10.0, 10.0), (100.0, 10.0)]
  assert probe.loglog(50.0, three) == pytest.approx(10.0)


def test_shapes_dedupe_and_only_the_ends_of_many_are_probed(tmp_path):
  units = _units(tmp_path)  # 7 units of 5 presets at batch 16, seq_len 128
  shapes = probe.shapes_of(units)
  assert [s.unit.config.model.name for s in shapes] == [
      "tiny-0", "tiny-0.5", "tiny-1", "tiny-2", "tiny-3"]
  assert shapes == sorted(shapes, key=lambda s: s.flops_per_step)
  assert [s.unit.config.model.name for s in probe.shapes_to_probe(shapes)] == [
      "tiny-0", "tiny-3"]
  assert probe.shapes_to_probe(shapes[:4]) == shapes[:4]
  # Seeds repeat shapes; another batch size is another shape.
  assert len(probe.shapes_of(_units(tmp_path, "seeds=3"))) == 5
  config = grid.get_config("")
  config.sweep = [dict(model="tiny-0", tokens_per_param=20.0),
                  dict(model="tiny-0", tokens_per_param=20.0, **{"train.global_batch": 32})]
  assert len(probe.shapes_of(units_lib.build_units(config, str(tmp_path)))) == 2


def _launch(**overrides):
  cfg = options.default_launch_config()
  cfg.update(overrides)
  return cfg


def test_skip_rules(tmp_path, monkeypatch):
  assert os.environ.get(probe.SKIP_ENV) == "1", "tests/conftest.py must turn it off"
  monkeypatch.delenv(probe.SKIP_ENV)
  units = _units(tmp_path)
  cheap = [u for u in units if u.flops < probe.CHEAP_UNIT_FLOPS]
  dear = [u for u in units if u.flops >= probe.CHEAP_UNIT_FLOPS]
  assert probe.skip_reason(_launch(), units, gpus=[]) == ""
  assert probe.skip_reason(_launch(backend="inline"), units, gpus=[]) == ""
  assert "cheap sweep" in probe.skip_reason(_launch(), cheap[:2], gpus=[])
  monkeypatch.setattr(probe, "CHEAP_SWEEP_FLOPS", 0.0)
  assert probe.skip_reason(_launch(), cheap[:2], gpus=[]) == ""
  assert probe.skip_reason(_launch(), dear[:1], gpus=[]) == ""
  assert "cheap" in probe.skip_reason(_launch(), cheap[:1], gpus=[])
  assert probe.skip_reason(_launch(), [], gpus=[])
  assert "estimate=False" in probe.skip_reason(_launch(estimate=False), units, gpus=[])
  assert "slurm" in probe.skip_reason(_launch(backend="slurm"), units, gpus=[])
  assert "GPU" in probe.skip_reason(_launch(), units, gpus=["0"])
  monkeypatch.setenv(probe.SKIP_ENV, "1")
  assert probe.SKIP_ENV in probe.skip_reason(_launch(), units, gpus=[])
  # A launch config without the field (an older one) still probes.
  old = ml_collections.ConfigDict(dict(backend="local", max_parallel=1))
  monkeypatch.delenv(probe.SKIP_ENV)
  assert probe.skip_reason(old, units, gpus=[]) == ""


def test_skipped_probe_prints_nothing(tmp_path, capsys):
  assert probe.announce(_units(tmp_path), _launch(estimate=False), 1) is None
  assert capsys.readouterr().err == ""


TIMINGS = dict(startup_s=3.0, exit_s=1.0, setup_s=2.0, eval_s=0.5, eval_compile_s=4.0,
               checkpoint_s=0.25, shapes=[dict(compile_s=10.0, step_s=0.01),
                                          dict(compile_s=20.0, step_s=0.16)])


def test_unit_clocks_add_the_fixed_costs_and_interpolate_the_rates(tmp_path):
  units = _units(tmp_path)
  shapes = probe.shapes_of(units)
  clocks = {c.name: c for c in probe.unit_clocks(units, shapes, TIMINGS, "local")}
  small = clocks["tiny-0_M20_s0"]  # the smallest shape, probed: its timings as they are
  evals = len(plan_lib.eval_steps(units[0].plan))
  assert small.expected_fixed == pytest.approx(3 + 1 + 2 + 10 + 4 + evals * 0.5 + 0.25)
  assert small.expected_rate == pytest.approx(shapes[0].flops_per_step / 0.01)
  # The largest shape: its own step and compile times; evaluations scale with them.
  big_unit = next(u for u in units if u.name == "tiny-3_M20_s0")
  big_evals = len(plan_lib.eval_steps(big_unit.plan))
  big = clocks["tiny-3_M20_s0"]
  assert big.expected_fixed == pytest.approx(
      3 + 1 + 2 + 20 + 4 * 2 + big_evals * 0.5 * 16 + 0.25)
  assert big.expected_rate == pytest.approx(shapes[-1].flops_per_step / 0.16)
  # A shape between: its step time on the log-log line through the two probed.
  mid = shapes[2]
  x = math.log(mid.flops_per_step / shapes[0].flops_per_step) / math.log(
      shapes[-1].flops_per_step / shapes[0].flops_per_step)
  assert clocks[mid.unit.name].expected_rate == pytest.approx(
      mid.flops_per_step / (0.01 * 16 ** x))
  # Inline units share the launcher's process: no start-up or exit per unit.
  inline = {c.name: c for c in probe.unit_clocks(units, shapes, TIMINGS, "inline")}
  assert inline["tiny-0_M20_s0"].expected_fixed == pytest.approx(small.expected_fixed - 4)


def test_expected_seconds_lays_units_out_on_the_slots():
  def clock(name, fixed, seconds_of_training):
    return eta.UnitClock(name, num_params=1e4, flops=6e4 * 1e3, expected_fixed=fixed,
                         expected_rate=6e4 * 1e3 / seconds_of_training)
  clocks = [clock("a", 10, 50), clock("b", 10, 20), clock("c", 10, 100)]
  assert eta.expected_seconds(clocks, parallel=1) == pytest.approx(60 + 30 + 110)
  # Two slots: c starts when b (30 s) frees its slot.
  assert eta.expected_seconds(clocks, parallel=2) == pytest.approx(30 + 110)
  clocks[2].tokens_done = clocks[2].tokens / 2  # resumed halfway: half its training
  assert eta.expected_seconds(clocks, parallel=1) == pytest.approx(60 + 30 + 60)
  clocks[2].ended = 1.0
  assert eta.expected_seconds(clocks, parallel=1) == pytest.approx(60 + 30)


@pytest.mark.slow
def test_estimate_matches_a_real_sweep(tmp_path, monkeypatch, capsys):
  """Two units of one shape on the local pool, as the default study trains them:
  the printed estimate within 2x of the training's wall time."""
  monkeypatch.delenv(probe.SKIP_ENV)
  monkeypatch.setattr(probe, "CHEAP_SWEEP_FLOPS", 0.0)  # small, to keep the test short
  config = grid.get_config("smoke")
  config.sweep = [dict(model="tiny-0", tokens_per_param=10.0, seed=0),
                  dict(model="tiny-0", tokens_per_param=20.0, seed=0)]
  config.data.cache_dir = str(tmp_path / "cache")
  config.launch.max_parallel = 1
  timed = {}
  announce = probe.announce

  def timed_announce(*args, **kwargs):
    timed["estimate"] = announce(*args, **kwargs)
    timed["trained_from"] = time.time()
    return timed["estimate"]

  monkeypatch.setattr(probe, "announce", timed_announce)
  launch.run(config, str(tmp_path / "work"))
  wall = time.time() - timed["trained_from"]
  err = capsys.readouterr().err
  line = re.search(r"expected wall time ~(\d+)m(\d+)s for 2 units .* \(probe: 1 of 1 "
                   r"shapes, \d+s\)", err)
  assert line, err
  assert int(line[1]) * 60 + int(line[2]) == int(timed["estimate"])
  print(f"estimate {timed['estimate']:.1f}s, trained in {wall:.1f}s")
  assert 0.5 < timed["estimate"] / wall < 2.0, (timed["estimate"], wall)
  # The expectations are kept beside the runs, and the progress lines' ETA started
  # from them: no "ETA ?" while the first unit compiled.
  kept = json.loads((tmp_path / "work" / probe.PROBE_FILENAME).read_text())
  assert set(kept["units"]) == {"tiny-0_M10_s0", "tiny-0_M20_s0"}
  assert all(u["expected_rate"] > 0 for u in kept["units"].values())
  assert "ETA ?" not in err
  # The probe timed the step on the devices the units trained on (one per core of
  # the slice by default), not on one.
  trained_on = {int(re.search(r"\((\d+) cpu devices\)", (
      tmp_path / "work" / "runs" / unit / "log.txt").read_text())[1]) for unit in kept["units"]}
  assert trained_on == {kept["timings"]["shapes"][0]["devices"]}, trained_on
