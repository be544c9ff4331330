"""Decoder-only transformer (Flax NNX) in the over-training testbed's style.

Pre-norm blocks with gain-only LayerNorm, parameter-free qk-LayerNorm, rotary
positions, SwiGLU MLP, untied input/output embeddings, no biases, z-loss.

The layer weights are stacked along a leading `layers` axis and the forward pass
scans over them: one compiled block whatever the depth, which keeps compile time
flat from 2 to 32 layers. `model.attention` picks the attention kernel and
`model.remat` what the backward pass recomputes (see attention.py's
ATTENTION_CHOICES and REMAT_CHOICES here).

Shape suffixes: B batch, T query positions, S key positions, D width, N heads,
H head size, F MLP hidden size, V vocabulary, L layers.

Parameter count (checked against the tree in tests, and against the paper's
counts for its presets with a 50432 vocabulary):

  N = 2 V D + L (4 D^2 + 3 D F + 2 D) + D,
  F = mlp_multiple * ceil(int(8 D / 3) / mlp_multiple).

The published counts leave no room for qk-norm gains, so the qk-LayerNorm here is
parameter-free (normalisation only).
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx

from scaling_jax import attention as attention_lib
from scaling_jax import loop_unrolling
from scaling_jax import sharding


# model.remat: what the backward pass recomputes. "none" saves every activation,
# "block" saves only each block's input (jax.checkpoint per block), and any
# other name is that jax.checkpoint_policies policy applied per block (the
# policies that take no arguments).
REMAT_POLICIES = ("dots_saveable", "nothing_saveable", "everything_saveable",
                  "checkpoint_dots", "checkpoint_dots_with_no_batch_dims",
                  "dots_with_no_batch_dims_saveable")
REMAT_CHOICES = ("none", "block") + REMAT_POLICIES


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Shape and numerics of one transformer; `ModelConfig(**config.model)`."""
  name: str = "custom"
  vocab_size: int = 50432
  width: int = 96
  num_layers: int = 8
  num_heads: int = 4
  seq_len: int = 2048
  mlp_multiple: int = 256
  z_loss: float = 1e-4
  rope_base: float = 10000.0
  norm_eps: float = 1e-5
  attention_block: int = 512
  compute_dtype: str = "float32"
  attention: str = "auto"
  # "block" measured fastest on the 2-core CPU at every benchmark shape; "none"
  # was 1.3-2.7x slower, most likely the traffic of saving every activation
  # (benchmarks/attention_speed.py, docs/benchmarks.md). On a GPU, "block" is
  # also what keeps a big model's activations (L x [B, T, D]) within memory.
  remat: str = "block"

  def __post_init__(self):
    for field in ("vocab_size", "width", "num_layers", "num_heads", "seq_len",
                  "mlp_multiple", "attention_block"):
      value = getattr(self, field)
      if not isinstance(value, int) or value <= 0:
        raise ValueError(f"model.{field} must be a positive int, got {value!r}")
    if self.width % self.num_heads or (self.width // self.num_heads) % 2:
      raise ValueError(
          f"model.width ({self.width}) must split into model.num_heads "
          f"({self.num_heads}) heads of even size (rotary pairs dimensions)")
    if self.compute_dtype not in ("float32", "bfloat16"):
      raise ValueError(f"model.compute_dtype must be 'float32' or 'bfloat16', "
                       f"got {self.compute_dtype!r}")
    if self.attention not in attention_lib.ATTENTION_CHOICES:
      raise ValueError(f"model.attention must be one of "
                       f"{', '.join(attention_lib.ATTENTION_CHOICES)}; "
                       f"got {self.attention!r}")
    if self.remat not in REMAT_CHOICES:
      raise ValueError(
          f"model.remat must be 'none', 'block' or a jax.checkpoint_policies "
          f"name ({', '.join(REMAT_POLICIES)}); got {self.remat!r}")

  @property
  def head_dim(self) -> int:
    return self.width // self.num_heads

  @property
  def mlp_hidden(self) -> int:
    m = self.mlp_multiple
    return m * ((int(8 * self.width / 3) + m - 1) // m)


_TINY = dict(vocab_size=264, seq_len=128, mlp_multiple=16, attention_block=128)

# name -> (width, num_layers, num_heads, extra fields). The first six are the
# paper's shapes; `tiny-*` are byte-level models for CPU scaling studies.
PRESETS = {
    "openlm-11m": (96, 8, 4, {}),
    "openlm-79m": (512, 8, 4, {}),
    "openlm-154m": (576, 24, 8, {}),
    "openlm-411m": (1024, 24, 8, {}),
    "openlm-1b": (2048, 24, 16, {}),
    "openlm-7b": (4096, 32, 32, {}),
    "tiny-0": (16, 2, 2, _TINY),
    "tiny-0.5": (24, 2, 2, _TINY),  # fills the gap so a CPU study has 4 fit sizes
    "tiny-1": (32, 2, 2, _TINY),
    "tiny-2": (48, 3, 3, _TINY),
    "tiny-3": (64, 4, 4, _TINY),
    "tiny-4": (96, 4, 4, _TINY),
    "tiny-5": (128, 6, 4, _TINY),
    "tiny-6": (192, 6, 6, _TINY),
}


def preset(name: str, **overrides) -> ModelConfig:
  """The ModelConfig of a named preset, with any field overridden."""
  if name not in PRESETS:
    raise ValueError(f"unknown model preset {name!r}; known presets: "
                     f"{', '.join(PRESETS)}")
  width, num_layers, num_heads, extra = PRESETS[name]
  fields = dict(name=name, width=width, num_layers=num_layers,
                num_heads=num_heads, **extra)
  fields.update(overrides)
  return ModelConfig(**fields)


def num_params(cfg: ModelConfig) -> int:
  """Parameters of the model, embeddings included (equals the real tree)."""
  d, f = cfg.width, cfg.mlp_hidden
  per_layer = 4 * d * d + 3 * d * f + 2 * d
  return 2 * cfg.vocab_size * d + cfg.num_layers * per_layer + d


def flops_per_token(cfg: ModelConfig) -> float:
  """Training FLOPs per token: 6 N plus attention scores, 12 L T D (PaLM's
  convention, which counts the full, unmasked score matrix)."""
  return 6.0 * num_params(cfg) + 12.0 * cfg.num_layers * cfg.seq_len * cfg.width


def _layer_norm(x, gain, eps):
  x32 = x.astype(jnp.float32)
  mean = x32.mean(-1, keepdims=True)
  var = jnp.square(x32 - mean).mean(-1, keepdims=True)
  y = (x32 - mean) * jax.lax.rsqrt(var + eps)
  if gain is not None:
    y = y * gain
  return y.astype(x.dtype)


def _rotary(x_BTNH, base):
  t, h = x_BTNH.shape[1], x_BTNH.shape[-1]
  inv_freq = base ** (-jnp.arange(0, h, 2, dtype=jnp.float32) / h)
  angle_TK = jnp.arange(t, dtype=jnp.float32)[:, None] * inv_freq[None, :]
  sin, cos = jnp.sin(angle_TK)[:, None, :], jnp.cos(angle_TK)[:, None, :]
  x1, x2 = jnp.split(x_BTNH.astype(jnp.float32), 2, axis=-1)
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x_BTNH.dtype)


def rematerialised(fn, remat: str):
  """`fn` (one transformer block) under the model.remat choice."""
  # The layer scan keeps a block's recomputation apart from its forward pass; the
  # dry run's unrolled copies (its FLOP count) do not, and the TPU compiler merged
  # part of it there, undercounting the step as it runs: so there it is kept.
  prevent_cse = loop_unrolling.unrolling()
  if remat == "none":
    return fn
  if remat == "block":
    return jax.checkpoint(fn, prevent_cse=prevent_cse)
  if remat in REMAT_POLICIES:
    policy = getattr(jax.checkpoint_policies, remat)
    return jax.checkpoint(fn, prevent_cse=prevent_cse, policy=policy)
  raise ValueError(f"model.remat must be one of {', '.join(REMAT_CHOICES)}; "
                   f"got {remat!r}")


def _init(rngs, shape, fan_in, axes, scale=1.0):
  std = scale / math.sqrt(fan_in)
  value = std * jax.random.truncated_normal(rngs.params(), -2.0, 2.0, shape)
  return _param(value.astype(jnp.float32), axes)


def _param(value, axes) -> nnx.Param:
  # Flax's partitioning metadata names the logical axes; sharding.py maps them to
  # the mesh. Not eagerly sharded: the model is also built with no mesh (shapes
  # only, one device), and a Program places the parameters by its jit shardings.
  return nnx.Param(value, out_sharding=axes, eager_sharding=False)


def _unfuse(fused_BTC, parts: int) -> list[jax.Array]:
  """The `parts` outputs of a fused projection, split along axis 2. A split, not
  indexing: its gradient is one concatenation, where indexing's is a zero-padded
  copy per part, summed (4% of a tiny-4 step on CPU, docs/benchmarks.md)."""
  return [part[:, :, 0] for part in jax.lax.split(fused_BTC, (1,) * parts, axis=2)]


class Transformer(nnx.Module):
  """Token ids [B, T] -> logits [B, T, V]."""

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    l, d, n, h, f, v = (cfg.num_layers, cfg.width, cfg.num_heads, cfg.head_dim,
                        cfg.mlp_hidden, cfg.vocab_size)
    out_scale = 1.0 / math.sqrt(2 * l)  # keeps the residual stream's scale flat
    self.embed = _init(rngs, (v, d), d, ("vocab", "embed"))
    self.attn_norm = _param(jnp.ones((l, d)), ("layers", "norm"))
    self.qkv = _init(rngs, (l, d, 3, n, h), d,
                     ("layers", "embed", None, "heads", "head_dim"))
    self.attn_out = _init(rngs, (l, n, h, d), d,
                          ("layers", "heads", "head_dim", "embed"), out_scale)
    self.mlp_norm = _param(jnp.ones((l, d)), ("layers", "norm"))
    self.gate_up = _init(rngs, (l, d, 2, f), d, ("layers", "embed", None, "mlp"))
    self.down = _init(rngs, (l, f, d), f, ("layers", "mlp", "embed"), out_scale)
    self.final_norm = _param(jnp.ones((d,)), ("norm",))
    self.unembed = _init(rngs, (d, v), d, ("embed", "vocab"))

  def _block(self, x_BTD, layer):
    cfg = self.cfg
    dtype = x_BTD.dtype
    y_BTD = _layer_norm(x_BTD, layer["attn_norm"], cfg.norm_eps)
    qkv_BTCNH = jnp.einsum("btd,dcnh->btcnh", y_BTD, layer["qkv"].astype(dtype))
    q_BTNH, k_BTNH, v_BTNH = _unfuse(qkv_BTCNH, 3)
    q_BTNH = _rotary(_layer_norm(q_BTNH, None, cfg.norm_eps), cfg.rope_base)
    k_BTNH = _rotary(_layer_norm(k_BTNH, None, cfg.norm_eps), cfg.rope_base)
    q_BTNH = sharding.constrain(q_BTNH / math.sqrt(cfg.head_dim),
                                ("batch", "seq", "act_heads", None))
    o_BTNH = attention_lib.causal_attention(q_BTNH, k_BTNH, v_BTNH, cfg.attention,
                              cfg.attention_block)
    x_BTD = x_BTD + jnp.einsum("btnh,nhd->btd", o_BTNH,
                               layer["attn_out"].astype(dtype))
    x_BTD = sharding.constrain(x_BTD, ("batch", "seq", "act_embed"))
    y_BTD = _layer_norm(x_BTD, layer["mlp_norm"], cfg.norm_eps)
    gu_BTCF = jnp.einsum("btd,dcf->btcf", y_BTD, layer["gate_up"].astype(dtype))
    gu_BTCF = sharding.constrain(gu_BTCF, ("batch", "seq", None, "act_mlp"))
    gate_BTF, up_BTF = _unfuse(gu_BTCF, 2)
    h_BTF = jax.nn.silu(gate_BTF) * up_BTF
    x_BTD = x_BTD + jnp.einsum("btf,fd->btd", h_BTF, layer["down"].astype(dtype))
    return sharding.constrain(x_BTD, ("batch", "seq", "act_embed"))

  def __call__(self, tokens_BT: jax.Array) -> jax.Array:
    cfg = self.cfg
    dtype = jnp.dtype(cfg.compute_dtype)
    if tokens_BT.shape[1] > cfg.seq_len:
      raise ValueError(f"input length {tokens_BT.shape[1]} exceeds "
                       f"model.seq_len {cfg.seq_len}")
    x_BTD = jnp.take(self.embed[...], tokens_BT, axis=0).astype(dtype)
    x_BTD = sharding.constrain(x_BTD, ("batch", "seq", "act_embed"))
    layers = dict(attn_norm=self.attn_norm[...], qkv=self.qkv[...],
                  attn_out=self.attn_out[...], mlp_norm=self.mlp_norm[...],
                  gate_up=self.gate_up[...], down=self.down[...])
    block = rematerialised(self._block, cfg.remat)
    x_BTD, _ = jax.lax.scan(lambda x, layer: (block(x, layer), None), x_BTD, layers,
                            unroll=loop_unrolling.scan_unroll())
    x_BTD = _layer_norm(x_BTD, self.final_norm[...], cfg.norm_eps)
    logits_BTV = jnp.einsum("btd,dv->btv", x_BTD, self.unembed[...].astype(dtype))
    return sharding.constrain(logits_BTV.astype(jnp.float32),
                              ("batch", "seq", "act_vocab"))


def loss_terms(logits_BTV: jax.Array, targets_BT: jax.Array):
  """Per-token cross-entropy and log-partition: ([B, T], [B, T]) in float32."""
  lse_BT = jax.nn.logsumexp(logits_BTV, axis=-1)
  target_logit_BT = jnp.take_along_axis(logits_BTV, targets_BT[..., None],
                                        axis=-1)[..., 0]
  return lse_BT - target_logit_BT, lse_BT


def loss_fn(model: Transformer, batch_BT1: jax.Array):
  """Mean next-token cross-entropy plus z-loss on a packed [B, T+1] batch."""
  inputs_BT, targets_BT = batch_BT1[:, :-1], batch_BT1[:, 1:]
  nll_BT, lse_BT = loss_terms(model(inputs_BT), targets_BT)
  ce = nll_BT.mean()
  z = model.cfg.z_loss * jnp.square(lse_BT).mean()
  return ce + z, dict(loss=ce, z_loss=z)


def abstract_model(cfg: ModelConfig) -> Transformer:
  """The model with shapes only; nothing is allocated."""
  return nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0)))
