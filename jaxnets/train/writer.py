"""Metrics to TensorBoard event files and a plain JSON-lines log, written by process 0 only."""

import json
import os

import jax

from jaxnets.train.record import strict_json


class MetricWriter:
  """Writes {name: scalar} per step to `workdir/metrics.jsonl` and TensorBoard events in `workdir/tb`."""

  def __init__(self, workdir: str):
    self._active = jax.process_index() == 0
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self._tb = None
    if self._active:
      import tensorflow as tf  # Only the writer needs TensorFlow's summary ops.
      self._tf = tf
      self._tb = tf.summary.create_file_writer(os.path.join(workdir, 'tb'))

  def truncate_after(self, step: int) -> None:
    """Drop the log lines a run resumed at `step` writes again (past `step`; everything when it starts
    over from step 0, whose first step logs the initial gradients), so the log reads as one run."""
    if not (self._active and os.path.exists(self.path)):
      return
    with open(self.path) as f:
      kept = [line for line in f if step and json.loads(line)['step'] <= step]
    with open(self.path, 'w') as f:
      f.writelines(kept)

  def write(self, step: int, scalars: dict) -> None:
    """Append one record and the matching TensorBoard scalars."""
    if not self._active:
      return
    record = {'step': int(step), **{k: float(v) for k, v in scalars.items()}}
    with open(self.path, 'a') as f:
      f.write(json.dumps(strict_json(record), allow_nan=False) + '\n')
    with self._tb.as_default():
      for name, value in record.items():
        if name != 'step':
          self._tf.summary.scalar(name, value, step=int(step))
    self._tb.flush()

  def close(self) -> None:
    """Flush and close the TensorBoard file."""
    if self._tb is not None:
      self._tb.close()


def read_metrics(workdir: str) -> list[dict]:
  """Every record of a run's metrics.jsonl, in order."""
  path = os.path.join(workdir, 'metrics.jsonl')
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f]
