"""The compile dry run's logic on this CPU's fake devices (no libtpu needed):
loop-corrected costs, model-FLOP agreement, the mesh search and its refusal, the
replicated-parameter flag, and the collectives parser. tests/aot_tpu_test.py
compiles for real TPU slices where libtpu is installed."""
import dataclasses
import json
import os
import types

import jax
import pytest

from scaling_jax import config_lib
from scaling_jax import loop_unrolling
from scaling_jax import model as model_lib
from scaling_jax import optim
from scaling_jax import plan as plan_lib
from scaling_jax import sharding
from scaling_jax import train
from scaling_jax.aot import chips as chips_lib
from scaling_jax.aot import compile_unit
from scaling_jax.aot import dry_run
from scaling_jax.aot import hlo_stats
from scaling_jax.aot import roofline
from scaling_jax.aot import topology
from scaling_jax.launch import options
from scaling_jax.launch import units

# The three compile-heavy tests (several programs each, about two minutes in all)
# run with the [tpu] extra's tests (README, Extras: `bash tests/tpu_extra.sh test
# tests/aot_test.py`), where the compile dry run is used; CI's 30 minutes on two
# cores leave them out, and everything else here runs everywhere.
WITH_TPU_EXTRA = pytest.mark.skipif(
    not topology.libtpu_available(),
    reason="compile-heavy: runs with the [tpu] extra's tests (README, Extras)")

# Wide enough that matrix products dominate a step, small enough to compile in seconds.
SMALL = model_lib.ModelConfig(name="aot-small", vocab_size=512, width=128, num_layers=4,
                              num_heads=4, seq_len=128, mlp_multiple=16, remat="none",
                              attention="dense", attention_block=128)


# For the mesh tests, where only memory and shardings matter: compiles fastest.
TINY = dataclasses.replace(SMALL, vocab_size=256, width=64, num_layers=2, seq_len=64,
                           attention_block=64)


def _config(model=SMALL, batch=8, mesh=None):
  config = config_lib.default_config()
  config.model = dataclasses.asdict(model)
  config.train.global_batch = batch
  config.mesh = mesh or dict(data=-1, fsdp=1, tensor=1)
  config.evals = {}  # the train step only (tests/aot_tpu_test.py compiles evals too)
  return config


def _unit(tmp_path, config, name="u0"):
  return units.WorkUnit(name=name, config=config, plan=plan_lib.plan(config),
                        workdir=str(tmp_path / "runs" / name))


@pytest.mark.slow  # compiles several programs
@WITH_TPU_EXTRA
def test_step_costs_are_corrected_for_the_layer_loop_and_match_model_flops():
  config = _config()
  counted = compile_unit.step_costs(config, jax.devices()[:1])
  mesh = sharding.make_mesh(config.mesh, devices=jax.devices()[:1])
  tx = optim.make_optimizer(config.optim)
  scanned = compile_unit.costs(train.Program(SMALL, tx, mesh).lower_step(8).compile())
  with loop_unrolling.unrolled_loops():
    unrolled = compile_unit.costs(train.Program(SMALL, tx, mesh).lower_step(8).compile())
  # XLA counts the scanned body once: a 4-layer step reads as far less work...
  assert scanned["flops"] < 0.5 * unrolled["flops"]
  # ...and the 1- and 2-layer extrapolation recovers the unrolled program's count.
  assert counted["flops"] == pytest.approx(unrolled["flops"], rel=0.01)
  assert counted["bytes_accessed"] == pytest.approx(unrolled["bytes_accessed"], rel=0.05)
  # Without remat the count is the model's 6N' + 12LTD; recomputing each block's
  # forward in the backward pass adds about a third.
  model_flops = roofline.model_flops_per_token(SMALL) * 8 * SMALL.seq_len
  assert counted["flops"] / model_flops == pytest.approx(1.0, abs=0.1)
  remat_cfg = dataclasses.replace(SMALL, remat="block")
  remat = compile_unit.step_costs(_config(remat_cfg), jax.devices()[:1])
  assert remat["flops"] / counted["flops"] == pytest.approx(4 / 3, abs=0.1)
  executed = roofline.executed_flops_per_token(remat_cfg) * 8 * SMALL.seq_len
  assert remat["flops"] == pytest.approx(executed, rel=0.05)


@pytest.mark.slow  # compiles the scanned step, then its unrolled copies
def test_a_scanned_step_compiled_first_does_not_hide_a_loop_from_the_count():
  # The dry run compiles the scanned step (memory) before the unrolled copies
  # (FLOPs). jax reused the scanned trace in the copies, which then counted a loop
  # body once: 0.70 of the executed FLOPs here instead of 1.09 (CPU counts the
  # elementwise work too, a large share at width 32).
  cfg = dataclasses.replace(TINY, num_layers=3, width=32, seq_len=256,
                            attention="blockwise", attention_block=32, remat="block")
  config = _config(cfg)
  compile_unit.compile_memory(config, jax.devices()[:1])
  step = compile_unit.step_costs(config, jax.devices()[:1])
  executed = roofline.executed_flops_per_token(cfg) * 8 * cfg.seq_len
  assert 0.95 < step["flops"] / executed < 1.25


