"""Attention implementations and remat choices: same numbers as the reference."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling_jax import attention as attention_lib
from scaling_jax import model as model_lib

_ON_GPU = jax.default_backend() == "gpu"


def _qkv(seq_len, dtype, heads=3, head_dim=16, batch=2):
  shape = (batch, seq_len, heads, head_dim)
  q, k, v, g = (jax.random.normal(jax.random.key(i), shape) for i in range(4))
  return (q / np.sqrt(head_dim)).astype(dtype), k.astype(dtype), v.astype(dtype), g


@functools.lru_cache(maxsize=None)
def _dense_float32(seq_len, block):
  q, k, v, g = _qkv(seq_len, jnp.float32)
  return _out_and_grads("dense", q, k, v, g, block)


def _out_and_grads(attention, q, k, v, g, block):
  def f(q, k, v):
    out = attention_lib.causal_attention(q, k, v, attention, block)
    return jnp.vdot(out.astype(jnp.float32), g), out
  (_, out), grads = jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2),
                                               has_aux=True))(q, k, v)
  return [np.asarray(x, np.float32) for x in (out,) + grads]


def _assert_all_close(got, want, atol, rtol):
  for name, a, b in zip(("out", "dq", "dk", "dv"), got, want):
    np.testing.assert_allclose(a, b, atol=atol, rtol=rtol, err_msg=name)


# "auto" is one of these per shape (test_auto_* below); cudnn needs a GPU.
_CHOICES = ["xla", "blockwise"] + (["cudnn"] if _ON_GPU else [])


# 96 = 3 blocks of 32; 100 and 20 are not multiples of the block (padded).
@pytest.mark.slow
@pytest.mark.parametrize("attention,seq_len", [("xla", 100), ("blockwise", 96),
                                               ("blockwise", 100),
                                               ("blockwise", 20)])
def test_attention_matches_dense_in_float32(attention, seq_len):
  q, k, v, g = _qkv(seq_len, jnp.float32)
  _assert_all_close(_out_and_grads(attention, q, k, v, g, block=32),
                    _dense_float32(seq_len, 32), atol=2e-5, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("attention", _CHOICES)
def test_attention_in_bfloat16_matches_float32_dense(attention):
  q, k, v, g = (x.astype(jnp.bfloat16) for x in _qkv(100, jnp.float32))
  want = _dense_float32(100, 32)
  # bfloat16 keeps 8 bits of mantissa: 2^-8 relative on inputs of order one.
  _assert_all_close(_out_and_grads(attention, q, k, v, g, block=32), want,
                    atol=5e-2, rtol=5e-2)


def test_plain_dense_is_a_correct_reference():
  """The reference itself against a loop over query positions in numpy."""
  q, k, v, _ = _qkv(7, jnp.float32, heads=1, head_dim=4, batch=1)
  q, k, v = (np.asarray(x[0, :, 0], np.float64) for x in (q, k, v))
  want = []
  for t in range(7):
    scores = k[:t + 1] @ q[t]
    p = np.exp(scores - scores.max())
    want.append((p / p.sum()) @ v[:t + 1])
  got = attention_lib.causal_attention(*(jnp.asarray(x, jnp.float32)[None, :, None]
                                     for x in (q, k, v)), "dense", 4)
  np.testing.assert_allclose(got[0, :, 0], np.array(want), atol=1e-6)


def test_auto_picks_cudnn_only_where_it_runs(monkeypatch):
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert attention_lib.auto_attention(2048, 64, jnp.bfloat16, 512) == "cudnn"
  assert attention_lib.auto_attention(2048, 64, jnp.float32, 512) != "cudnn"
  assert attention_lib.auto_attention(2048, 12, jnp.bfloat16, 512) != "cudnn"
  monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
  assert attention_lib.auto_attention(2048, 64, jnp.bfloat16, 512) != "cudnn"


def test_auto_follows_the_measured_cpu_rule(monkeypatch):
  monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
  # docs/benchmarks.md, "Attention implementations and rematerialisation (CPU)".
  assert attention_lib.auto_attention(128, 16, jnp.float32, 128) == "dense"
  assert attention_lib.auto_attention(2048, 16, jnp.float32, 128) == "blockwise"


@functools.lru_cache(maxsize=None)
def _loss_and_grads(**overrides):
  """(loss, gradients) and the forward jaxpr of a 1-layer model's loss."""
  cfg = model_lib.preset("tiny-2", num_layers=1, seq_len=48, attention_block=16,
                         **overrides)
  graphdef, params = nnx.split(model_lib.Transformer(cfg, rngs=nnx.Rngs(0)),
                               nnx.Param)
  batch = jax.random.randint(jax.random.key(1), (2, 49), 0, 258)
  def f(p):
    return model_lib.loss_fn(nnx.merge(graphdef, p), batch)[0]
  return jax.jit(jax.value_and_grad(f))(params), jax.make_jaxpr(f)(params).jaxpr


def _remat_policies(jaxpr) -> list:
  """The `policy` of every jax.checkpoint in `jaxpr`, nested ones included."""
  found = []
  for eqn in jaxpr.eqns:
    if "policy" in eqn.params and "prevent_cse" in eqn.params:
      found.append(eqn.params["policy"])
    for value in eqn.params.values():
      inner = getattr(value, "jaxpr", value)
      if hasattr(inner, "eqns"):
        found += _remat_policies(inner)
  return found


# Every policy takes the same path (getattr on jax.checkpoint_policies), so two
# stand for them numerically; the jaxpr test below covers each by name.
@pytest.mark.slow
@pytest.mark.parametrize("remat", ["block", "dots_saveable"])
def test_remat_choices_give_the_same_loss_and_gradients(remat):
  # xla attention: the blockwise one brings checkpoints of its own.
  (want_loss, want_grads), _ = _loss_and_grads(remat="none", attention="xla")
  (loss, grads), _ = _loss_and_grads(remat=remat, attention="xla")
  np.testing.assert_allclose(loss, want_loss, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(want_grads)):
    np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("remat", model_lib.REMAT_CHOICES)
def test_remat_choice_reaches_the_program(remat):
  """One checkpoint (around the scanned block) with the named policy, or none."""
  cfg = model_lib.preset("tiny-0", num_layers=2, seq_len=16, attention="xla",
                         remat=remat)
  graphdef, params = nnx.split(model_lib.Transformer(cfg, rngs=nnx.Rngs(0)),
                               nnx.Param)
  batch = jnp.zeros((1, 17), jnp.int32)
  jaxpr = jax.make_jaxpr(
      lambda p: model_lib.loss_fn(nnx.merge(graphdef, p), batch)[0])(params)
  want = {"none": [], "block": [None]}.get(
      remat, [getattr(jax.checkpoint_policies, remat, "missing")])
  assert _remat_policies(jaxpr.jaxpr) == want


@pytest.mark.slow
def test_attention_choice_reaches_the_model():
  """Model-level check, seq 48 over 16-token blocks: loss and gradients agree."""
  (want_loss, want_grads), dense = _loss_and_grads(attention="dense",
                                                   remat="none")
  for attention in ("xla", "blockwise"):
    (loss, grads), jaxpr = _loss_and_grads(attention=attention, remat="none")
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(want_grads)):
      np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-3)
    assert str(jaxpr) != str(dense), attention


def test_config_errors_list_the_choices():
  with pytest.raises(ValueError, match="model.attention.*auto, xla, cudnn"):
    model_lib.preset("tiny-1", attention="flash")
  with pytest.raises(ValueError, match="model.remat.*'block'.*dots_saveable"):
    model_lib.preset("tiny-1", remat="dots")
