r"""The paper's 104 runs compiled for TPU slices on this CPU (issue 26).

  python -m scaling_jax.main --config=configs/paper_pods.py --workdir=/tmp/paper_pods

The units of configs/grid.py:paper (bf16, sequence 2048, the released batches and
warmups), each on the slice SLICES gives its size, with launch.dry_run='compile':
nothing trains; each distinct shape is compiled for its slice (scaling_jax/aot), and
the table gives per-chip memory, fits or not (with a mesh that fits), the roofline
step time, MFU and chip-hours. experiments/paper_grid/README.md reads the result.

Variants (after the colon): slices=small puts every size on the small slice, so
the large sizes' refusals (and the meshes that fit) show.
"""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
    "grid", os.path.join(os.path.dirname(os.path.abspath(__file__)), "grid.py"))
grid = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(grid)

from scaling_jax import config_lib  # noqa: E402  pylint: disable=wrong-import-position

# Slice per size, for two sequences of 2048 tokens per chip at the released batch
# (the project has no gradient accumulation, and a v5e's 16 GiB holds about two:
# the float32 logits over a 50k vocabulary dominate a small model's step): 64 ->
# 32 chips, 512 -> 256, 256 -> 128, and the 6.9B model's 2048 -> 1024 v5p chips.
SLICES = {"openlm-11m": "v5e:4x8", "openlm-79m": "v5e:16x16",
          "openlm-154m": "v5e:16x16", "openlm-411m": "v5e:16x16",
          "openlm-1b": "v5e:8x16", "openlm-7b": "v5p:8x8x16"}
SMALL_SLICE = "v5e:2x4"  # one host: what slices=small puts every size on

_KNOBS = dict(slices="sized")
VARIANTS = {
    "": "the paper's 104 units, each size on its slice (SLICES), compiled not trained",
    "slices=small": "every unit on the small slice (v5e:2x4): the large sizes are "
                    "refused, with a mesh that fits where one does",
}


def get_config(arg: str = ""):
  variant = config_lib.parse_arg(arg, _KNOBS, "configs/paper_pods.py")
  if variant["slices"] not in ("sized", "small"):
    raise ValueError(f"configs/paper_pods.py: slices={variant['slices']!r}; choose "
                     f"'sized' (default) or 'small'")
  config = grid.get_config("paper")
  config.launch.dry_run = "compile"
  config.launch.topology = SMALL_SLICE
  if variant["slices"] == "sized":
    config.sweep = [dict(u, **{"launch.topology": SLICES[u["model"]]})
                    for u in config.sweep]
  return config
