"""benchmarks/hlo_profile.py: matmul FLOPs read from real optimized HLO (dots inside
fusions and loop bodies found), and a trace's time split per step and device
without counting a loop and its body twice."""
import gzip
import json
import sys

import jax
import jax.numpy as jnp
import pytest

from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import hlo_profile  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position


def _hlo(fn, *args) -> str:
  return jax.jit(fn).lower(*args).compile().as_text()


def _matmul_flops(hlo_text: str) -> float:
  return sum(i.matmul_flops for i in hlo_profile.instructions(hlo_text).values()
             if not i.is_container)


def test_the_flops_of_every_dot_are_found_once():
  x, w1, w2 = jnp.ones((64, 32)), jnp.ones((32, 16)), jnp.ones((16, 8))
  # An elementwise op between the products, so XLA may fuse around them.
  flops = _matmul_flops(_hlo(lambda x, a, b: jnp.tanh(x @ a) * 2.0 @ b, x, w1, w2))
  assert flops == 2 * 64 * 32 * 16 + 2 * 64 * 16 * 8


def test_batched_and_looped_dots_count_their_batch_and_contraction():
  q = jnp.ones((4, 3, 10, 8))  # [batch, heads, positions, head size]
  scores = _matmul_flops(_hlo(lambda q: jnp.einsum("bnth,bnsh->bnts", q, q), q))
  assert scores == 2 * 4 * 3 * 10 * 10 * 8

  def three_layers(x, w):
    return jax.lax.scan(lambda h, wl: (h @ wl, None), x, w)[0]
  hlo = _hlo(three_layers, jnp.ones((5, 6)), jnp.ones((3, 6, 6)))
  program = hlo_profile.instructions(hlo)
  # The body's dot is counted once in the program (a trace reports it 3 times);
  # the while loop that runs it is a container, not a second count.
  assert _matmul_flops(hlo) == 2 * 5 * 6 * 6
  assert any(i.opcode == "while" and i.is_container for i in program.values())


def _write_trace(directory, events):
  directory.mkdir(parents=True)
  with gzip.open(directory / "perfetto_trace.json.gz", "wt") as f:
    json.dump({"traceEvents": events}, f)


_PROGRAM = """HloModule m

%body (p: f32[2,4]) -> f32[2,4] {
  %p = f32[2,4]{1,0} parameter(0)
  %w = f32[4,4]{1,0} constant({...})
  ROOT %dot.1 = f32[2,4]{1,0} dot(%p, %w), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}

ENTRY %main (x: f32[2,4]) -> f32[2,4] {
  %x = f32[2,4]{1,0} parameter(0)
  %while.2 = f32[2,4]{1,0} while(%x), condition=%cond, body=%body
  %all-reduce.3 = f32[2,4]{1,0} all-reduce(%while.2), replica_groups={}, to_apply=%add
  ROOT %exp.4 = f32[2,4]{1,0} exponential(%all-reduce.3)
}
"""


def test_op_times_split_per_step_and_device_without_counting_containers(tmp_path):
  # 2 steps on 2 devices; each step runs the loop body's dot 3 times per device.
  event = lambda name, us: dict(ph="X", name=name, dur=us, ts=0, pid=1, tid=1)
  events = ([event("dot.1", 100)] * 12 + [event("while.2", 10_000)] * 4
            + [event("all-reduce.3", 50)] * 4 + [event("exp.4", 20)] * 4
            + [event("ThunkExecutor::Execute", 99_000), dict(ph="M", name="exp.4")])
  _write_trace(tmp_path / "plugins" / "profile" / "run", events)
  times = hlo_profile.op_times(str(tmp_path), _PROGRAM, steps=2, devices=2)
  assert times.matmul_ms == pytest.approx(3 * 100 / 1e3)
  assert times.matmul_gflop == pytest.approx(3 * 2 * 2 * 4 * 4 / 1e9)
  assert times.collective_ms == pytest.approx(50 / 1e3)
  assert times.other_ms == pytest.approx(20 / 1e3)
  assert times.instructions == 3 + 1 + 1
  assert times.top_other == [("exp.4", pytest.approx(0.02))]


def test_a_missing_trace_names_the_directory(tmp_path):
  with pytest.raises(FileNotFoundError, match=str(tmp_path)):
    hlo_profile.op_times(str(tmp_path), _PROGRAM, steps=1, devices=1)


def test_a_trace_of_another_program_is_refused(tmp_path):
  _write_trace(tmp_path / "run", [dict(ph="X", name="fusion.99", dur=5, ts=0)])
  with pytest.raises(ValueError, match="different programs"):
    hlo_profile.op_times(str(tmp_path), _PROGRAM, steps=1, devices=1)
