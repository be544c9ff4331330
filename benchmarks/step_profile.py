r"""Where one training step's time goes, in JAX and in PyTorch eager and
torch.compile, side by side: matmuls (with the GFLOP/s they reach), PyTorch's fused
attention kernel, JAX's cross-device gradient sum, and everything else (elementwise
work, reductions, copies, the optimizer), with the number of ops each step runs
(XLA instructions executed; PyTorch ops with time of their own, Inductor's fused
C++ kernels among them).

  pip install torch==2.13.0          # not a project dependency; CPU wheel here
  python benchmarks/step_profile.py                       # tiny-4, the largest shape
  python benchmarks/step_profile.py --models=tiny-2 --torch_attention=math

The steps and flags are benchmarks/train_throughput_torch.py's (same models, batch,
devices, attention backend). JAX is traced with jax.profiler, one event per executed
XLA instruction, classed as matmul or not from the optimized HLO (hlo_profile.py);
PyTorch with torch.profiler, each op's self time, Inductor's generated C++ kernels
named (`cpp.enable_kernel_profile`). "not in ops" is the profiled step's wall time
less the ops' time: Python, dispatch, the profiler's own cost, and on JAX the
devices' idle time. Profilers slow small ops (PyTorch eager most), so the
unprofiled median step is printed beside each row for scale.
"""
import tempfile
import time

import jax
from absl import app
from absl import flags

import hlo_profile
import train_throughput_torch as bench
from scaling_jax import model as model_lib

import torch  # pylint: disable=g-bad-import-order  (train_throughput_torch checked it)
from torch import profiler as torch_profiler

_PROFILED_STEPS = flags.DEFINE_integer("profiled_steps", 5, "Steps under the profiler.")
flags.FLAGS.set_default("models", ["tiny-4"])

# Op names (self time) that are matrix products; PyTorch's fused attention kernels
# are their own class, since XLA:CPU has no counterpart (its attention is dots).
_TORCH_MATMULS = frozenset({"aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm"})
_TORCH_ATTENTION = "scaled_dot_product"


def unprofiled_ms(step) -> float:
  return 1e3 * bench.median_seconds(step, 10)


def mean_ms(step, steps: int) -> float:
  """Wall milliseconds per call over `steps` calls in a row (under a profiler)."""
  start = time.perf_counter()
  for _ in range(steps):
    step()
  return 1e3 * (time.perf_counter() - start) / steps


def profile_jax(cfg, batch) -> dict:
  step = bench.jax_stepper(cfg, batch)
  bench.warm(step)
  hlo = step.hlo()
  plain = unprofiled_ms(step)
  steps = _PROFILED_STEPS.value
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir, create_perfetto_trace=True)
    wall_ms = mean_ms(step, steps)
    jax.profiler.stop_trace()
    devices = len(jax.devices())
    ops = hlo_profile.op_times(trace_dir, hlo, steps, devices)
  # The devices run their shards side by side: the step's matmul FLOPs are every
  # device's, done in one device's matmul time.
  return dict(plain_ms=plain, wall_ms=wall_ms, matmul_ms=ops.matmul_ms,
              matmul_gflop=ops.matmul_gflop * devices, attention_ms=0.0,
              collective_ms=ops.collective_ms, other_ms=ops.other_ms,
              ops=ops.instructions, top_other=ops.top_other)


def profile_torch(cfg, batch, compiled: bool) -> dict:
  step = bench.torch_stepper(cfg, batch, compiled)
  bench.warm(step)
  plain = unprofiled_ms(step)
  steps = _PROFILED_STEPS.value
  with torch_profiler.profile(activities=[torch_profiler.ProfilerActivity.CPU],
                              with_flops=True) as prof:
    wall_ms = mean_ms(step, steps)
  matmul_ms = matmul_flops = attention_ms = other_ms = ops = 0.0
  other = {}
  for op in prof.key_averages():
    ms = op.self_cpu_time_total / 1e3 / steps
    if op.key in _TORCH_MATMULS:
      matmul_ms += ms
      matmul_flops += op.flops / steps
    elif _TORCH_ATTENTION in op.key:
      attention_ms += ms
    else:
      other_ms += ms
      other[op.key] = ms
    # Ops that did work of their own, not only wrappers of others.
    ops += op.count / steps if op.self_cpu_time_total > 0 else 0
  return dict(plain_ms=plain, wall_ms=wall_ms, matmul_ms=matmul_ms,
              matmul_gflop=matmul_flops / 1e9, attention_ms=attention_ms,
              collective_ms=0.0, other_ms=other_ms, ops=ops,
              top_other=sorted(other.items(), key=lambda kv: -kv[1])[:5])


def report(name, cfg, rows, peak):
  print(f"\n{name}: ms per step (per device for JAX), {_PROFILED_STEPS.value} "
        "profiled steps")
  print(f"{'':<9}{'unprofiled':>11}{'profiled':>10}{'matmul':>9}{'GFLOP/s':>9}"
        f"{'% peak':>8}{'attention':>11}{'all-reduce':>12}{'other ops':>11}"
        f"{'not in ops':>12}{'ops':>7}")
  for key, r in rows.items():
    rate = r["matmul_gflop"] / r["matmul_ms"] * 1e3 if r["matmul_ms"] else 0.0
    rest = r["wall_ms"] - sum(r[k] for k in ("matmul_ms", "attention_ms",
                                             "collective_ms", "other_ms"))
    print(f"{key:<9}{r['plain_ms']:>11.1f}{r['wall_ms']:>10.1f}{r['matmul_ms']:>9.1f}"
          f"{rate:>9.1f}{100 * rate / peak:>7.0f}%{r['attention_ms']:>11.1f}"
          f"{r['collective_ms']:>12.1f}{r['other_ms']:>11.1f}{rest:>12.1f}"
          f"{r['ops']:>7.0f}")
  # A check on the HLO reading: the step's dots against the model's FLOPs.
  model_gflop = (model_lib.flops_per_token(cfg) * bench._BATCH.value  # pylint: disable=protected-access
                 * cfg.seq_len / 1e9)
  print("  matmul GFLOP a step: " + ", ".join(
      f"{key} {r['matmul_gflop']:.3f}" for key, r in rows.items())
        + f"; model {model_gflop:.3f} (6N + attention, forward + backward)")
  for key, r in rows.items():
    print(f"  {key} largest other ops: " + ", ".join(
        f"{op[:48]} {ms:.1f}" for op, ms in r["top_other"]))


def main(argv):
  del argv
  bench.configure_runtimes()
  # Inductor's generated kernels appear in the profile under their own names.
  torch._inductor.config.cpp.enable_kernel_profile = True  # pylint: disable=protected-access
  peak = bench.matmul_peak_gflops()
  print(f"float32 matmul peak {peak:.1f} GFLOP/s (1024^3, jnp.dot)")
  with bench.torch_attention_backend():
    for name in bench._MODELS.value:  # pylint: disable=protected-access
      cfg = model_lib.preset(name)
      batch = bench.random_batch(cfg)
      rows = {"jax": profile_jax(cfg, batch),
              "eager": profile_torch(cfg, batch, compiled=False)}
      if bench._COMPILE.value:  # pylint: disable=protected-access
        rows["compile"] = profile_torch(cfg, batch, compiled=True)
      report(name, cfg, rows, peak)


if __name__ == "__main__":
  app.run(main)
