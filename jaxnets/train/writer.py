"""Metrics to TensorBoard event files and a plain JSON-lines log, written by process 0 only."""

import json
import os
import shutil

import jax

from jaxnets.train.record import strict_json


class MetricWriter:
  """Writes {name: scalar} per step to `workdir/metrics.jsonl` and TensorBoard events in `workdir/tb`;
  `truncate_after` must be called first (it opens the event file)."""

  def __init__(self, workdir: str):
    self._active = jax.process_index() == 0
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self._tb_dir = os.path.join(workdir, 'tb')
    self._tb = None
    if self._active:
      import tensorflow as tf  # Only the writer needs TensorFlow's summary ops.
      self._tf = tf

  def truncate_after(self, step: int) -> None:
    """Start the session of a run resumed at `step`: drop the records past `step` (everything when it
    starts over from step 0, whose first step logs the initial gradients) from metrics.jsonl, and write
    the TensorBoard events anew from what is kept, so both read as one run with each step once."""
    if not self._active:
      return
    kept = [r for r in read_metrics(os.path.dirname(self.path)) if step and r['step'] <= step and
            not (r['step'] == step and any(k.startswith('final/') for k in r))]  # The end is redone.
    with open(self.path + '.tmp', 'w') as f:
      f.writelines(json.dumps(record, allow_nan=False) + '\n' for record in kept)
    os.replace(self.path + '.tmp', self.path)  # A kill now leaves the old log or the new, whole.
    shutil.rmtree(self._tb_dir, ignore_errors=True)  # Event files are append-only: rewritten whole.
    self._tb = self._tf.summary.create_file_writer(self._tb_dir)
    for record in kept:
      self._write_events(record)
    self._tb.flush()

  def write(self, step: int, scalars: dict) -> None:
    """Append one record and the matching TensorBoard scalars."""
    if not self._active:
      return
    record = strict_json({'step': int(step), **{k: float(v) for k, v in scalars.items()}})
    with open(self.path, 'a') as f:
      f.write(json.dumps(record, allow_nan=False) + '\n')
    self._write_events(record)
    self._tb.flush()

  def _write_events(self, record: dict) -> None:
    """One record's scalars as TensorBoard events (null, i.e. NaN, as NaN)."""
    with self._tb.as_default():
      for name, value in record.items():
        if name != 'step':
          self._tf.summary.scalar(name, float('nan') if value is None else value, step=record['step'])

  def close(self) -> None:
    """Flush and close the TensorBoard file."""
    if self._tb is not None:
      self._tb.close()


def read_metrics(workdir: str) -> list[dict]:
  """Every record of a run's metrics.jsonl, in order; a last line cut short by a kill is left out."""
  path = os.path.join(workdir, 'metrics.jsonl')
  if not os.path.exists(path):
    return []
  with open(path) as f:
    lines = f.readlines()
  if lines and not lines[-1].endswith('\n'):
    lines.pop()
  return [json.loads(line) for line in lines]
