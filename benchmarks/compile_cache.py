r"""Start-up of a unit with JAX's persistent compilation cache cold and warm.

  python benchmarks/compile_cache.py [--repeats=3]

Each measurement trains one unit of configs/grid.py:smoke (tiny-0) for one step
(`train.stop_after_steps=1`) in a fresh process and times `train_run`: data
opening, init, compiling (or reading from the cache), the step and its
checkpoint. Three caches:
  cold        an empty cache directory
  warm        filled by a unit of the same shape and M (another seed)
  warm, M'    filled by a unit of the same shape at another M: the learning
              rate is an input of the step (optim.py), so this unit runs the
              same programs and reads them from the cache too
Prints the median seconds of each.
"""
import importlib.util
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

_REPEATS = flags.DEFINE_integer("repeats", 3, "Runs per measurement (median).")
_CHILD = flags.DEFINE_string("child", "", "Internal: run one unit, print seconds.")

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _smoke_unit(multiplier: float, seed: int, workdir: str, cache_dir: str):
  spec = importlib.util.spec_from_file_location("grid", ROOT / "configs" / "grid.py")
  grid = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(grid)
  config = grid.get_config("smoke")
  config.sweep = [dict(model="tiny-0", tokens_per_param=multiplier, seed=seed)]
  from scaling_jax.launch import units as units_lib  # pylint: disable=g-import-not-at-top
  (unit,) = units_lib.build_units(config, workdir)
  unit.config.train.stop_after_steps = 1
  unit.config.train.compilation_cache_dir = cache_dir
  return unit


def _child(args: dict) -> None:
  from scaling_jax import train  # pylint: disable=g-import-not-at-top
  unit = _smoke_unit(args["M"], args["seed"], args["workdir"], args["cache_dir"])
  start = time.perf_counter()
  train.train_run(unit.config, unit.workdir)
  print(json.dumps(dict(seconds=time.perf_counter() - start)))


def _time_unit(multiplier, seed, cache_dir) -> float:
  with tempfile.TemporaryDirectory() as workdir:
    args = json.dumps(dict(M=multiplier, seed=seed, workdir=workdir,
                           cache_dir=cache_dir))
    out = subprocess.run([sys.executable, __file__, f"--child={args}"],
                         check=True, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def main(argv):
  del argv
  if _CHILD.value:
    _child(json.loads(_CHILD.value))
    return
  times = {"cold": [], "warm": [], "warm, M'": []}
  for _ in range(_REPEATS.value):
    with tempfile.TemporaryDirectory() as cache:
      times["cold"].append(_time_unit(20, 0, cache))  # fills the cache
      times["warm"].append(_time_unit(20, 1, cache))
    with tempfile.TemporaryDirectory() as cache:
      _time_unit(10, 0, cache)
      times["warm, M'"].append(_time_unit(20, 0, cache))
  for name, values in times.items():
    print(f"start to first step, {name:9s} cache: median "
          f"{statistics.median(values):.1f}s over {len(values)} "
          f"({', '.join(f'{v:.1f}' for v in values)})")


if __name__ == "__main__":
  app.run(main)
