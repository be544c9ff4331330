"""A unit trained on a mesh that shards parameters (data=2 fsdp=4 on CPU host
devices) gets through its in-context evaluations. With every scored batch left
queued until the end, dozens of queued programs that gather parameters deadlocked
XLA:CPU's collectives and the process died of SIGABRT at the unit's first
evaluation, 5 times in 5 here (scoring.MAX_IN_FLIGHT bounds the queue). Run in a
child process, since an abort would end pytest."""
import pytest
import os
import subprocess
import sys

from conftest import REPO_ROOT

pytestmark = pytest.mark.slow  # every test here is of the full tier

_CHILD = r'''
import sys
from scaling_jax import config_lib, train
config = config_lib.default_config()
config.model.update(dict(name="tiny-1", width=32, num_layers=2, num_heads=2, seq_len=32))
config.data.cache_dir = sys.argv[1]
config.train.update(dict(tokens_per_param=0.15, global_batch=8, eval_every_tokens=512,
                         checkpoint_every_tokens=2048, log_every_steps=5))
config.evals.val.update(dict(max_tokens=2048, batch_size=8))
config.mesh.update(dict(data=2, fsdp=4, tensor=1))
rows = train.train_run(config, sys.argv[2])
print("evaluated at steps", [r["step"] for r in rows])
'''


def test_a_unit_sharded_over_fsdp_gets_through_its_evaluations(tmp_path):
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu",
             PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                      os.environ.get("PYTHONPATH")])))
  done = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "cache"),
                         str(tmp_path / "unit")], env=env, capture_output=True,
                        text=True, timeout=240)
  assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
  assert "evaluated at steps [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26]" in done.stdout, done.stdout
