"""Orbax checkpoints of the train state: periodic and final, keep-N, resume from the latest in the workdir."""

import os

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  """Saves and restores (TrainState, run metadata) under `directory`, keeping the newest `keep`."""

  def __init__(self, directory: str, keep: int):
    self._manager = ocp.CheckpointManager(
        os.path.abspath(directory),  # Orbax needs absolute paths.
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

  def latest_step(self):
    """The newest saved step, or None."""
    return self._manager.latest_step()

  def delete_after(self, step: int) -> None:
    """Drop checkpoints past `step`: after a resume from `step` they belong to a future that is redone."""
    for later in self._manager.all_steps():
      if later > step:
        self._manager.delete(later)

  def save(self, step: int, state, meta: dict) -> None:
    """Write `state` and the JSON-able `meta` (e.g. wall seconds so far) as checkpoint `step`."""
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)

  def restore(self, step: int, like):
    """(state, meta) of checkpoint `step`, laid out with the shapes, dtypes and shardings of `like`."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    return restored.state, restored.meta

  def close(self) -> None:
    """Wait for pending writes and release the manager."""
    self._manager.wait_until_finished()
    self._manager.close()
