"""Model: parameter counts, presets, attention equivalence, loss and FLOPs."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling_jax import model as model_lib

PAPER_COUNTS = {
    "openlm-11m": 10_569_312,
    "openlm-79m": 78_914_048,
    "openlm-154m": 153_677_376,
    "openlm-411m": 411_616_256,
    "openlm-1b": 1_439_795_200,
    "openlm-7b": 6_889_410_560,
}


@pytest.mark.parametrize("name,count", sorted(PAPER_COUNTS.items()))
def test_paper_presets_give_published_counts(name, count):
  assert model_lib.num_params(model_lib.preset(name)) == count


@pytest.mark.parametrize("name", ["openlm-11m", "openlm-154m", "tiny-1", "tiny-4",
                                  "tiny-6"])
def test_num_params_equals_real_tree(name):
  cfg = model_lib.preset(name)
  _, state = nnx.split(model_lib.abstract_model(cfg), nnx.Param)
  tree_count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state))
  assert tree_count == model_lib.num_params(cfg)


def test_tiny_presets_span_cpu_scales():
  counts = [model_lib.num_params(model_lib.preset(n))
            for n in model_lib.PRESETS if n.startswith("tiny")]
  assert counts == sorted(counts)
  assert 10_000 < counts[0] < 60_000 and 1_000_000 < counts[-1] < 3_000_000


def test_unknown_preset_lists_known_ones():
  with pytest.raises(ValueError, match="unknown model preset 'nope'.*tiny-1"):
    model_lib.preset("nope")


def test_bad_shape_names_field():
  with pytest.raises(ValueError, match="model.num_heads"):
    model_lib.preset("tiny-1", num_heads=3)
  with pytest.raises(ValueError, match="model.attention_block"):
    model_lib.preset("tiny-1", attention_block=0)


def test_flops_per_token_is_6n_plus_attention():
  cfg = model_lib.preset("openlm-411m")
  attention = 12 * 24 * 2048 * 1024
  assert model_lib.flops_per_token(cfg) == 6 * 411_616_256 + attention


def _model(**overrides):
  cfg = model_lib.preset("tiny-2", **overrides)
  return model_lib.Transformer(cfg, rngs=nnx.Rngs(0))


@pytest.mark.slow
def test_blockwise_attention_matches_dense_with_gradients():
  dense = _model(seq_len=96, attention="dense", num_layers=1)
  blockwise = _model(seq_len=96, attention="blockwise", attention_block=32,
                     num_layers=1)
  batch = jax.random.randint(jax.random.key(1), (2, 97), 0, 258)

  def loss_and_grad(model):
    graphdef, params = nnx.split(model, nnx.Param)
    def f(p):
      return model_lib.loss_fn(nnx.merge(graphdef, p), batch)[0]
    return jax.jit(jax.value_and_grad(f))(params)

  (l1, g1), (l2, g2) = loss_and_grad(dense), loss_and_grad(blockwise)
  np.testing.assert_allclose(l1, l2, rtol=1e-5)
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
    np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-3)


@pytest.mark.slow
def test_blockwise_attention_never_builds_full_score_matrix():
  model = _model(seq_len=512, attention="blockwise", attention_block=128,
                 num_layers=1)
  graphdef, params = nnx.split(model, nnx.Param)
  batch = jnp.zeros((1, 513), jnp.int32)
  def f(p):
    return model_lib.loss_fn(nnx.merge(graphdef, p), batch)[0]
  hlo = jax.jit(jax.grad(f)).lower(params).as_text()
  heads = model.cfg.num_heads
  assert f"{heads},512,512]" not in hlo.replace(" ", "")
  assert f"{heads},128,128]" in hlo.replace(" ", "")


def _jitted(model, fn):
  graphdef, params = nnx.split(model, nnx.Param)
  return jax.jit(lambda p, *args: fn(nnx.merge(graphdef, p), *args)), params


@pytest.mark.slow
def test_model_is_causal():
  apply, params = _jitted(_model(), lambda m, t: m(t))
  tokens = jax.random.randint(jax.random.key(2), (1, 32), 0, 258)
  changed = tokens.at[0, 20].set((tokens[0, 20] + 1) % 258)
  a, b = apply(params, tokens), apply(params, changed)
  np.testing.assert_allclose(a[:, :20], b[:, :20], atol=1e-5)
  assert not np.allclose(a[:, 20:], b[:, 20:])


@pytest.mark.slow
def test_loss_starts_near_log_vocab_and_includes_z_loss():
  loss, params = _jitted(_model(), model_lib.loss_fn)
  batch = jax.random.randint(jax.random.key(3), (4, 65), 0, 258)
  total, aux = loss(params, batch)
  assert abs(float(aux["loss"]) - np.log(264)) < 0.5
  assert float(aux["z_loss"]) > 0
  np.testing.assert_allclose(total, aux["loss"] + aux["z_loss"], rtol=1e-6)


@pytest.mark.slow
def test_bfloat16_compute_runs_close_to_float32():
  batch = jax.random.randint(jax.random.key(4), (2, 33), 0, 258)
  f32_loss, params = _jitted(_model(), model_lib.loss_fn)
  bf16_loss, _ = _jitted(_model(compute_dtype="bfloat16"), model_lib.loss_fn)
  f32, bf16 = f32_loss(params, batch)[1]["loss"], bf16_loss(params, batch)[1]["loss"]
  assert abs(float(f32) - float(bf16)) < 0.05


def test_logical_axes_cover_every_parameter():
  cfg = model_lib.preset("tiny-1")
  _, state = nnx.split(model_lib.abstract_model(cfg), nnx.Param)
  # With no logical-axis rules set, Flax's spec of a parameter is its logical
  # names (its out_sharding metadata); one without any has an empty spec.
  axes = nnx.to_pure_dict(nnx.get_partition_spec(state))
  shapes = nnx.to_pure_dict(state)
  assert set(axes) == set(shapes)
  for key, names in axes.items():
    assert len(names) == len(shapes[key].shape), key


def test_config_roundtrips_through_dict():
  cfg = model_lib.preset("tiny-3", seq_len=64)
  assert model_lib.ModelConfig(**dataclasses.asdict(cfg)) == cfg
