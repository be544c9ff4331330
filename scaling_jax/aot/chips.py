"""Per-chip peaks of the accelerators the compile dry run estimates for.

Sources (the vendors' published per-chip figures, read 2026-12):
  TPU v4   cloud.google.com/tpu/docs/v4: 275 TFLOP/s bf16, 32 GiB HBM2 at 1200
           GB/s; collective bandwidth = the pod's all-reduce bandwidth (1.1 PB/s)
           over its 4096 chips.
  TPU v5e  cloud.google.com/tpu/docs/v5e: 197 TFLOP/s bf16, 16 GiB at 819 GB/s;
           all-reduce bandwidth 51.2 TB/s over 256 chips.
  TPU v5p  cloud.google.com/tpu/docs/v5p: 459 TFLOP/s bf16, 95 GiB at 2765 GB/s;
           ICI 1200 GB/s bidirectional per chip, so 600 GB/s one way.
  TPU v6e  cloud.google.com/tpu/docs/v6e: 918 TFLOP/s bf16, 32 GB at 1638 GB/s;
           all-reduce bandwidth 102.4 TB/s over 256 chips.
  H100     NVIDIA H100 SXM datasheet: 989 TFLOP/s dense bf16, 80 GB HBM3 at
           3.35 TB/s; NVLink 900 GB/s bidirectional, 450 GB/s one way.

`collective_bw` is one chip's one-way share of collective bandwidth. For v4, v5e
and v6e the pod's all-reduce figure over its chip count gives exactly half the
bidirectional ICI figure where both are published (v5e: 200 of 400 GB/s, v6e:
400 of 800), so the same half is used for v5p and NVLink.
"""
from __future__ import annotations

import dataclasses

GIB = 2 ** 30


@dataclasses.dataclass(frozen=True)
class Chip:
  name: str
  peak_flops: float  # dense bf16 FLOP/s
  hbm_bytes: float
  hbm_bw: float  # bytes/s
  collective_bw: float  # bytes/s one way, per chip


CHIPS = {
    "v4": Chip("TPU v4", 275e12, 32 * GIB, 1200e9, 1.1e15 / 4096),
    "v5e": Chip("TPU v5e", 197e12, 16 * GIB, 819e9, 51.2e12 / 256),
    "v5p": Chip("TPU v5p", 459e12, 95 * GIB, 2765e9, 1200e9 / 2),
    "v6e": Chip("TPU v6e", 918e12, 32e9, 1638e9, 102.4e12 / 256),
    "h100": Chip("NVIDIA H100 SXM", 989e12, 80e9, 3.35e12, 900e9 / 2),
}


def chip_of(topology: str) -> Chip:
  """The chip of a topology name such as 'v5e:4x4' (the part before ':')."""
  generation = topology.split(":", 1)[0].lower()
  if generation not in CHIPS:
    raise ValueError(f"config.launch.topology {topology!r}: unknown chip "
                     f"{generation!r}; use one of {', '.join(CHIPS)} before the ':' "
                     f"(e.g. 'v5e:4x4', 'v5p:2x2x2'), or add a row to "
                     f"scaling_jax/aot/chips.py CHIPS")
  return CHIPS[generation]