def test_sharded_matmul_costs_are_exact():
  """One chip's share of a row-sharded matmul: the figures the roofline reads."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from jax.sharding import NamedSharding, PartitionSpec as P  # pylint: disable=import-outside-toplevel
  mesh = jax.sharding.Mesh(np.array(jax.devices()[:4]), ("rows",))
  m, k, n = 1024, 512, 256
  x = jax.ShapeDtypeStruct((m, k), jnp.float32, sharding=NamedSharding(mesh, P("rows")))
  w = jax.ShapeDtypeStruct((k, n), jnp.float32, sharding=NamedSharding(mesh, P()))
  compiled = jax.jit(lambda a, b: a @ b).lower(x, w).compile()
  costs = compile_unit.costs(compiled)
  rows = m // 4
  assert costs["flops"] == 2 * rows * k * n
  assert costs["bytes_accessed"] == 4 * (rows * k + k * n + rows * n)
  assert costs["collectives"] == {}
  mem = compile_unit.memory(compiled)
  assert (mem["arguments"], mem["outputs"]) == (4 * (rows * k + k * n), 4 * rows * n)


def test_model_flops_per_token_by_hand():
  cfg = SMALL
  f = cfg.mlp_hidden
  blocks = cfg.num_layers * (4 * cfg.width ** 2 + 3 * cfg.width * f + 2 * cfg.width)
  matmul_params = blocks + cfg.vocab_size * cfg.width + cfg.width  # unembed, final norm
  assert roofline.model_flops_per_token(cfg) == (
      6 * matmul_params + 12 * cfg.num_layers * cfg.seq_len * cfg.width)


def test_executed_flops_per_token_by_hand():
  # What the compiled count should read: remat recomputes the blocks' forward, and
  # blockwise attention computes 10 of 16 score tiles (T = 4 blocks) and recomputes
  # its own forward. A count that missed either would drift from this by 5-30%.
  d, layers, t, v = SMALL.width, SMALL.num_layers, SMALL.seq_len, SMALL.vocab_size
  head = v * d
  blocks = model_lib.num_params(SMALL) - 2 * head
  scores = 4 * layers * t * d  # forward QK^T and AV over the full T x T
  assert roofline.executed_flops_per_token(SMALL) == roofline.model_flops_per_token(SMALL)
  remat = dataclasses.replace(SMALL, remat="block")
  assert roofline.executed_flops_per_token(remat) == 8 * blocks + 6 * head + 4 * scores
  tiled = dataclasses.replace(remat, seq_len=512, attention="blockwise")
  assert roofline.executed_flops_per_token(tiled) == pytest.approx(
      8 * blocks + 6 * head + 5 * (4 * layers * 512 * d) * 10 / 16)
  auto = dataclasses.replace(tiled, attention="auto")  # resolved as off a GPU
  assert roofline.executed_flops_per_token(auto) == roofline.executed_flops_per_token(tiled)
  assert roofline.executed_flops_per_token(
      dataclasses.replace(SMALL, remat="checkpoint_dots")) is None


def test_roofline_takes_the_slowest_term():
  chip = chips_lib.Chip("toy", peak_flops=1e12, hbm_bytes=1e9, hbm_bw=1e11,
                        collective_bw=1e10)
  step = dict(flops=2e12, bytes_accessed=1e11,
              collectives={"all-reduce": {"count": 1, "bytes": 2e10}})
  est = roofline.estimate(step, chip, chips=4, tokens_per_step=1000, cfg=SMALL)
  assert est["terms"] == dict(compute=2.0, memory=1.0, collectives=4.0)
  assert est["step_seconds"] == 4.0 and est["bound"] == "collectives"
  assert est["tokens_per_second"] == 250.0
  model = roofline.model_flops_per_token(SMALL) * 1000
  assert est["mfu"] == pytest.approx(model / (4.0 * 4 * 1e12))
  assert est["hlo_over_executed"] == pytest.approx(
      2e12 * 4 / (roofline.executed_flops_per_token(SMALL) * 1000))


def _fake_slice(monkeypatch, hbm_bytes):
  chip = chips_lib.Chip("fake", 1e14, hbm_bytes, 1e12, 1e11)
  monkeypatch.setattr(topology, "devices", lambda name: tuple(jax.devices()[:4]))
  monkeypatch.setattr(chips_lib, "chip_of", lambda name: chip)
  launch = options.default_launch_config()
  launch.topology = "fake:2x2"
  return launch


@pytest.mark.slow  # compiles several programs
@WITH_TPU_EXTRA
def test_unit_too_large_is_refused_with_a_mesh_that_fits(tmp_path, monkeypatch):
  config = _config(TINY)
  data = compile_unit.compile_memory(config, jax.devices()[:4])["memory"]["total"]
  # A chip a byte short of data parallelism's need: the search's first mesh, full
  # FSDP, holds a quarter of the train state per chip.
  launch = _fake_slice(monkeypatch, data - 1)
  unit = _unit(tmp_path, config)
  with pytest.raises(dry_run.CompileRefused, match="--config.mesh.fsdp=4"):
    dry_run.run([unit], launch, log=lambda s: None)
  record = json.load(open(os.path.join(unit.workdir, dry_run.COMPILE_FILENAME)))
  assert not record["fits"] and record["configured"]["mesh"]["data"] == 4
  assert record["chosen"]["mesh"] == dict(data=1, fsdp=4, tensor=1)
  assert record["chosen"]["memory"]["total"] < data
  assert record["chip_hours"] > 0 and 0 < record["roofline"]["mfu"] < 1


@pytest.mark.slow  # compiles several programs
@WITH_TPU_EXTRA
def test_large_replicated_parameter_is_flagged(tmp_path, monkeypatch):
  """The planted bug: the unembedding left whole on every chip of an FSDP mesh."""
  launch = _fake_slice(monkeypatch, 2 ** 40)
  original = sharding.param_shardings

  def unembed_replicated(abstract, mesh):
    out = original(abstract, mesh)
    out["unembed"] = sharding.replicated(mesh)
    return out
  monkeypatch.setattr(sharding, "param_shardings", unembed_replicated)
  unit = _unit(tmp_path, _config(TINY, mesh=dict(data=1, fsdp=4, tensor=1)))
  with pytest.raises(dry_run.CompileRefused, match=r"parameter \['unembed'\]"):
    dry_run.run([unit], launch, log=lambda s: None)


def test_candidate_meshes_shard_parameters_first():
  meshes = dry_run.candidate_meshes(8, global_batch=16, heads=4)
  assert meshes[0] == dict(data=1, fsdp=8, tensor=1)
  assert all(m["data"] * m["fsdp"] * m["tensor"] == 8 for m in meshes)
  assert all(m["tensor"] <= 4 for m in meshes)  # 4 heads: no 8-way tensor parallelism
  # A batch of 2 leaves only meshes whose data x fsdp divides it.
  assert all(16 % (m["data"] * m["fsdp"]) == 0 and m["data"] * m["fsdp"] <= 2
             for m in dry_run.candidate_meshes(8, global_batch=2, heads=4))


def test_collectives_parsed_with_bytes():
  hlo = "\n".join([
      "  %all-reduce.1 = f32[1024]{0} all-reduce(f32[1024]{0} %p), replica_groups={}",
      "  %ag = (bf16[4,8]{1,0}, bf16[16,8]{1,0}) all-gather-start(bf16[4,8]{1,0} %x)",
      "  %agd = bf16[16,8]{1,0} all-gather-done(%ag)",
      "  %rs = (f32[8]{0}, f32[2]{0}) reduce-scatter(f32[8]{0} %a, f32[8]{0} %b)",
      "  %cp = (f32[4]{0}, f32[4]{0}, u32[], u32[]) collective-permute-start(f32[4] %y)",
      "  %fusion = f32[3]{0} fusion(f32[3]{0} %all-reduce.1)",
  ])
  assert hlo_stats.collectives(hlo) == {
      "all-reduce": {"count": 1, "bytes": 4096},
      "all-gather": {"count": 1, "bytes": 16 * 8 * 2},
      "reduce-scatter": {"count": 1, "bytes": (8 + 2) * 4},
      "collective-permute": {"count": 1, "bytes": 16},
  }


def test_bad_settings_are_refused(monkeypatch):
  launch = options.default_launch_config()
  launch.dry_run = "compiled"
  with pytest.raises(ValueError, match="config.launch.dry_run"):
    options.check_launch_config(launch)
  with pytest.raises(ValueError, match="config.launch.topology"):
    dry_run.topology_of(types.SimpleNamespace(config=_config()), options.default_launch_config())
  with pytest.raises(ValueError, match="unknown chip 'v9'.*chips.py"):
    chips_lib.chip_of("v9:2x2")
  monkeypatch.setattr(topology, "libtpu_available", lambda: False)
  topology.devices.cache_clear()
  with pytest.raises(topology.LibtpuMissing, match=r"pip install 'jax\[tpu\]"):
    topology.devices("v5e:2x2")


def test_a_program_too_large_for_the_chip_counts_as_not_fitting():
  message = ("RESOURCE_EXHAUSTED: Ran out of memory on HBM, the total memory required "
             "for HLO temporaries (39.01G) exceeds available HBM (15.75G).")

  class Lowered:
    def __init__(self, error):
      self.error = error

    def compile(self, compiler_options=None):
      del compiler_options
      raise self.error
  compiled, mem = compile_unit.compile_or_oom(Lowered(RuntimeError(message)))
  assert compiled is None and mem["total"] == int(39.01 * 2 ** 30)
  assert mem["out_of_memory"] == message
  with pytest.raises(RuntimeError, match="INVALID_ARGUMENT"):  # any other error is raised
    compile_unit.compile_or_oom(Lowered(RuntimeError("INVALID_ARGUMENT: bad shape")))
