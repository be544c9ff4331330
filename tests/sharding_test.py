"""Sharding on 8 fake CPU devices: mesh errors, rule table, sharded == 1 device."""
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from scaling_jax import model as model_lib
from scaling_jax import optim
from scaling_jax import sharding
from scaling_jax import train


SMALL = dict(name="tiny-2", num_heads=4, width=64, seq_len=32, num_layers=2)


def _mesh(data=1, fsdp=1, tensor=1, devices=None):
  return sharding.make_mesh(dict(data=data, fsdp=fsdp, tensor=tensor), devices)


def test_eight_fake_devices():
  assert jax.device_count() == 8


def test_mesh_fills_data_axis():
  mesh = _mesh(data=-1, fsdp=2, tensor=2)
  assert dict(mesh.shape) == dict(data=2, fsdp=2, tensor=2)
  assert sharding.batch_multiple(mesh) == 4


@pytest.mark.parametrize("sizes,message", [
    (dict(data=1, fsdp=3, tensor=1), "needs 3 devices but 8"),
    (dict(data=-1, fsdp=3, tensor=1), "does not divide the 8 devices"),
    (dict(data=-1, fsdp=-1, tensor=1), "at most one may be -1"),
])
def test_mesh_that_does_not_divide_devices_fails_clearly(sizes, message):
  with pytest.raises(ValueError, match=message):
    sharding.make_mesh(sizes)


def test_spec_leaves_indivisible_dims_whole():
  mesh = _mesh(fsdp=4, tensor=2)
  assert sharding.spec(("embed", "vocab"), (64, 259), mesh) == jax.sharding.PartitionSpec(
      "fsdp", None)
  assert sharding.spec(("vocab", "embed"), (264, 64), mesh) == jax.sharding.PartitionSpec(
      "tensor", "fsdp")


def _abstract_params(**model):
  _, abstract = nnx.split(model_lib.abstract_model(model_lib.preset(**model)), nnx.Param)
  return abstract


def test_mesh_is_jax_make_mesh_with_auto_axes():
  mesh = _mesh(data=2, fsdp=2, tensor=2)
  assert mesh.axis_names == sharding.MESH_AXES
  assert set(mesh.axis_types) == {jax.sharding.AxisType.Auto}


def test_rules_replicate_what_the_mesh_does_not_divide():
  mesh = _mesh(fsdp=4, tensor=2)
  rules = dict(sharding.logical_axis_rules(_abstract_params(**SMALL, vocab_size=259),
                                           mesh))
  # width 64 / fsdp 4 and 4 heads / tensor 2 divide; a vocabulary of 259 does not.
  assert rules["embed"] == "fsdp" and rules["heads"] == "tensor"
  assert rules["vocab"] is None
  assert rules["layers"] is None and rules["norm"] is None  # no rule: replicated
  rules = dict(sharding.logical_axis_rules(_abstract_params(**SMALL, vocab_size=264),
                                           mesh))
  assert rules["vocab"] == "tensor"
  # On a mesh of one device nothing is sharded.
  one = dict(sharding.logical_axis_rules(_abstract_params(**SMALL),
                                         _mesh(devices=jax.devices()[:1])))
  assert set(one.values()) == {None}


@pytest.mark.parametrize("mesh_sizes", [dict(fsdp=4, tensor=2), dict(data=2, fsdp=2,
                                                                      tensor=2),
                                        dict(data=8), dict(tensor=8)])
@pytest.mark.parametrize("model", [dict(SMALL, vocab_size=259),
                                   dict(SMALL, num_heads=2, width=48, vocab_size=264)])
def test_flax_metadata_shardings_equal_the_per_dimension_rule(mesh_sizes, model):
  """param_shardings (nnx.logical_axis_rules over out_sharding metadata) places
  each parameter as the per-dimension rule `spec` does."""
  mesh = _mesh(**mesh_sizes)
  abstract = _abstract_params(**model)
  got = sharding.param_shardings(abstract, mesh)
  shapes = jax.tree.map(lambda v: v.shape, nnx.to_pure_dict(abstract))
  axes = nnx.to_pure_dict(nnx.get_partition_spec(abstract))  # no rules: logical names
  for name, names in axes.items():
    assert got[name].spec == sharding.spec(names, shapes[name], mesh), name


