"""Ahead-of-time compilation for accelerators this machine does not have.

`--config.launch.dry_run=compile --config.launch.topology=v5e:4x4` compiles each
unit's train step and evaluation programs for that TPU slice on this CPU (libtpu
compiles; nothing runs) and says, before anyone books the pod, what one chip
needs: memory against its HBM, FLOPs and bytes per step, the collectives, a
roofline step time, MFU and the sweep's chip-hours (aot/dry_run.py).

  chips.py        peak FLOP/s, HBM and bandwidths per chip generation, with sources
  topology.py     a topology name -> its devices (needs libtpu: the [tpu] extra)
  hlo_stats.py    collectives (count, bytes by kind) from compiled HLO text
  compile_unit.py one unit's programs compiled: memory, costs, collectives
  roofline.py     step time, tokens/s, MFU from those costs and a chip's peaks
  dry_run.py      the sweep: distinct shapes compiled once, refusals, tables
"""
