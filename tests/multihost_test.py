"""Two processes on this machine form one global mesh and train in lockstep."""
import pytest
import json
import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np

from scaling_jax import model as model_lib
import sharding_test

pytestmark = pytest.mark.slow  # every test here is of the full tier

REPO = pathlib.Path(__file__).resolve().parents[1]

WORKER = r"""
import json, sys
import ml_collections, numpy as np, jax
from scaling_jax import model as model_lib, sharding
import sharding_test
port, pid = sys.argv[1], int(sys.argv[2])
config = ml_collections.ConfigDict(dict(distributed=dict(
    initialize=True, coordinator_address=f"127.0.0.1:{port}", num_processes=2,
    process_id=pid)))
sharding.maybe_initialize_distributed(config)
assert jax.process_count() == 2 and jax.device_count() == 4, jax.devices()
mesh = sharding.make_mesh(dict(data=-1, fsdp=2, tensor=1))
program = sharding_test._program(mesh, model_lib.preset(**json.loads(sys.argv[3])))
batches = np.load(sys.argv[4])
state = program.init(0)
losses = []
for batch, lr in zip(batches, sharding_test._lrs()):
  local = batch[pid * 4:(pid + 1) * 4]  # this process's rows of the global batch
  state, metrics = program.step(state, local, lr)
  losses.append(float(metrics["loss"]))
print("LOSSES " + json.dumps(losses), flush=True)
jax.distributed.shutdown()
"""

MODEL = dict(name="tiny-1", seq_len=16, width=16, num_layers=1)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_form_one_mesh_and_match_one_device(tmp_path):
  rng = np.random.default_rng(0)
  batches = rng.integers(0, 258, (2, 8, 17), dtype=np.int32)
  np.save(tmp_path / "batches.npy", batches)
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
             JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]))
  port = _free_port()
  procs = [subprocess.Popen(
      [sys.executable, "-c", WORKER, str(port), str(i), json.dumps(MODEL),
       str(tmp_path / "batches.npy")], cwd=REPO, env=env, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True) for i in range(2)]
  outputs = []
  try:
    for proc in procs:
      out, _ = proc.communicate(timeout=150)
      outputs.append(out)
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
  for proc, out in zip(procs, outputs):
    assert proc.returncode == 0, out[-3000:]
  losses = [json.loads(next(line for line in out.splitlines()
                            if line.startswith("LOSSES "))[7:]) for out in outputs]
  assert losses[0] == losses[1]

  mesh = sharding_test._mesh(devices=jax.devices()[:1])
  program = sharding_test._program(mesh, model_lib.preset(**MODEL))
  reference, _ = sharding_test._two_steps(program, list(batches))
  np.testing.assert_allclose(losses[0], reference, rtol=2e-5)
