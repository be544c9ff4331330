r"""Training throughput: tokens/s and achieved GFLOP/s of the jitted train step.

  python benchmarks/train_throughput.py                      # tiny CPU shapes
  python benchmarks/train_throughput.py --models=openlm-11m,openlm-79m \
      --seq_len=2048 --batch=16 --dtype=bfloat16             # on a GPU

FLOPs per token are model.flops_per_token (6 N + 12 L T D). Compile time is
reported apart and excluded from the rate; random tokens stand in for data.
MFU (model-FLOPs utilisation) divides the achieved FLOP/s by the device's dense
peak for the compute dtype: --peak_tflops, else the table below by device kind
(NVIDIA's dense, no-sparsity figures); left blank where neither knows the peak.

  # issue 13's GPU figures (one H100 or H200):
  python benchmarks/train_throughput.py --models=openlm-154m,openlm-411m,openlm-1b \
      --seq_len=2048 --batch=8 --dtype=bfloat16 --steps=10
"""
import time

import jax
import ml_collections
import numpy as np
from absl import app
from absl import flags

from scaling_jax import model as model_lib
from scaling_jax import optim
from scaling_jax import sharding
from scaling_jax import train

_MODELS = flags.DEFINE_list("models", ["tiny-1", "tiny-2", "tiny-3", "tiny-4"],
                            "Model presets to time.")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 0, "Sequence length; 0 = the preset's.")
_BATCH = flags.DEFINE_integer("batch", 16, "Global batch (sequences).")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps after warm-up.")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"],
                           "Compute dtype.")
_PEAK = flags.DEFINE_float("peak_tflops", 0.0, "Dense peak TFLOP/s of one device for "
                           "the compute dtype; 0 = look up the device kind.")

# Dense (no sparsity) peak TFLOP/s by device kind and dtype, from NVIDIA's data
# sheets (SXM parts); the H200 has the H100's compute with more, faster memory.
PEAK_TFLOPS = {("H100", "bfloat16"): 989.0, ("H100", "float32"): 67.0,
               ("H200", "bfloat16"): 989.0, ("H200", "float32"): 67.0}


def peak_tflops() -> float | None:
  if _PEAK.value:
    return _PEAK.value
  kind = jax.devices()[0].device_kind
  for (name, dtype), peak in PEAK_TFLOPS.items():
    if name in kind and dtype == _DTYPE.value:
      return peak * jax.device_count()
  return None


def _optim_config():
  return ml_collections.ConfigDict(dict(
      peak_lr=3e-3, final_lr=3e-5, beta1=0.9, beta2=0.95, eps=1e-8,
      weight_decay=0.033, grad_clip=1.0))


def bench(name: str) -> dict:
  overrides = dict(compute_dtype=_DTYPE.value)
  if _SEQ_LEN.value:
    overrides["seq_len"] = _SEQ_LEN.value
  cfg = model_lib.preset(name, **overrides)
  mesh = sharding.make_mesh(dict(data=-1, fsdp=1, tensor=1))
  optim_config = _optim_config()
  tx = optim.make_optimizer(optim_config)
  lr = optim_config.peak_lr
  program = train.Program(cfg, tx, mesh)
  rng = np.random.default_rng(0)
  batch = rng.integers(0, min(cfg.vocab_size, 256), (_BATCH.value, cfg.seq_len + 1),
                       dtype=np.int32)
  start = time.perf_counter()
  state = program.init(0)
  state, metrics = program.step(state, batch, lr)
  jax.block_until_ready(metrics)
  compile_s = time.perf_counter() - start
  start = time.perf_counter()
  for _ in range(_STEPS.value):
    state, metrics = program.step(state, batch, lr)
  jax.block_until_ready(metrics)
  seconds = time.perf_counter() - start
  tokens_per_s = _STEPS.value * _BATCH.value * cfg.seq_len / seconds
  return dict(model=name, N=model_lib.num_params(cfg), seq_len=cfg.seq_len,
              compile_s=compile_s, tokens_per_s=tokens_per_s,
              gflops=tokens_per_s * model_lib.flops_per_token(cfg) / 1e9)


def main(argv):
  del argv
  peak = peak_tflops()
  print(f"devices: {jax.devices()}; peak {peak or '?'} TFLOP/s ({_DTYPE.value})")
  print(f"{'model':<12}{'N':>14}{'seq':>6}{'compile s':>11}{'tokens/s':>12}"
        f"{'GFLOP/s':>10}{'MFU':>7}")
  for name in _MODELS.value:
    r = bench(name)
    mfu = f"{r['gflops'] / (1e3 * peak):.1%}" if peak else "n/a"
    print(f"{r['model']:<12}{r['N']:>14,}{r['seq_len']:>6}{r['compile_s']:>11.1f}"
          f"{r['tokens_per_s']:>12,.0f}{r['gflops']:>10.1f}{mfu:>7}", flush=True)


if __name__ == "__main__":
  app.run(main)
