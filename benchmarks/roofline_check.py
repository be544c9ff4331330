r"""The compile dry run's roofline against a measured step, on the device at hand.

  python benchmarks/roofline_check.py --model=openlm-154m --seq_len=2048 --batch=8 \
      --dtype=bfloat16 --chip=h100          # on one H100 (issue 26's GPU check)
  python benchmarks/roofline_check.py       # tiny-2 on this CPU: the script runs;
                                            # the H100 row's estimate means nothing here

Compiles the train step for jax.devices() as the dry run does (scaling_jax/aot:
memory, loop-corrected FLOPs, bytes and collectives), takes the roofline step time
for --chip's peaks (aot/chips.py), then times --steps steps on random tokens
(median, compile excluded) and prints both step times, both MFUs and the
estimator's error: how far the pod estimates of the dry run can be trusted.
"""
import dataclasses
import time

import jax
import numpy as np
from absl import app
from absl import flags

from scaling_jax import config_lib
from scaling_jax import model as model_lib
from scaling_jax.aot import chips as chips_lib
from scaling_jax.aot import compile_unit
from scaling_jax.aot import roofline

_MODEL = flags.DEFINE_string("model", "tiny-2", "model preset")
_SEQ = flags.DEFINE_integer("seq_len", 0, "sequence length (0: the preset's)")
_BATCH = flags.DEFINE_integer("batch", 16, "global batch (sequences)")
_DTYPE = flags.DEFINE_string("dtype", "float32", "compute dtype")
_CHIP = flags.DEFINE_enum("chip", "h100", list(chips_lib.CHIPS), "whose peaks")
_STEPS = flags.DEFINE_integer("steps", 10, "timed steps after one warm-up step")


def main(_):
  overrides = dict(compute_dtype=_DTYPE.value)
  if _MODEL.value.startswith("openlm"):
    overrides.update(vocab_size=50432, seq_len=2048)
  if _SEQ.value:
    overrides["seq_len"] = _SEQ.value
  cfg = model_lib.preset(_MODEL.value, **overrides)
  config = config_lib.default_config()
  config.model = dataclasses.asdict(cfg)
  config.train.global_batch = _BATCH.value
  config.mesh = dict(data=-1, fsdp=1, tensor=1)
  config.evals = {}
  devices = jax.devices()
  chip = chips_lib.CHIPS[_CHIP.value]
  report = compile_unit.compile_unit(config, devices)
  tokens = _BATCH.value * cfg.seq_len
  est = roofline.estimate(report["step"], chip, len(devices), tokens, cfg)

  program = compile_unit.build_program(config, devices, None)
  state = program.init(0)
  rng = np.random.default_rng(0)
  local = _BATCH.value // jax.process_count()

  def batch():
    return rng.integers(0, cfg.vocab_size, (local, cfg.seq_len + 1), dtype=np.int32)
  state, metrics = program.step(state, batch(), 1e-4)  # compiles
  jax.block_until_ready(metrics)
  times = []
  for _ in range(_STEPS.value):
    start = time.perf_counter()
    state, metrics = program.step(state, batch(), 1e-4)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
  measured = float(np.median(times))
  mfu = est["model_flops_per_step"] / (measured * len(devices) * chip.peak_flops)
  print(f"{_MODEL.value}, batch {_BATCH.value} x {cfg.seq_len}, {cfg.compute_dtype}, "
        f"{len(devices)} x {devices[0].device_kind}, peaks of {chip.name}")
  print(f"per-chip memory {report['memory']['total'] / 2 ** 30:.2f} GiB; HLO FLOPs / "
        f"(6N'+12LTD) = {est['hlo_over_model']:.3f}")
  print(f"roofline step {est['step_seconds'] * 1e3:.2f} ms ({est['bound']}-bound), "
        f"MFU {100 * est['mfu']:.1f}%")
  print(f"measured step {measured * 1e3:.2f} ms (median of {_STEPS.value}), "
        f"MFU {100 * mfu:.1f}%")
  print(f"measured / roofline step time = {measured / est['step_seconds']:.2f}")


if __name__ == "__main__":
  app.run(main)
