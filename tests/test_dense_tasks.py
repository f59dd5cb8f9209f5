"""Segmentation and detection through the one training loop: batches of mask and box dicts, checkpoints,
exact resume, 8 devices against 1, COCO files, and the study configs on mock data."""

import json
import os

import numpy as np
import pytest
from pycocotools.coco import COCO

from jaxnets import experiment
from jaxnets.train.loop import DivergedError, train_and_evaluate
from tests.test_train import _assert_same_training, _final_params, _run_tiny, _summary, _train_metrics
from tests.tiny import mock_data, tiny_dense_config

TASKS = ('segmentation', 'detection')


@pytest.mark.parametrize('task', TASKS)
def test_run_checkpoints_and_resumes_exactly(tmp_path, task):
  straight, resumed = str(tmp_path / 'straight'), str(tmp_path / 'resumed')
  with mock_data():
    expected = train_and_evaluate(tiny_dense_config(task), straight)
    assert train_and_evaluate(tiny_dense_config(task), resumed, stop_after=2) is None
    assert _final_params(resumed)[0] == 2
    got = train_and_evaluate(tiny_dense_config(task), resumed)
  assert _train_metrics(resumed) == _train_metrics(straight)
  drop_time = lambda s: {k: v for k, v in s.items() if k != 'wall_seconds'}
  assert drop_time(got) == drop_time(expected)
  headline = {'segmentation': 'miou', 'detection': 'ap'}[task]
  assert 0 <= got[f'test_{headline}'] <= 1 and got['test_examples'] == 32 and got['steps'] == 4
  records = _train_metrics(straight)
  assert all(np.isfinite(r['train/loss']) for r in records if 'train/loss' in r)
  saved = np.load(os.path.join(straight, 'predictions.npz'))
  if task == 'segmentation':
    assert saved['predicted_mask'].shape == saved['mask'].shape == (8, 64, 64)
    assert {f'test_iou/{c}' for c in ('background', 'Trouser')} <= set(got)
  else:
    assert saved['predicted_boxes'].shape == (8, 100, 4) and saved['boxes'].shape == (8, 4, 4)


def test_detection_writes_coco_files_that_pycocotools_reads(tmp_path):
  workdir = str(tmp_path / 'run')
  with mock_data():
    summary = train_and_evaluate(tiny_dense_config('detection', steps=2), workdir)
  truth = COCO(os.path.join(workdir, 'ground_truth.json'))
  assert len(truth.getImgIds()) == summary['test_examples'] == 32
  assert [c['name'] for c in truth.loadCats(truth.getCatIds())][:2] == ['T-shirt/top', 'Trouser']
  with open(os.path.join(workdir, 'detections.json')) as f:
    detections = json.load(f)
  assert all(set(d) >= {'image_id', 'category_id', 'bbox', 'score'} for d in detections)


@pytest.mark.parametrize('task', TASKS)
def test_eight_devices_train_like_one(tmp_path, task):
  one, eight = str(tmp_path / 'one'), str(tmp_path / 'eight')
  summary_one = _summary(_run_tiny(one, {'XLA_FLAGS': '--xla_force_host_platform_device_count=1'}, task))
  summary_eight = _summary(_run_tiny(eight, {'XLA_FLAGS': '--xla_force_host_platform_device_count=8'}, task))
  _assert_same_training(one, eight, summary_one, summary_eight)
  for key in summary_one:  # The split metrics (confusion matrix; COCO AP from gathered detections) agree.
    if key != 'wall_seconds':
      np.testing.assert_allclose(summary_eight[key], summary_one[key], rtol=2e-4, atol=1e-6, err_msg=key)


@pytest.mark.parametrize('config_name, variant', [('segmentation', 'pets'), ('detection', 'voc')])
def test_tfds_variants_train_end_to_end_on_mock_data(tmp_path, config_name, variant):
  import importlib  # noqa: PLC0415
  c = importlib.import_module(f'experiments.configs.{config_name}').get_config(variant)
  c.data.update(batch_size=4, eval_batch_size=4, train_eval_examples=4, test_curve_examples=4,
                train_split='train[:8]', test_split='test[:8]')
  c.train.update(steps=2, log_every=1, eval_every=2, checkpoint_every=2)
  c.optimizer.schedule.warmup_steps = 1
  if config_name == 'segmentation':
    c.experiment.variants = 'unet: model.name=unet model.depth=2 model.width=4'
  with mock_data():
    rows = experiment.run(c, str(tmp_path))
  assert [r['steps'] for r in rows] == [2] * len(rows)
  assert os.path.exists(os.path.join(tmp_path, f'{config_name}.png'))


def test_a_diverging_run_leaves_the_picture_report_to_the_others(tmp_path):
  c = tiny_dense_config('segmentation', steps=2)
  c.optimizer.schedule.name = 'constant'
  c.experiment.sweep = 'optimizer.lr=0.001,1e30'
  c.experiment.report = 'segmentation'
  workdir = str(tmp_path / 'exp')
  with mock_data(), pytest.raises(DivergedError, match=r'1 of 2 runs diverged'):
    experiment.run(c, workdir)
  rows = json.load(open(os.path.join(workdir, 'results.json')))
  assert [r.get('status') for r in rows] == [None, 'diverged']
  assert os.path.getsize(os.path.join(workdir, 'segmentation.png')) > 10_000
