"""Data parallelism over every device (all hosts) with one jax.sharding Mesh: batch split, state replicated."""

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from jaxnets.train.state import CARRIED

DATA_AXIS = 'data'


def data_mesh() -> Mesh:
  """A 1-D mesh over all devices of all processes.

  Auto axes: the compiler propagates the batch sharding through every op (JAX 0.10 defaults to
  Explicit, which would make each model's code carry sharding types).
  """
  return jax.make_mesh((jax.device_count(),), (DATA_AXIS,), axis_types=(AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
  """Every device holds the whole value (parameters, optimizer state, metrics)."""
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """The leading (batch) axis split across the mesh."""
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(batch_size: int, field: str = 'data.batch_size') -> None:
  """The global batch must split evenly over the devices."""
  if batch_size % jax.device_count():
    raise ValueError(f'{field}={batch_size} is not divisible by the {jax.device_count()} devices; '
                     f'choose a multiple of {jax.device_count()}')


def put_batch(mesh: Mesh, local_batch):
  """Global batch-sharded arrays from this process's slice of the batch (any pytree of arrays)."""
  sharding = batch_sharded(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local_batch)


def state_sharding(mesh: Mesh, state, batch_collections=CARRIED):
  """The train state's sharding: replicated, except the model_state collections that hold one row per
  example (a recurrent net's carried state), which are split by batch like the data."""
  def leaf(path, _):
    keys = [getattr(k, 'key', getattr(k, 'name', None)) for k in path]
    per_example = len(keys) > 1 and keys[0] == 'model_state' and keys[1] in batch_collections
    return batch_sharded(mesh) if per_example else replicated(mesh)
  return jax.tree_util.tree_map_with_path(leaf, state)
