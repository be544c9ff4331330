"""A step's time from its per-chip costs and a chip's peaks, and what follows.

The roofline takes the slowest of compute (FLOPs / peak FLOP/s), memory traffic
(bytes accessed / HBM bandwidth) and collectives (bytes / collective bandwidth,
an all-reduce counted twice: a reduce-scatter then an all-gather), assuming the
three overlap perfectly. It is therefore a lower bound on the step time and an
upper bound on MFU; a real step also waits on the host, on kernels below peak
and on collectives XLA could not overlap.

Model FLOPs (for MFU) are the project's 6 N + 12 L T D per token
(model.flops_per_token, PaLM's convention: the attention term counts the full
T x T scores) less the input embedding's 6 V D, which is a lookup, not a matrix
product: at the paper's 50k vocabulary that is 46% of the 11M model's N.
"""
from __future__ import annotations

from scaling_jax import attention as attention_lib
from scaling_jax import model as model_lib
from scaling_jax.aot import chips as chips_lib


def model_flops_per_token(cfg: model_lib.ModelConfig) -> float:
  """6 N' + 12 L T D: N' the parameters that enter matrix products."""
  return model_lib.flops_per_token(cfg) - 6 * cfg.vocab_size * cfg.width


def executed_flops_per_token(cfg: model_lib.ModelConfig) -> float | None:
  """The matrix-product FLOPs the configured step performs per token, by arithmetic:
  what the compiled count should read (None where the step's recomputation is not
  known: a jax.checkpoint_policies remat, or a fused GPU attention kernel).

  Each matrix product runs forward once and backward twice (6 FLOPs a parameter);
  block remat (model.remat='block') recomputes the blocks' forward (8); blockwise
  attention computes only the c(c+1)/2 of c^2 score tiles on or below the diagonal
  (c = T / attention_block) and recomputes its own forward in the backward pass.
  """
  attention = cfg.attention
  if attention == "auto":  # what the model resolves it to when it traces the step
    attention = attention_lib.auto_attention(cfg.seq_len, cfg.head_dim, cfg.compute_dtype,
                                             cfg.attention_block)
  if cfg.remat not in ("none", "block") or attention not in ("dense", "blockwise"):
    return None
  passes = 3 + (cfg.remat == "block")  # forward, backward (2), block recomputation
  head = cfg.vocab_size * cfg.width
  blocks = model_lib.num_params(cfg) - 2 * head  # untied input embedding and head
  tiles, attention_passes = 1.0, passes
  if attention == "blockwise":
    c = -(-cfg.seq_len // cfg.attention_block)
    tiles, attention_passes = (c + 1) / (2 * c), passes + 1
  scores = 4.0 * cfg.num_layers * cfg.seq_len * cfg.width * tiles  # QK^T and AV, forward
  return 2.0 * passes * blocks + 6.0 * head + attention_passes * scores


def collective_seconds(collectives: dict, chip: chips_lib.Chip) -> float:
  moved = sum(v["bytes"] * (2 if kind == "all-reduce" else 1)
              for kind, v in collectives.items())
  return moved / chip.collective_bw


def estimate(step: dict, chip: chips_lib.Chip, chips: int, tokens_per_step: int,
             cfg: model_lib.ModelConfig) -> dict:
  """Roofline step time, tokens/s and MFU of a step with per-chip costs `step`."""
  terms = dict(compute=step["flops"] / chip.peak_flops,
               memory=step["bytes_accessed"] / chip.hbm_bw,
               collectives=collective_seconds(step["collectives"], chip))
  seconds = max(terms.values())
  model_flops = model_flops_per_token(cfg) * tokens_per_step
  executed = executed_flops_per_token(cfg)
  return dict(step_seconds=seconds, bound=max(terms, key=terms.get),
              terms=terms, tokens_per_second=tokens_per_step / seconds,
              model_flops_per_step=model_flops,
              mfu=model_flops / (seconds * chips * chip.peak_flops),
              hlo_over_model=step["flops"] * chips / model_flops,
              hlo_over_executed=(step["flops"] * chips / (executed * tokens_per_step)
                                 if executed else None))
