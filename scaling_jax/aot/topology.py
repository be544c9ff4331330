"""A TPU topology name -> the devices of that slice, for compiling on this CPU.

libtpu (the `[tpu]` extra: `pip install 'jax[tpu]==<installed jax>'`) compiles for
any slice it knows, whether or not a TPU is attached; `get_topology_desc` gives
device objects that meshes and shardings accept but that cannot hold data.
"""
from __future__ import annotations

import functools
import importlib.util
import os

INSTALL_HINT = ("pip install 'jax[tpu]==<your jax version>' (about 700 MB; the "
                "project's [tpu] extra)")


class LibtpuMissing(RuntimeError):
  """libtpu is not installed, so no TPU program can be compiled here."""


def libtpu_available() -> bool:
  return importlib.util.find_spec("libtpu") is not None


@functools.lru_cache(maxsize=None)
def devices(topology: str) -> tuple:
  """The devices of `topology` (e.g. 'v5e:4x4', 'v5p:2x2x2', 'v4:2x2x4')."""
  if not libtpu_available():
    raise LibtpuMissing(f"config.launch.topology={topology!r} needs libtpu to compile "
                        f"for TPU on this machine: {INSTALL_HINT}")
  # No metadata server to ask on a machine outside Google Cloud: skip the query.
  os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")
  # libtpu takes a lock file meant for processes sharing a TPU; compiling shares
  # nothing, so a second process (a test's subprocess, two dry runs) may load it.
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
  from jax.experimental import topologies  # pylint: disable=import-outside-toplevel
  try:
    desc = topologies.get_topology_desc(platform="tpu", topology_name=topology)
  except Exception as e:  # libtpu's own message says what went wrong
    raise ValueError(f"config.launch.topology={topology!r}: libtpu could not describe "
                     f"this slice: {e} (names look like 'v5e:4x4', 'v5p:2x2x2', "
                     f"'v6e:8x8')") from e
  return tuple(desc.devices)