def test_constrain_needs_a_set_mesh():
  x = jnp.ones((8, 4))
  assert sharding.constrain(x, ("batch", None)) is x  # no mesh: untouched
  mesh = _mesh(data=2, fsdp=2, tensor=2)
  with jax.set_mesh(mesh):
    y = jax.jit(lambda a: sharding.constrain(a * 2, ("batch", None)))(x)
  assert y.sharding.spec[0] == ("data", "fsdp")  # batch over data x fsdp


def _optim_config():
  return ml_collections.ConfigDict(dict(
      peak_lr=3e-3, final_lr=3e-5, beta1=0.9, beta2=0.95, eps=1e-8,
      weight_decay=0.033, grad_clip=1.0))


def _program(mesh, cfg):
  return train.Program(cfg, optim.make_optimizer(_optim_config()), mesh)


def _lrs():  # not at import: multihost_test imports this before jax.distributed starts
  return optim.learning_rates(_optim_config(), warmup_steps=2, total_steps=10)


def _two_steps(program, batches):
  state = program.init(0)
  losses = []
  for batch, lr in zip(batches, _lrs()):
    state, metrics = program.step(state, batch, lr)
    losses.append(float(metrics["loss"]))
  return losses, state



@pytest.fixture(scope="module")
def sharded_run():
  cfg = model_lib.preset(**SMALL)
  rng = np.random.default_rng(0)
  batches = [rng.integers(0, 258, (8, 33), dtype=np.int32) for _ in range(3)]
  program = _program(_mesh(fsdp=4, tensor=2), cfg)
  losses, state = _two_steps(program, batches)
  return cfg, batches, program, losses, state


@pytest.mark.slow
def test_sharded_step_matches_single_device(sharded_run):
  cfg, batches, _, sharded, _ = sharded_run
  single, _ = _two_steps(_program(_mesh(devices=jax.devices()[:1]), cfg), batches)
  np.testing.assert_allclose(sharded, single, rtol=2e-5)


def test_no_large_parameter_is_replicated(sharded_run):
  state = sharded_run[-1]
  for path, leaf in jax.tree_util.tree_leaves_with_path(state["params"]):
    if leaf.size >= 4096:  # every matrix; gains are small and stay replicated
      assert not leaf.sharding.is_fully_replicated, jax.tree_util.keystr(path)
      shard = leaf.addressable_shards[0].data
      assert shard.size <= leaf.size // 2, jax.tree_util.keystr(path)
  # Adam moments follow their parameters' layout.
  mu = state["opt_state"].inner_state[1][0].mu
  assert mu["qkv"].sharding == state["params"]["qkv"].sharding


def test_step_is_compiled_once_and_donates_state(sharded_run):
  _, batches, program, _, state = sharded_run
  state = jax.tree.map(jnp.copy, state)  # the fixture's state stays usable
  old = state["params"]["embed"]
  state, _ = program.step(state, batches[0], _lrs()[0])
  assert old.is_deleted()
  assert program._step._cache_size() == 1  # pylint: disable=protected-access


def test_logits_fn_exposes_batch_multiple(sharded_run):
  cfg, _, program, _, state = sharded_run
  logits_fn = program.logits_fn(state["params"])
  assert logits_fn.batch_multiple == 4 and logits_fn.seq_len == 32  # data x fsdp
  out = logits_fn(np.zeros((8, 32), np.int32))
  assert out.shape == (8, 32, cfg.vocab_size) and out.dtype == np.float32
  assert math.isfinite(float(out.sum()))
  with pytest.raises(ValueError, match="multiple of batch_multiple 4"):
    logits_fn(np.zeros((2, 32), np.int32))
