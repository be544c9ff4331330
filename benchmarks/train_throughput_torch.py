r"""Training throughput of scaling_jax's jitted step against plain PyTorch, on CPU.

  pip install torch==2.13.0          # not a project dependency; CPU wheel here
  python benchmarks/train_throughput_torch.py
  python benchmarks/train_throughput_torch.py --models=tiny-1 --steps=40 --nocompile
  python benchmarks/train_throughput_torch.py --torch_attention=math
  python benchmarks/train_throughput_torch.py --jax_cpu_devices=1

The PyTorch side is the model of scaling_jax/model.py written as a PyTorch user
would: nn.Linear without biases, F.layer_norm, half-split RoPE,
F.scaled_dot_product_attention(is_causal=True), SwiGLU, untied head,
cross-entropy + z-loss, torch.optim.AdamW with grad-norm clipping. Same preset
shapes (the parameter count is asserted equal), the same random [B, T+1] batch,
float32. `--torch_attention=math` makes PyTorch's attention the unfused
softmax(Q K^T) V that XLA runs on CPU instead of SDPA's fused CPU kernel, which
isolates how much of the gap that one kernel is. JAX runs one CPU device per core
(`jax_num_cpu_devices`) with the batch split over them on the mesh's data axis, as
the project's sharding does on any set of devices; `--jax_cpu_devices=1` is one
device whose ops use every core through XLA's intra-op threads, the way PyTorch
uses them. The rate is the median of per-step wall times (each step synchronised),
after warm-up steps that include any compile. Frameworks alternate in blocks of a
few steps within each shape, so drifting machine load hits all of them alike.
"""
import contextlib
import math
import os
import statistics
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

try:
  import torch
  import torch.nn.functional as F
  from torch import nn
except ImportError as e:
  raise SystemExit("PyTorch is not a scaling_jax dependency; install it for this "
                   "benchmark only: pip install torch==2.13.0") from e

_MODELS = flags.DEFINE_list("models", ["tiny-1", "tiny-2", "tiny-3", "tiny-4"],
                            "Model presets to time.")
_BATCH = flags.DEFINE_integer("batch", 16, "Global batch (sequences).")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps per framework.")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed steps first (compile included).")
_BLOCK = flags.DEFINE_integer("block", 5, "Steps per framework before alternating.")
_COMPILE = flags.DEFINE_bool("compile", True, "Also time torch.compile'd model.")
_JAX_CPU_DEVICES = flags.DEFINE_integer(
    "jax_cpu_devices", 0, "CPU devices JAX splits the batch over (0: one per "
    "core, or the most that divide --batch).")
_TORCH_ATTENTION = flags.DEFINE_enum(
    "torch_attention", "sdpa", ["sdpa", "math"],
    "sdpa: PyTorch picks its kernel (a fused flash kernel on CPU); math: the "
    "unfused softmax(Q K^T) V, the same work as JAX's dense attention.")

_LR = 3e-3  # constant on the torch side: a schedule costs nothing measurable


class Block(nn.Module):
  """Pre-norm block: gain-only LN, qk-LN (no params), RoPE, causal SDPA, SwiGLU."""

  def __init__(self, cfg):
    super().__init__()
    d, f = cfg.width, cfg.mlp_hidden
    self.cfg = cfg
    self.attn_norm = nn.Parameter(torch.ones(d))
    self.qkv = nn.Linear(d, 3 * d, bias=False)
    self.attn_out = nn.Linear(d, d, bias=False)
    self.mlp_norm = nn.Parameter(torch.ones(d))
    self.gate_up = nn.Linear(d, 2 * f, bias=False)
    self.down = nn.Linear(f, d, bias=False)

  def forward(self, x, cos, sin):
    cfg = self.cfg
    (b, t, d), n, h = x.shape, cfg.num_heads, cfg.head_dim
    y = F.layer_norm(x, (d,), self.attn_norm, None, cfg.norm_eps)
    q, k, v = self.qkv(y).view(b, t, 3, n, h).unbind(2)
    q = rope(F.layer_norm(q, (h,), None, None, cfg.norm_eps), cos, sin)
    k = rope(F.layer_norm(k, (h,), None, None, cfg.norm_eps), cos, sin)
    # SDPA wants [B, N, T, H]; its default scale is 1/sqrt(H), as in model.py.
    o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                       v.transpose(1, 2), is_causal=True)
    x = x + self.attn_out(o.transpose(1, 2).reshape(b, t, d))
    y = F.layer_norm(x, (d,), self.mlp_norm, None, cfg.norm_eps)
    gate, up = self.gate_up(y).chunk(2, dim=-1)
    return x + self.down(F.silu(gate) * up)


