"""Tests of the metric writer: TensorBoard reads its events as the scalars logged, and a resume rewrites them."""

import math
import subprocess
import sys

from tensorboard.backend.event_processing import event_accumulator

from jaxnets.train.writer import MetricWriter, read_metrics


def _tensorboard_scalars(tb_dir, tag):
  """(step, value) pairs of `tag` as TensorBoard's own loader reads them."""
  events = event_accumulator.EventAccumulator(tb_dir, size_guidance={event_accumulator.TENSORS: 0})
  events.Reload()
  return [(e.step, float(e.tensor_proto.float_val[0])) for e in events.Tensors(tag)]


def test_tensorboard_reads_the_logged_scalars_and_a_resume_rewrites_them(tmp_path):
  writer = MetricWriter(str(tmp_path))
  writer.truncate_after(0)
  for step, loss in ((1, 2.5), (2, 1.25), (3, float('nan'))):
    writer.write(step, {'train/loss': loss, 'train/lr': 0.1 * step})
  writer.close()
  scalars = _tensorboard_scalars(str(tmp_path / 'tb'), 'train/loss')
  assert scalars[:2] == [(1, 2.5), (2, 1.25)] and scalars[2][0] == 3 and math.isnan(scalars[2][1])
  assert [s for s, _ in _tensorboard_scalars(str(tmp_path / 'tb'), 'train/lr')] == [1, 2, 3]
  events = event_accumulator.EventAccumulator(str(tmp_path / 'tb'))
  events.Reload()
  assert set(events.Tags()['tensors']) == {'train/loss', 'train/lr'}
  assert events.SummaryMetadata('train/loss').plugin_data.plugin_name == 'scalars'

  resumed = MetricWriter(str(tmp_path))  # Resumed at step 2: step 3 is redone.
  resumed.truncate_after(2)
  resumed.write(3, {'train/loss': 0.5, 'train/lr': 0.3})
  resumed.close()
  assert _tensorboard_scalars(str(tmp_path / 'tb'), 'train/loss') == [(1, 2.5), (2, 1.25), (3, 0.5)]
  assert [r['train/loss'] for r in read_metrics(str(tmp_path))] == [2.5, 1.25, 0.5]


def test_writing_events_does_not_import_tensorflow(tmp_path):
  code = ('import sys; from jaxnets.train.writer import MetricWriter; w = MetricWriter(sys.argv[1]); '
          'w.truncate_after(0); w.write(1, {"a": 1.0}); w.close(); print("tensorflow" in sys.modules)')
  done = subprocess.run([sys.executable, '-c', code, str(tmp_path)], capture_output=True, text=True, check=True)
  assert done.stdout.strip() == 'False'
