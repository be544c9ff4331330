r"""Attention implementations and rematerialisation choices, timed side by side.

  python benchmarks/attention_speed.py                     # both tables
  python benchmarks/attention_speed.py --parts=attention --seq_lens=2048

Attention: forward + backward (gradients of all of q, k, v) of causal attention
alone, at the heads and head sizes of the benchmark presets (docs/benchmarks.md:
tiny-1..tiny-4) and the preset's attention_block, with the tokens per call held at
the benchmark's 16 x 128 (batch = 2048 // seq_len, at least 1).
Remat: forward + backward of the model's loss (value_and_grad of model.loss_fn;
the optimizer update does not depend on remat) at the benchmark shapes, batch 16 x
seq 128, per model.remat choice.

Every option of one shape is compiled first, then timed in alternating blocks in
this one process; each figure is the median of the per-call times, in ms.
"""
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app
from absl import flags
from flax import nnx

from scaling_jax import attention as attention_lib
from scaling_jax import model as model_lib

_PARTS = flags.DEFINE_list("parts", ["attention", "remat"], "Tables to print.")
_MODELS = flags.DEFINE_list("models", ["tiny-1", "tiny-2", "tiny-3", "tiny-4"],
                            "Model presets whose shapes are timed.")
_SEQ_LENS = flags.DEFINE_list("seq_lens", ["128", "512", "2048"],
                              "Sequence lengths for the attention table.")
_TOKENS = flags.DEFINE_integer("tokens", 2048, "Tokens per call (batch x seq).")
_ATTENTIONS = flags.DEFINE_list("attentions", ["dense", "xla", "blockwise"],
                                "model.attention choices to time.")
_REMATS = flags.DEFINE_list(
    "remats", ["none", "block", "dots_saveable", "nothing_saveable"],
    "model.remat choices to time.")
_ROUNDS = flags.DEFINE_integer("rounds", 5, "Alternating rounds.")
_CALLS = flags.DEFINE_integer("calls", 3, "Timed calls per option per round.")


def time_alternating(fns: dict) -> dict:
  """Median ms per call of each zero-argument fn, timed in alternating blocks."""
  for fn in fns.values():  # compile and warm up before any timing
    jax.block_until_ready(fn())
  times = {name: [] for name in fns}
  for _ in range(_ROUNDS.value):
    for name, fn in fns.items():
      for _ in range(_CALLS.value):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times[name].append(time.perf_counter() - start)
  return {name: 1e3 * float(np.median(t)) for name, t in times.items()}


def attention_fns(cfg: model_lib.ModelConfig, seq_len: int) -> dict:
  batch = max(1, _TOKENS.value // seq_len)
  shape = (batch, seq_len, cfg.num_heads, cfg.head_dim)
  q, k, v, g = (jax.random.normal(jax.random.key(i), shape) for i in range(4))
  q = q / np.sqrt(cfg.head_dim)
  fns = {}
  for attention in _ATTENTIONS.value:
    def loss(q, k, v, attention=attention):
      out = attention_lib.causal_attention(q, k, v, attention, cfg.attention_block)
      return jnp.vdot(out, g)
    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    fns[attention] = lambda grad=grad: grad(q, k, v)
  return fns


def remat_fns(name: str) -> dict:
  batch_size = max(1, _TOKENS.value // model_lib.preset(name).seq_len)
  fns = {}
  for remat in _REMATS.value:
    cfg = model_lib.preset(name, remat=remat)
    model = model_lib.Transformer(cfg, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model, nnx.Param)
    batch = jax.random.randint(jax.random.key(1), (batch_size, cfg.seq_len + 1),
                               0, cfg.vocab_size)
    def loss(p, graphdef=graphdef):
      return model_lib.loss_fn(nnx.merge(graphdef, p), batch)[0]
    step = jax.jit(jax.value_and_grad(loss))
    fns[remat] = lambda step=step, params=params: step(params)
  return fns


def _table(title, row_names, columns, rows):
  print(f"\n{title}")
  print("| " + " | ".join(row_names + columns) + " | fastest |")
  print("|" + "---|" * (len(row_names) + len(columns) + 1))
  for keys, ms in rows:
    best = min(ms, key=ms.get)
    cells = [str(k) for k in keys] + [f"{ms[c]:.2f}" for c in columns]
    print("| " + " | ".join(cells) + f" | {best} |", flush=True)


def main(argv):
  del argv
  print(f"devices: {jax.devices()}; median ms per fwd+bwd call, "
        f"{_ROUNDS.value} alternating rounds x {_CALLS.value} calls")
  if "attention" in _PARTS.value:
    rows = []
    for seq_len in (int(s) for s in _SEQ_LENS.value):
      for name in _MODELS.value:
        cfg = model_lib.preset(name)
        shape = (f"{max(1, _TOKENS.value // seq_len)}x{seq_len}",
                 f"{cfg.num_heads}x{cfg.head_dim}", cfg.attention_block)
        rows.append(((name,) + shape, time_alternating(attention_fns(cfg, seq_len))))
    _table("attention forward + backward (ms)",
           ["model", "batch x seq", "heads x head dim", "block"],
           _ATTENTIONS.value, rows)
  if "remat" in _PARTS.value:
    rows = [((name,), time_alternating(remat_fns(name))) for name in _MODELS.value]
    _table(f"loss forward + backward by model.remat (ms), {_TOKENS.value} tokens",
           ["model"], _REMATS.value, rows)


if __name__ == "__main__":
  app.run(main)