def rope(x, cos, sin):
  """Half-split rotary embedding (pairs dimension i with i + H/2), as model.py."""
  x1, x2 = x.chunk(2, dim=-1)
  return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class TorchTransformer(nn.Module):
  """Token ids [B, T] -> logits [B, T, V]; untied embed / unembed."""

  def __init__(self, cfg):
    super().__init__()
    self.cfg = cfg
    d, v, h = cfg.width, cfg.vocab_size, cfg.head_dim
    self.embed = nn.Parameter(torch.empty(v, d))
    self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
    self.final_norm = nn.Parameter(torch.ones(d))
    self.unembed = nn.Linear(d, v, bias=False)
    inv_freq = cfg.rope_base ** (-torch.arange(0, h, 2).float() / h)
    angle = torch.arange(cfg.seq_len).float()[:, None] * inv_freq[None, :]
    # [T, 1, H/2]: broadcasts over heads of a [B, T, N, H/2] half.
    self.register_buffer("cos", angle.cos()[:, None, :], persistent=False)
    self.register_buffer("sin", angle.sin()[:, None, :], persistent=False)
    self._init_like_jax()

  def _init_like_jax(self):
    # Truncated normal (+-2 std), std 1/sqrt(fan_in), output projections scaled
    # by 1/sqrt(2L): the same distribution as model._init, for a fair loss.
    out_scale = 1.0 / math.sqrt(2 * self.cfg.num_layers)
    for name, p in self.named_parameters():
      if name.endswith("norm"):
        continue
      fan_in = self.cfg.width if name == "embed" else p.shape[1]
      std = (out_scale if name.endswith(("attn_out.weight", "down.weight"))
             else 1.0) / math.sqrt(fan_in)
      nn.init.trunc_normal_(p, std=std, a=-2 * std, b=2 * std)

  def forward(self, tokens):
    t = tokens.shape[1]
    x = self.embed[tokens]
    cos, sin = self.cos[:t], self.sin[:t]
    for block in self.blocks:
      x = block(x, cos, sin)
    x = F.layer_norm(x, (self.cfg.width,), self.final_norm, None, self.cfg.norm_eps)
    return self.unembed(x)


def torch_loss(model, batch):
  """Mean next-token cross-entropy plus z-loss, as model.loss_fn."""
  logits = model(batch[:, :-1])
  ce = F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())
  z = model.cfg.z_loss * torch.logsumexp(logits, dim=-1).square().mean()
  return ce + z


def torch_stepper(cfg, batch_np, compiled):
  """A step closure for the torch model; norm gains are not decayed (optim.py)."""
  model = TorchTransformer(cfg)
  n = sum(p.numel() for p in model.parameters())
  assert n == model_lib.num_params(cfg), (n, model_lib.num_params(cfg))
  groups = [[p for k, p in model.named_parameters() if k.endswith("norm") == nd]
            for nd in (False, True)]
  opt = torch.optim.AdamW([dict(params=groups[0]),
                           dict(params=groups[1], weight_decay=0.0)],
                          lr=_LR, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.033)
  loss_fn = torch.compile(torch_loss, dynamic=False) if compiled else torch_loss
  batch = torch.from_numpy(batch_np.astype(np.int64))

  def step():
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model, batch)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item()
  return step


