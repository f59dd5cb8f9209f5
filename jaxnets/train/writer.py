"""Metrics to TensorBoard event files and a plain JSON-lines log, written by process 0 only.

Events are written with TensorBoard's own record framing and scalar format (what tf.summary.scalar
writes) to a plain file: TensorBoard's file writer would import TensorFlow, 3.3 s of every run's start.
"""

import json
import os
import shutil
import socket
import time

import jax
import numpy as np
from tensorboard.compat.proto import summary_pb2
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.plugins.scalar import metadata
from tensorboard.summary.writer.record_writer import RecordWriter
from tensorboard.util import tensor_util

from jaxnets.train.record import strict_json


class MetricWriter:
  """Writes {name: scalar} per step to `workdir/metrics.jsonl` and TensorBoard events in `workdir/tb`;
  `truncate_after` must be called first (it opens the event file)."""

  def __init__(self, workdir: str):
    self._active = jax.process_index() == 0
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self._tb_dir = os.path.join(workdir, 'tb')
    self._tb = None

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
    self.close()
    shutil.rmtree(self._tb_dir, ignore_errors=True)  # Event files are append-only: rewritten whole.
    self._tb = _event_file(self._tb_dir)
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
    """One record's scalars as one TensorBoard event (null, i.e. NaN, as NaN)."""
    values = [summary_pb2.Summary.Value(
        tag=name, metadata=metadata.create_summary_metadata(display_name=name, description=''),
        tensor=tensor_util.make_tensor_proto(np.float32('nan' if value is None else value)))
        for name, value in record.items() if name != 'step']
    self._tb.write(Event(wall_time=time.time(), step=record['step'],
                         summary=summary_pb2.Summary(value=values)).SerializeToString())

  def close(self) -> None:
    """Flush and close the TensorBoard file."""
    if self._tb is not None:
      self._tb.close()
      self._tb = None


def _event_file(directory: str) -> RecordWriter:
  """A new TensorBoard event file in `directory`, named and headed as TensorFlow's writer does."""
  os.makedirs(directory, exist_ok=True)
  name = f'events.out.tfevents.{time.time():.0f}.{socket.gethostname()}.{os.getpid()}'
  events = RecordWriter(open(os.path.join(directory, name), 'wb'))
  events.write(Event(wall_time=time.time(), file_version='brain.Event:2').SerializeToString())
  return events


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
