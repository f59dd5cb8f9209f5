"""Detection against hand computations: box geometry and NMS, COCO AP of hand cases by its 101-point rule,
CenterNet's targets and decoding (a perfect output scores AP 1), and a real CenterNet training step."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pycocotools.coco import COCO

from jaxnets import boxes
from jaxnets.models.centernet import HEATMAP_BIAS, CenterNet
from jaxnets.models.resnet import CifarResNet, ResNet
from jaxnets.tasks import coco
from jaxnets.tasks.detection import Detection

CLASSES = ('shirt', 'shoe', 'bag')
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def test_encode_decode_round_trip_at_stride_4():
  rng = np.random.default_rng(0)
  corner = rng.uniform(0, 40, (50, 2))
  box = np.concatenate([corner, corner + rng.uniform(1, 24, (50, 2))], axis=1).astype(np.float32)
  cell, offset, size = boxes.encode(box, 4)
  centre = (box[:, :2] + box[:, 2:]) / 2
  np.testing.assert_array_equal(cell, np.floor(centre / 4))
  assert np.all((offset >= 0) & (offset < 1))
  np.testing.assert_allclose(size, box[:, 2:] - box[:, :2], rtol=1e-6)
  np.testing.assert_allclose(boxes.decode(cell, offset, size, 4), box, rtol=1e-6, atol=1e-5)


def test_pairwise_iou_by_hand():
  a = np.array([[0, 0, 4, 4], [0, 0, 2, 2]], np.float32)
  b = np.array([[2, 2, 6, 6], [1, 1, 3, 3], [2, 0, 4, 2], [0, 0, 4, 4]], np.float32)
  # 2x2 overlap of two 16s: 4 / 28; containment 4 / 16; touching edges share nothing; a box with itself.
  expected = [[4 / 28, 4 / 16, 4 / 16, 1], [0, 1 / 7, 0, 4 / 16]]
  np.testing.assert_allclose(boxes.pairwise_iou(a, b), expected, rtol=1e-6)


def test_class_nms_by_hand():
  candidates = {  # name: (score, class, box); listed out of score order.
      'other_class_same_place': (0.7, 1, [0, 0, 10, 10]),
      'best': (0.9, 0, [0, 0, 10, 10]),
      'low': (0.03, 0, [40, 40, 50, 50]),
      'near_best': (0.8, 0, [1, 1, 11, 11]),  # IoU 81 / 119 = 0.68 with 'best': suppressed.
      'near_suppressed': (0.6, 0, [2, 2, 12, 12]),  # IoU 64 / 136 = 0.47 with 'best', 0.68 with 'near_best'.
  }
  scores, classes, box = (np.array(v) for v in zip(*candidates.values()))
  keep = boxes.class_nms(box.astype(np.float32), scores, classes, scores >= 0.05, 0.5)
  kept = {name for name, k in zip(candidates, np.asarray(keep)) if k}
  # A suppressed candidate suppresses nothing, so 'near_suppressed' stays; another class never competes.
  assert kept == {'best', 'other_class_same_place', 'near_suppressed'}


def _evaluate(truth_boxes, detections):
  """coco.evaluate of one image, one class ('shirt'): ground truth [N, 4] and (score, box) detections."""
  annotations = coco.ground_truth_annotations(1, np.array(truth_boxes), [0] * len(truth_boxes), first_id=1)
  dataset = coco.ground_truth([1], annotations, CLASSES[:1])
  found = coco.detection_results(1, np.array([b for _, b in detections]), [s for s, _ in detections],
                                 [0] * len(detections))
  return coco.evaluate(dataset, found)


def test_coco_ap_with_a_false_positive_between_two_hits():
  truth = [[0, 0, 10, 10], [20, 20, 30, 30]]
  result = _evaluate(truth, [(0.9, truth[0]), (0.8, [40, 40, 50, 50]), (0.7, truth[1])])
  # Precision 1 up to recall 1/2 (recall points 0, .01, ..., .50: 51), then 2/3 up to recall 1 (50 points).
  expected = (51 * 1 + 50 * 2 / 3) / 101
  assert result == pytest.approx({'ap': expected, 'ap50': expected, 'ap75': expected}, abs=1e-9)


def test_coco_ap_of_a_loose_box_depends_on_the_iou_threshold():
  truth = [[0, 0, 10, 10], [20, 20, 30, 30]]
  loose = [20, 20, 30, 26.2]  # Inside the second truth box: IoU 62 / 100.
  result = _evaluate(truth, [(0.9, truth[0]), (0.8, loose)])
  # Where the loose box matches (IoU threshold <= 0.62) both are hits: AP 1. Above it the loose box is a
  # false positive after the first hit: precision 1 up to recall 1/2 (51 points), no higher recall: 51 / 101.
  per_threshold = np.where(IOU_THRESHOLDS <= 0.62, 1.0, 51 / 101)
  assert result == pytest.approx({'ap': np.mean(per_threshold), 'ap50': 1.0, 'ap75': 51 / 101}, abs=1e-9)


def test_coco_ap_without_detections_is_zero():
  assert _evaluate([[0, 0, 10, 10]], []) == {'ap': 0.0, 'ap50': 0.0, 'ap75': 0.0}


def test_gaussian_radius_and_heatmap_by_hand():
  # A 20x20 box at stride 4 is 5x5 output cells; the paper's third root is the smallest:
  # (-2 * .7 * 10 + sqrt((2 * .7 * 10)^2 + 4 * (4 * .7) * (.3 * 25))) / 2 = (-14 + sqrt(280)) / 2.
  assert float(boxes.gaussian_radius(5.0, 5.0, 0.7)) == pytest.approx((-14 + np.sqrt(280)) / 2, rel=1e-6)
  box = np.array([[8, 12, 28, 32], [40, 36, 60, 56], [0, 0, 0, 0]], np.float32)  # Centres (18, 22), (50, 46).
  heat = np.asarray(boxes.heatmap_target(box, np.array([2, 0, 1]), np.array([True, True, False]), (16, 16),
                                         3, 4, 0.7))
  assert heat.shape == (16, 16, 3)
  np.testing.assert_array_equal(np.argwhere(heat == 1), [[5, 4, 2], [11, 12, 0]])  # (y, x, class) cells.
  # Radius floor(1.37) = 1, sigma = 3 / 6: exp(-d^2 / (2 sigma^2)) = exp(-2 d^2) within one cell, else 0.
  squared_distance = np.array([[2, 1, 2], [1, 0, 1], [2, 1, 2]])
  np.testing.assert_allclose(heat[4:7, 3:6, 2], np.exp(-2 * squared_distance), rtol=1e-6)
  assert heat[:, :, 2].sum() == pytest.approx(1 + 4 * np.exp(-2) + 4 * np.exp(-4), rel=1e-6)
  assert heat[:, :, 1].max() == 0  # The padding row puts nothing anywhere.


def _scene_batch():
  """Three 64x64 scenes: two labelled, and a third the tests mask out."""
  box = np.array([[[8, 12, 28, 32], [40, 36, 60, 56], [36, 4, 50, 30]],
                  [[20, 18, 44, 46], [0, 0, 0, 0], [0, 0, 0, 0]],
                  [[2, 2, 30, 30], [30, 30, 60, 60], [0, 0, 0, 0]]], np.float32)
  return {'image': np.zeros((3, 64, 64, 1), np.float32), 'boxes': box,
          'classes': np.array([[2, 0, 2], [1, 0, 0], [0, 1, 0]], np.int32),
          'box_mask': np.array([[True, True, True], [True, False, False], [True, True, False]])}


def _perfect_outputs(task, batch):
  """Outputs that reproduce the targets: logits of the target heatmap, sizes and offsets at the centres."""
  shapes = {'heatmap': np.zeros((3, 16, 16, 3)), 'size': np.zeros((3, 16, 16, 2)),
            'offset': np.zeros((3, 16, 16, 2))}
  t = task.targets(shapes, batch)
  p = np.clip(np.asarray(t['heatmap']), 1e-4, 1 - 1e-4)
  outputs = {'heatmap': np.log(p / (1 - p)), 'size': shapes['size'].copy(), 'offset': shapes['offset'].copy()}
  for b, m in zip(*np.nonzero(batch['box_mask'])):
    x, y = np.asarray(t['cell'])[b, m]
    outputs['size'][b, y, x] = t['size'][b, m]
    outputs['offset'][b, y, x] = t['offset'][b, m]
  return {k: jnp.asarray(v, jnp.float32) for k, v in outputs.items()}


def test_centernet_losses_of_perfect_zero_and_random_outputs():
  task, batch = Detection(CLASSES), _scene_batch()
  perfect = task.loss_terms(_perfect_outputs(task, batch), batch)
  np.testing.assert_allclose(perfect['size_loss'], 0, atol=1e-6)
  np.testing.assert_allclose(perfect['offset_loss'], 0, atol=1e-6)
  noise = jax.random.normal(jax.random.key(0), (3, 16, 16, 3))
  zero_maps = {'size': jnp.zeros((3, 16, 16, 2)), 'offset': jnp.zeros((3, 16, 16, 2))}
  random = task.loss_terms({'heatmap': noise, **zero_maps}, batch)
  assert np.all(perfect['heatmap_loss'] < random['heatmap_loss'] / 10)
  # With zero size and offset maps the L1 terms are the objects' mean of (w + h) / 2 and of the offsets.
  # Scene 0: 20x20, 20x20, 14x26; scene 1: 24x28; scene 2: 28x28, 30x30.
  np.testing.assert_allclose(random['size_loss'], [20, 26, 29], rtol=1e-6)
  centre = (batch['boxes'][..., :2] + batch['boxes'][..., 2:]) / 8
  mean_offset = np.mean(centre - np.floor(centre), axis=-1)
  np.testing.assert_allclose(random['offset_loss'], [mean_offset[0].mean(), mean_offset[1, 0],
                                                     mean_offset[2, :2].mean()], rtol=1e-6)
  total = task.loss({'heatmap': noise, **zero_maps}, batch)
  expected_total = random['heatmap_loss'] + 0.1 * random['size_loss'] + random['offset_loss']
  np.testing.assert_allclose(total, expected_total, rtol=1e-6)


def test_a_perfect_output_decodes_to_the_ground_truth_and_scores_ap_1(tmp_path):
  task, batch = Detection(CLASSES), _scene_batch()
  outputs = _perfect_outputs(task, batch)
  outputs['heatmap'] = outputs['heatmap'].at[2].set(0.0)  # The masked scene: every cell a peak of score 1/2.
  mask = jnp.array([1.0, 1.0, 0.0])
  out = jax.device_get(jax.jit(task.eval_outputs)(outputs, batch, mask))
  ex = out['examples']
  for b in range(2):
    kept = ex['keep'][b]
    found = sorted(zip(ex['classes'][b][kept].tolist(), ex['boxes'][b][kept].tolist()))
    real = batch['box_mask'][b]
    truth = sorted(zip(batch['classes'][b][real].tolist(), batch['boxes'][b][real].tolist()))
    assert [c for c, _ in found] == [c for c, _ in truth]
    np.testing.assert_allclose([bx for _, bx in found], [bx for _, bx in truth], atol=1e-4)
  accumulator = task.accumulator()
  accumulator.add(out)
  result = accumulator.result()
  assert result == pytest.approx({'loss': float(np.sum(task.loss(outputs, batch) * mask) / 2),
                                  'ap': 1.0, 'ap50': 1.0, 'ap75': 1.0}, rel=1e-6)
  accumulator.write(str(tmp_path), 'test')  # The written files give pycocotools the same two images.
  truth = COCO(str(tmp_path / 'ground_truth.json'))
  assert truth.getImgIds() == [1, 2] and len(truth.getAnnIds()) == 4
  assert len(json.loads((tmp_path / 'detections.json').read_text())) == 4


def test_resnet_endpoints_give_feature_maps_and_no_head():
  x = jnp.zeros((1, 64, 64, 1))
  shapes = jax.eval_shape(lambda: CifarResNet(depth=8).init_with_output(jax.random.key(0), x, endpoints=True))
  features, variables = shapes
  assert {k: v.shape[1:] for k, v in features.items()} == {
      'stem': (64, 64, 16), 'stage1': (64, 64, 16), 'stage2': (32, 32, 32), 'stage3': (16, 16, 64)}
  assert 'head' not in variables['params']
  features, variables = jax.eval_shape(
      lambda: ResNet(depth=18).init_with_output(jax.random.key(0), x, endpoints=True))
  assert {k: v.shape[1] for k, v in features.items()} == {'stem': 32, 'stage1': 16, 'stage2': 8, 'stage3': 4,
                                                           'stage4': 2}
  assert 'head' not in variables['params']


def test_centernet_trains_a_step_with_finite_gradients():
  model, task = CenterNet(num_classes=len(CLASSES), backbone_depth=8), Detection(CLASSES)
  batch = {k: v[:2] for k, v in _scene_batch().items()}
  batch['image'] = np.asarray(jax.random.normal(jax.random.key(1), (2, 64, 64, 1)))
  variables = model.init(jax.random.key(0), batch['image'][:1])
  np.testing.assert_allclose(variables['params']['heatmap']['out']['bias'], HEATMAP_BIAS)

  def loss(params):
    outputs, _ = model.apply({**variables, 'params': params}, batch['image'], train=True,
                             mutable=['batch_stats'])
    return jnp.mean(task.loss(outputs, batch)), outputs

  (value, outputs), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(variables['params'])
  assert {k: v.shape for k, v in outputs.items()} == {
      'heatmap': (2, 16, 16, 3), 'size': (2, 16, 16, 2), 'offset': (2, 16, 16, 2)}
  assert np.isfinite(value) and value > 0
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  assert all(np.any(g != 0) for g in jax.tree.leaves(grads['heatmap']))