def jax_stepper(cfg, batch_np):
  """A step closure around train.Program, as benchmarks/train_throughput.py."""
  mesh = sharding.make_mesh(dict(data=-1, fsdp=1, tensor=1))
  tx = optim.make_optimizer(ml_collections.ConfigDict(dict(
      peak_lr=_LR, final_lr=3e-5, beta1=0.9, beta2=0.95, eps=1e-8,
      weight_decay=0.033, grad_clip=1.0)))
  program = train.Program(cfg, tx, mesh)
  state = program.init(0)

  def step():
    nonlocal state
    state, metrics = program.step(state, batch_np, _LR)
    return float(metrics["loss"])  # blocks, so the step's time is all counted
  # For profiles (step_profile.py): the compiled step's HLO, at the current state.
  step.hlo = lambda: program.step_hlo(state, batch_np)
  return step


def warm(stepper):
  """Runs the warm-up steps (compile included); (seconds, last loss)."""
  start = time.perf_counter()
  for _ in range(_WARMUP.value):
    loss = stepper()
  return time.perf_counter() - start, loss


def random_batch(cfg) -> np.ndarray:
  """The [--batch, seq_len + 1] int32 tokens both frameworks train on (seed 0)."""
  return np.random.default_rng(0).integers(
      0, min(cfg.vocab_size, 256), (_BATCH.value, cfg.seq_len + 1), dtype=np.int32)


def median_seconds(fn, repeats: int) -> float:
  """The median wall time of `repeats` calls of `fn` (which must block)."""
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def bench(name):
  """One shape: build and warm every framework, then alternate timed blocks."""
  cfg = model_lib.preset(name)
  batch = random_batch(cfg)
  steppers = {"jax": jax_stepper(cfg, batch), "eager": torch_stepper(cfg, batch, False)}
  if _COMPILE.value:
    steppers["compile"] = torch_stepper(cfg, batch, True)
  warm_s, losses = {}, {}
  for key in list(steppers):
    try:
      warm_s[key], losses[key] = warm(steppers[key])
    except Exception as e:  # pylint: disable=broad-except
      if key != "compile":
        raise
      # Inductor needs a working C++ toolchain; report why and go on eager only.
      print(f"  {name}: torch.compile failed, skipped: {type(e).__name__}: "
            f"{(str(e).splitlines() or [''])[0][:200]}", flush=True)
      del steppers[key]
  times = {key: [] for key in steppers}
  while any(len(t) < _STEPS.value for t in times.values()):
    for key, stepper in steppers.items():
      for _ in range(min(_BLOCK.value, _STEPS.value - len(times[key]))):
        start = time.perf_counter()
        stepper()
        times[key].append(time.perf_counter() - start)
  tokens = _BATCH.value * cfg.seq_len
  rate = {k: tokens / statistics.median(t) for k, t in times.items()}
  return dict(model=name, N=model_lib.num_params(cfg), rate=rate, warm_s=warm_s,
              losses=losses)


def matmul_peak_gflops(size: int = 1024, repeats: int = 20) -> float:
  """This machine's float32 matmul rate through JAX (XLA's CPU dot): the median of
  `repeats` timed [size, size] x [size, size] products, in GFLOP/s."""
  a = jax.random.normal(jax.random.key(0), (size, size), np.float32)
  dot = jax.jit(lambda x, y: x @ y)
  dot(a, a).block_until_ready()
  return 2 * size ** 3 / median_seconds(lambda: dot(a, a).block_until_ready(),
                                        repeats) / 1e9


