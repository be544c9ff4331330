"""Collectives in compiled (optimized, per-device) HLO text: count and bytes by kind.

Bytes are each collective's result size on one device, the data it moves in
(all-gather, all-reduce, all-to-all, collective-permute) or the shard it keeps
(reduce-scatter, whose input is that times the group size). Async pairs
(`-start` / `-done`) count once, at their start.

Each collective must appear once in the text, outside loops: TPU programs are read
as compiled with `compile_unit.COUNTING_OPTIONS`, which turn off the compiler's
async collective fusion (it repeats a collective in every fusion it overlaps) and
windowed einsums (a loop of collective-permutes shown once).
"""
from __future__ import annotations

import re

KINDS = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all",
         "collective-permute")

_BYTES = {"pred": 1, "s8": 1, "u8": 1, "f8e4m3fn": 1, "f8e5m2": 1, "s16": 2, "u16": 2,
          "f16": 2, "bf16": 2, "s32": 4, "u32": 4, "f32": 4, "s64": 8, "u64": 8,
          "f64": 8, "c64": 8, "c128": 16}
# `%name = <result shape> <op>(` with the op one of the kinds, maybe `-start`.
_INSTR = re.compile(r"=\s*(?P<shape>.+?)\s+(?P<op>" + "|".join(KINDS) +
                    r")(?:-start)?\(")
_ARRAY = re.compile(r"\b([a-z]+[0-9]*[a-z0-9]*)\[([0-9,]*)\]")


def shape_bytes(shape_text: str) -> int:
  """Bytes of an HLO shape such as 'bf16[8,128]{1,0}' or a tuple of them."""
  total = 0
  for dtype, dims in _ARRAY.findall(shape_text):
    if dtype not in _BYTES:
      continue  # token[] and the like carry no data
    size = 1
    for d in filter(None, dims.split(",")):
      size *= int(d)
    total += size * _BYTES[dtype]
  return total


def collectives(hlo_text: str) -> dict[str, dict[str, int]]:
  """{kind: {"count": n, "bytes": b}} over every instruction of `hlo_text`."""
  out = {k: {"count": 0, "bytes": 0} for k in KINDS}
  for line in hlo_text.splitlines():
    match = _INSTR.search(line)
    if match:
      entry = out[match["op"]]
      entry["count"] += 1
      shape = match["shape"]
      if "-start(" in line and shape.startswith("("):
        # An async start's result is (operands, results[, context]): count the
        # results' half, not the buffers it carries along.
        # Scalars (u32[] and the like) are sync context, not data.
        parts = [(t, d) for t, d in _ARRAY.findall(shape) if d]
        shape = " ".join(f"{t}[{d}]" for t, d in parts[len(parts) // 2:])
      entry["bytes"] += shape_bytes(shape)
  return {k: v for k, v in out.items() if v["count"]}
