"""Orbax checkpoints of the train state: periodic and final, keep-N, resume from the newest good one.

Each checkpoint carries a CRC-32 of every array it holds, so flipped or missing bytes are found when it
is read back, instead of surfacing later as a "diverged" run. A bad checkpoint is moved aside (kept for
inspection, never deleted) and the run resumes from the one before it.
"""

import os
import zlib

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

CORRUPT_DIR = 'corrupt'  # Under the checkpoint directory's parent: <workdir>/corrupt/<name>-<step>.


class CorruptCheckpointError(RuntimeError):
  """A checkpoint that cannot be read, or whose arrays do not match the checksums saved with them."""


def fingerprint(state) -> list[int]:
  """The CRC-32 of each array of `state`, in tree order (replicated arrays: every process sees them)."""
  return [zlib.crc32(np.ascontiguousarray(np.asarray(leaf)).tobytes())
          for leaf in jax.tree.leaves(jax.device_get(state))]


class Checkpointer:
  """Saves and restores (TrainState, run metadata) under `directory`, keeping the newest `keep`."""

  def __init__(self, directory: str, keep: int):
    self.directory = os.path.abspath(directory)  # Orbax needs absolute paths.
    self._manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

  def steps(self) -> list[int]:
    """The steps of the checkpoints here, oldest first."""
    return sorted(self._manager.all_steps())

  def delete_after(self, step: int) -> None:
    """Drop checkpoints past `step`: after a resume from `step` they belong to a future that is redone."""
    for later in self._manager.all_steps():
      if later > step:
        self._manager.delete(later)

  def save(self, step: int, state, meta: dict) -> None:
    """Write `state` and the JSON-able `meta` (e.g. wall seconds so far) as checkpoint `step`."""
    meta = meta | {'crc32': fingerprint(state)}
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)

  def restore(self, step: int, like):
    """(state, meta) of checkpoint `step`, laid out like `like`; CorruptCheckpointError if it is bad."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    path = os.path.join(self.directory, str(step))
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    except Exception as e:  # noqa: BLE001  TensorStore and orbax raise many kinds for damaged files.
      raise CorruptCheckpointError(f'checkpoint {path} cannot be read: {type(e).__name__}: '
                                   f'{str(e).splitlines()[0][:200] if str(e) else ""}') from e
    if 'crc32' not in restored.meta:  # Written before checkpoints carried checksums: not verifiable.
      logging.warning('checkpoint %s has no checksums to verify it against', path)
    elif restored.meta['crc32'] != fingerprint(restored.state):
      raise CorruptCheckpointError(f'checkpoint {path} is corrupt: its arrays do not match the '
                                   'checksums saved with them')
    return restored.state, restored.meta

  def restore_latest(self, like):
    """(step, state, meta) of the newest good checkpoint, or (0, like, None) when there is none.

    A bad checkpoint is logged by path and moved to <workdir>/corrupt/, and the one before it is tried.
    When the oldest one is bad too, CorruptCheckpointError: starting over is the user's call.
    """
    steps = sorted(self._manager.all_steps(), reverse=True)
    for i, step in enumerate(steps):
      try:
        return (step, *self.restore(step, like))
      except CorruptCheckpointError as e:
        if i == len(steps) - 1:
          raise CorruptCheckpointError(f'{e}, and no older checkpoint is left; move it away to start '
                                       'the run over') from e
        logging.error('%s; resuming from the checkpoint before it', e)
        self._quarantine(step)
    return 0, like, None

  def _quarantine(self, step: int) -> None:
    """Move checkpoint `step` out of the manager's sight, keeping its files for inspection."""
    if jax.process_index() == 0:
      parent, name = os.path.split(self.directory)
      target = base = os.path.join(parent, CORRUPT_DIR, f'{name}-{step}')
      os.makedirs(os.path.dirname(target), exist_ok=True)
      n = 1
      while os.path.exists(target):  # The same step may go bad again after a rerun: keep both.
        n += 1
        target = f'{base}.{n}'
      os.replace(os.path.join(self.directory, str(step)), target)
      logging.error('moved the bad checkpoint to %s', target)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # noqa: PLC0415
      multihost_utils.sync_global_devices(f'quarantine {self.directory} {step}')
    self._manager.reload()

  def close(self) -> None:
    """Wait for pending writes and release the manager."""
    self._manager.wait_until_finished()
    self._manager.close()
