"""Device mesh (data, fsdp, tensor) and the one table mapping logical axes to it.

Parameters carry logical axis names (model.py); activations are constrained with
`constrain(x, names)` while a mesh is active. A dimension whose size the mapped
mesh axes do not divide stays unsharded rather than failing, so one rule table
serves every model size.
"""
from __future__ import annotations

import contextlib
import math

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

MESH_AXES = ("data", "fsdp", "tensor")

# logical axis -> mesh axes. Parameters shard `embed` over fsdp (ZeRO-3 style)
# and heads/mlp/vocab over tensor; activations keep their width whole.
RULES = {
    "batch": ("data", "fsdp"),
    "embed": ("fsdp",),
    "vocab": ("tensor",),
    "heads": ("tensor",),
    "mlp": ("tensor",),
    "act_heads": ("tensor",),
    "act_mlp": ("tensor",),
    "act_vocab": ("tensor",),
    # layers, head_dim, norm, seq, act_embed: replicated.
}

_ACTIVE_MESH: list[Mesh] = []


def maybe_initialize_distributed(config) -> None:
  """Joins a multi-process job when `config.distributed.initialize` is set.

  Empty coordinator fields let JAX detect the cluster (SLURM, TPU, ...).
  """
  dist = config.get("distributed")
  if not dist or not dist.initialize:
    return
  if jax.distributed.is_initialized():
    return
  kwargs = {}
  if dist.coordinator_address:
    kwargs = dict(coordinator_address=dist.coordinator_address,
                  num_processes=dist.num_processes, process_id=dist.process_id)
  jax.distributed.initialize(**kwargs)


def mesh_sizes(mesh_config, num_devices: int) -> dict[str, int]:
  """config.mesh resolved on `num_devices` devices (data = -1 takes those left over).

  Pure arithmetic, so the launcher checks every unit's mesh before starting any.
  """
  sizes = {a: int(mesh_config.get(a, 1)) for a in MESH_AXES}
  fixed = math.prod(s for s in sizes.values() if s != -1)
  if list(sizes.values()).count(-1) > 1 or any(s == 0 or s < -1
                                               for s in sizes.values()):
    raise ValueError(f"mesh sizes {sizes}: each of config.mesh.{{data,fsdp,tensor}} "
                     f"must be a positive int, and at most one may be -1")
  if -1 in sizes.values():
    if num_devices % fixed:
      raise ValueError(
          f"config.mesh {sizes}: fsdp x tensor = {fixed} does not divide the "
          f"{num_devices} devices; choose sizes whose product divides "
          f"{num_devices}")
    sizes = {a: num_devices // fixed if s == -1 else s for a, s in sizes.items()}
  total = math.prod(sizes.values())
  if total != num_devices:
    raise ValueError(
        f"config.mesh {sizes} needs {total} devices but {num_devices} are "
        f"available; make data x fsdp x tensor equal {num_devices} (or set "
        f"config.mesh.data = -1), or, for a sweep on CPU, give each unit {total} host "
        f"devices with --config.launch.cpu_devices_per_unit={total}")
  return sizes


def make_mesh(mesh_config, devices=None) -> Mesh:
  """A (data, fsdp, tensor) mesh; data = -1 takes the devices left over."""
  devices = list(jax.devices() if devices is None else devices)
  sizes = mesh_sizes(mesh_config, len(devices))
  shape = tuple(sizes[a] for a in MESH_AXES)
  try:
    from jax.experimental import mesh_utils  # pylint: disable=g-import-not-at-top
    grid = mesh_utils.create_device_mesh(shape, devices=devices)
  except (ValueError, AssertionError, NotImplementedError):
    grid = np.asarray(devices).reshape(shape)
  return Mesh(grid, MESH_AXES)


def spec(names, shape, mesh: Mesh) -> P:
  """PartitionSpec for logical `names`; dims the mesh does not divide stay whole."""
  used, parts = set(), []
  for name, size in zip(names, shape):
    axes = tuple(a for a in RULES.get(name, ()) if a not in used
                 and mesh.shape[a] > 1)
    if axes and size % math.prod(mesh.shape[a] for a in axes) == 0:
      used.update(axes)
      parts.append(axes[0] if len(axes) == 1 else axes)
    else:
      parts.append(None)
  return P(*parts)


def param_shardings(axes_tree, shapes_tree, mesh: Mesh):
  """NamedShardings for a parameter tree given its logical axes and shapes."""
  return jax.tree.map(
      lambda names, x: NamedSharding(mesh, spec(names, x.shape, mesh)),
      axes_tree, shapes_tree, is_leaf=lambda n: isinstance(n, tuple))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(RULES["batch"], None))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_multiple(mesh: Mesh) -> int:
  """Batch sizes must be multiples of this (the data-parallel size)."""
  return math.prod(mesh.shape[a] for a in RULES["batch"])


@contextlib.contextmanager
def activation_sharding(mesh: Mesh):
  """Within this context, traced `constrain` calls pin activations to `mesh`."""
  _ACTIVE_MESH.append(mesh)
  try:
    yield mesh
  finally:
    _ACTIVE_MESH.pop()


def constrain(x: jax.Array, names) -> jax.Array:
  """Sharding constraint by logical names; a no-op outside `activation_sharding`."""
  if not _ACTIVE_MESH:
    return x
  mesh = _ACTIVE_MESH[-1]
  return jax.lax.with_sharding_constraint(
      x, NamedSharding(mesh, spec(names, x.shape, mesh)))


def global_batch(local_batch: np.ndarray, mesh: Mesh) -> jax.Array:
  """Assembles each process's rows into one global array sharded over batch."""
  sharding = batch_sharding(mesh)
  global_shape = (local_batch.shape[0] * jax.process_count(),) + local_batch.shape[1:]
  return jax.make_array_from_process_local_data(sharding, local_batch, global_shape)