def configure_runtimes() -> None:
  """Threads, seeds and JAX's CPU device count for both frameworks, then a line
  naming them. Called once, before anything asks JAX for its devices."""
  cores = os.cpu_count()
  # One intra-op thread per core: the default already, set so it is explicit.
  torch.set_num_threads(cores)
  torch.manual_seed(0)
  # Inductor compiles in-process: no worker-process pool left competing for the
  # two cores while the other frameworks are timed.
  torch._inductor.config.compile_threads = 1  # pylint: disable=protected-access
  # The count is fixed at backend start. One per core by default, as many as
  # divide the batch.
  devices = _JAX_CPU_DEVICES.value or max(
      d for d in range(1, cores + 1) if _BATCH.value % d == 0)
  jax.config.update("jax_num_cpu_devices", devices)
  print(f"jax {jax.__version__} on {len(jax.devices())} x {jax.devices()[0].device_kind} "
        f"devices; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads ({cores} cores); float32, batch "
        f"{_BATCH.value}; torch attention: {_TORCH_ATTENTION.value}")


def main(argv):
  del argv
  configure_runtimes()
  print(f"median of {_STEPS.value} per-step times, frameworks alternating in "
        f"blocks of {_BLOCK.value}")
  with torch_attention_backend():
    _run_and_report()


def torch_attention_backend():
  """The context --torch_attention asks for: SDPA's own choice, or its math path."""
  if _TORCH_ATTENTION.value == "sdpa":
    return contextlib.nullcontext()
  from torch.nn.attention import SDPBackend, sdpa_kernel  # pylint: disable=g-import-not-at-top
  return sdpa_kernel(SDPBackend.MATH)


def _run_and_report():
  print(f"{'model':<8}{'N':>10}{'jax tok/s':>11}{'eager tok/s':>13}"
        f"{'compile tok/s':>15}{'jax/eager':>11}{'jax/compile':>13}  warm-up s")
  ratios, eager_r, comp_r_all, results = [], [], [], []
  for name in _MODELS.value:
    r = bench(name)
    results.append(r)
    rate = r["rate"]
    comp = rate.get("compile")
    ratios.append(rate["jax"] / max(rate["eager"], comp or 0.0))
    eager_r.append(rate["jax"] / rate["eager"])
    if comp:
      comp_r_all.append(rate["jax"] / comp)
    comp_s = f"{comp:>15,.0f}" if comp else f"{'-':>15}"
    comp_r = f"{rate['jax'] / comp:>12.2f}x" if comp else f"{'-':>13}"
    warm_s = " ".join(f"{k}={v:.1f}" for k, v in r["warm_s"].items())
    print(f"{name:<8}{r['N']:>10,}{rate['jax']:>11,.0f}{rate['eager']:>13,.0f}"
          f"{comp_s}{rate['jax'] / rate['eager']:>10.2f}x{comp_r}  {warm_s}",
          flush=True)
    print("  first-steps loss: " + " ".join(
        f"{k}={v:.3f}" for k, v in r["losses"].items()), flush=True)
  # The largest shape's model FLOPs (6N + attention, model.flops_per_token)
  # against the matmul peak measured here, now: how much of the machine a step
  # uses, whatever PyTorch does.
  peak = matmul_peak_gflops()
  largest = max(results, key=lambda r: r["N"])
  flops = model_lib.flops_per_token(model_lib.preset(largest["model"]))
  achieved = flops * largest["rate"]["jax"] / 1e9
  print(f"float32 matmul peak {peak:.1f} GFLOP/s (1024^3, jnp.dot); "
        f"{largest['model']}: JAX {achieved:.1f} GFLOP/s = "
        f"{100 * achieved / peak:.0f}% of peak")
  print(f"median jax/eager {statistics.median(eager_r):.2f}x" + (
      f", jax/compile {statistics.median(comp_r_all):.2f}x" if comp_r_all else ""))
  print("(below: JAX against the faster torch variant of each shape)")
  print(f"jax/torch tokens/s (median over shapes): {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
  app.run(main)
