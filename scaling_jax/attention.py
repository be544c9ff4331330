"""Causal self-attention kernels, chosen by `model.attention` (ATTENTION_CHOICES).

All take q, k, v as [B, T, N, H] (q already scaled by 1/sqrt(H)) and return the
attention output in q's layout; shape suffixes as in model.py.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from scaling_jax import loop_unrolling

# model.attention: how the blocks compute causal attention. "xla" and "cudnn" are
# jax.nn.dot_product_attention's `implementation`s (cuDNN flash attention needs a
# GPU and bfloat16/float16); "dense" is the plain einsum reference; "blockwise"
# holds one [attention_block x prefix] tile at a time; "auto" picks per shape and
# device (`auto_attention`).
ATTENTION_CHOICES = ("auto", "xla", "cudnn", "blockwise", "dense")

_NEG_INF = -1e30  # finite, so fully masked rows never produce NaN


def _dense_attention(q_BTNH, k_BSNH, v_BSNH):
  # Heads moved before positions, so both products are batched matmuls over
  # leading (B, N); and the softmax's normalisation is applied to the [T, H]
  # output instead of the [T, S] probabilities. On the 2-core CPU this made the
  # train step 13-23% faster at the benchmark shapes than jax.nn.softmax on
  # [B, N, T, S] between two einsums over (b, n) in the middle (docs/benchmarks.md).
  t = q_BTNH.shape[1]
  q_BNTH, k_BNSH, v_BNSH = (x.transpose(0, 2, 1, 3) for x in (q_BTNH, k_BSNH, v_BSNH))
  s_BNTS = jnp.einsum("bnth,bnsh->bnts", q_BNTH, k_BNSH).astype(jnp.float32)
  causal_TS = jnp.tril(jnp.ones((t, t), dtype=bool))
  s_BNTS = jnp.where(causal_TS, s_BNTS, _NEG_INF)
  # The max only keeps exp in range; any constant per row gives the same output.
  e_BNTS = jnp.exp(s_BNTS - jax.lax.stop_gradient(s_BNTS.max(-1, keepdims=True)))
  o_BNTH = jnp.einsum("bnts,bnsh->bnth", e_BNTS.astype(v_BSNH.dtype), v_BNSH)
  o_BNTH = o_BNTH / e_BNTS.sum(-1, keepdims=True)
  return o_BNTH.transpose(0, 2, 1, 3).astype(v_BSNH.dtype)


def _query_block_attention(q_BTNH, k_CBSNH, v_CBSNH, q_start):
  """Online softmax of one query block over the key blocks that precede it."""
  b, t, n, h = q_BTNH.shape
  q_pos = q_start + jnp.arange(t)

  def step(carry, inputs):
    m_BNT, l_BNT, acc_BTNH = carry
    k_BSNH, v_BSNH, k_start = inputs
    s_BNTS = jnp.einsum("btnh,bsnh->bnts", q_BTNH, k_BSNH).astype(jnp.float32)
    k_pos = k_start + jnp.arange(k_BSNH.shape[1])
    s_BNTS = jnp.where(k_pos[None, :] <= q_pos[:, None], s_BNTS, _NEG_INF)
    m_new = jnp.maximum(m_BNT, s_BNTS.max(-1))
    p_BNTS = jnp.exp(s_BNTS - m_new[..., None])
    correction = jnp.exp(m_BNT - m_new)
    l_new = l_BNT * correction + p_BNTS.sum(-1)
    pv_BTNH = jnp.einsum("bnts,bsnh->btnh", p_BNTS.astype(v_BSNH.dtype), v_BSNH)
    acc_new = acc_BTNH * correction.transpose(0, 2, 1)[..., None] + pv_BTNH
    return (m_new, l_new, acc_new), None

  init = (jnp.full((b, n, t), _NEG_INF, jnp.float32),
          jnp.zeros((b, n, t), jnp.float32), jnp.zeros((b, t, n, h), jnp.float32))
  starts = jnp.arange(k_CBSNH.shape[0]) * k_CBSNH.shape[2]
  (_, l_BNT, acc_BTNH), _ = jax.lax.scan(step, init, (k_CBSNH, v_CBSNH, starts),
                                         unroll=loop_unrolling.scan_unroll())
  return (acc_BTNH / l_BNT.transpose(0, 2, 1)[..., None]).astype(q_BTNH.dtype)


def _blockwise_attention(q_BTNH, k_BSNH, v_BSNH, block):
  """Causal attention that holds one [block x prefix] score tile at a time.

  Query blocks are a static loop, so each scans only the key blocks at or before
  it (no work on fully masked tiles); each is rematerialised in the backward
  pass, so the full T x T score matrix never exists, forward or backward.
  A length that `block` does not divide is padded at the end: padded keys lie
  after every real query, so the causal mask hides them, and padded queries'
  outputs are dropped.
  """
  t = q_BTNH.shape[1]
  pad = -t % block
  if pad:
    widths = ((0, 0), (0, pad), (0, 0), (0, 0))
    q_BTNH, k_BSNH, v_BSNH = (jnp.pad(x, widths) for x in (q_BTNH, k_BSNH, v_BSNH))
  b, t, n, h = q_BTNH.shape
  k_CBSNH = k_BSNH.reshape(b, t // block, block, n, h).swapaxes(0, 1)
  v_CBSNH = v_BSNH.reshape(b, t // block, block, n, h).swapaxes(0, 1)
  attend = jax.checkpoint(_query_block_attention, static_argnums=(3,))
  outs = [attend(q_BTNH[:, i * block:(i + 1) * block], k_CBSNH[:i + 1],
                 v_CBSNH[:i + 1], i * block) for i in range(t // block)]
  return jnp.concatenate(outs, axis=1)[:, :t - pad]


def auto_attention(seq_len: int, head_dim: int, dtype, block: int) -> str:
  """The attention "auto" stands for at this shape on the default backend."""
  if (jax.default_backend() == "gpu"
      and jnp.dtype(dtype) in (jnp.bfloat16, jnp.float16)
      and head_dim % 8 == 0 and head_dim <= 128):  # cuDNN flash's limits
    return "cudnn"
  # Measured on the 2-core CPU (benchmarks/attention_speed.py, docs/benchmarks.md
  # "Attention implementations and rematerialisation (CPU)"): within one block
  # the plain einsum is fastest (1.4-2x jax.nn.dot_product_attention's "xla");
  # past one block, skipping masked tiles wins (1.2-2x at 512, 3-4x at 2048).
  return "blockwise" if seq_len > block else "dense"


def causal_attention(q_BTNH, k_BSNH, v_BSNH, attention: str, block: int):
  """Causal softmax(q k^T) v for q already scaled by 1/sqrt(H): [B, T, N, H]."""
  if attention == "auto":
    attention = auto_attention(q_BTNH.shape[1], q_BTNH.shape[-1], q_BTNH.dtype,
                               block)
  if attention == "dense":
    return _dense_attention(q_BTNH, k_BSNH, v_BSNH)
  if attention == "blockwise":
    return _blockwise_attention(q_BTNH, k_BSNH, v_BSNH, block)
  if attention in ("xla", "cudnn"):
    return jax.nn.dot_product_attention(q_BTNH, k_BSNH, v_BSNH, scale=1.0,
                                        is_causal=True, implementation=attention)
  raise ValueError(f"model.attention must be one of "
                   f"{', '.join(ATTENTION_CHOICES)}; got {attention!r}")
