"""Device mesh (data, fsdp, tensor) and the one table mapping logical axes to it.

Parameters carry logical axis names in Flax's own partitioning metadata
(`nnx.Param(..., out_sharding=names)`, model.py); `param_shardings` turns them
into shardings through `nnx.logical_axis_rules`, with rules made for the model
and mesh at hand by `logical_axis_rules`. Activations are constrained with
`constrain(x, names)` while a mesh is set (`jax.set_mesh`). A dimension whose
size the mapped mesh axes do not divide stays unsharded rather than failing, so
one table (RULES) serves every model size: that is what the rule generator adds
to Flax's fixed name -> mesh-axis rules.
"""
from __future__ import annotations

import math

import jax
import numpy as np
from flax import nnx
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

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
  """A (data, fsdp, tensor) mesh; data = -1 takes the devices left over.

  Auto axes: XLA propagates shardings from the parameters, the batch and the
  `constrain` hints, as the sharding tests expect (jax.make_mesh's default,
  Explicit, would make every op's sharding part of its type).
  """
  devices = list(jax.devices() if devices is None else devices)
  sizes = mesh_sizes(mesh_config, len(devices))
  return jax.make_mesh(tuple(sizes[a] for a in MESH_AXES), MESH_AXES,
                       axis_types=(AxisType.Auto,) * len(MESH_AXES), devices=devices)


def _mesh_axes(name, size: int, mesh_shape, used=()):
  """The mesh axes RULES gives logical `name` for a dimension of `size`, or None
  where the mesh does not divide it (or there is no rule, or no axis left)."""
  axes = tuple(a for a in RULES.get(name, ()) if a not in used and mesh_shape[a] > 1)
  if not axes or size % math.prod(mesh_shape[a] for a in axes):
    return None
  return axes[0] if len(axes) == 1 else axes


def _flat(axes) -> tuple:
  return () if axes is None else (axes,) if isinstance(axes, str) else tuple(axes)


def spec(names, shape, mesh) -> P:
  """PartitionSpec for logical `names`; dims the mesh does not divide stay whole."""
  used, parts = set(), []
  for name, size in zip(names, shape):
    axes = _mesh_axes(name, size, mesh.shape, used)
    used.update(_flat(axes))
    parts.append(axes)
  return P(*parts)


def _params_by_name(abstract_params: nnx.State):
  """(logical names, shape) of each parameter, from its out_sharding metadata."""
  variables = jax.tree.leaves(abstract_params,
                              is_leaf=lambda v: isinstance(v, nnx.Variable))
  return [(tuple(v.get_metadata()["out_sharding"]), tuple(v.get_value().shape))
          for v in variables]


def logical_axis_rules(abstract_params: nnx.State, mesh: Mesh) -> tuple:
  """Flax logical-axis rules ((name, mesh axes or None), ...) for these
  parameters on `mesh`.

  A name keeps RULES' mesh axes only if they divide its size in every parameter
  that uses it; otherwise it is replicated. Every name gets a rule, so none
  reaches the mesh unmapped.
  """
  params = _params_by_name(abstract_params)
  sizes: dict[str, set] = {}
  for names, shape in params:
    if len(names) != len(shape):
      raise ValueError(f"parameter of shape {shape} has {len(names)} logical axes "
                       f"{names}; give one name (or None) per dimension")
    for name, size in zip(names, shape):
      if name is not None:
        sizes.setdefault(name, set()).add(size)
  rules = []
  for name in sorted(sizes):
    choices = {_mesh_axes(name, size, mesh.shape) for size in sizes[name]}
    rules.append((name, choices.pop() if len(choices) == 1 else None))
  mapping = dict(rules)
  for names, _ in params:
    used = [a for n in names if n is not None for a in _flat(mapping[n])]
    if len(used) != len(set(used)):
      raise ValueError(f"RULES shard parameter axes {names} over mesh axes {used}, "
                       f"one of them twice; give those logical names distinct "
                       f"mesh axes in scaling_jax/sharding.py RULES")
  return tuple(rules)


def param_shardings(abstract_params: nnx.State, mesh: Mesh) -> dict:
  """NamedShardings (a pure dict, like nnx.to_pure_dict's) for parameters
  annotated with Flax partitioning metadata, via nnx.logical_axis_rules."""
  with nnx.logical_axis_rules(logical_axis_rules(abstract_params, mesh)):
    specs = nnx.to_pure_dict(nnx.get_partition_spec(abstract_params))
  return jax.tree.map(lambda p: NamedSharding(mesh, p), specs,
                      is_leaf=lambda x: isinstance(x, P))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(RULES["batch"], None))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_multiple(mesh: Mesh) -> int:
  """Batch sizes must be multiples of this (the data-parallel size)."""
  return math.prod(mesh.shape[a] for a in RULES["batch"])


def constrain(x: jax.Array, names) -> jax.Array:
  """Sharding constraint by logical names while a mesh is set (jax.set_mesh);
  a no-op without one (a model applied on one device, outside a Program)."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty:
    return x
  return jax.lax.with_sharding_constraint(x, spec(names, x.shape, mesh))


def global_batch(local_batch: np.ndarray, mesh: Mesh) -> jax.Array:
  """Assembles each process's rows into one global array sharded over batch."""
  sharding = batch_sharding(mesh)
  global_shape = (local_batch.shape[0] * jax.process_count(),) + local_batch.shape[1:]
  return jax.make_array_from_process_local_data(sharding, local_batch, global_shape)
