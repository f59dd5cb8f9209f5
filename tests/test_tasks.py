"""Tasks against their formulas: multi-label SSE and BCE, the attribute error, segmentation's IoU from a
confusion matrix, and the losses models sow (auxiliary heads, extra terms)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnets import data, optim, tasks
from jaxnets.data.preprocess import Preprocess
from jaxnets.train import diagnostics
from jaxnets.train.step import make_train_step
from tests.tiny import tiny_config

LOGITS = np.array([[2.0, -1.0, 0.5], [-0.3, 0.2, -4.0]], np.float32)
LABELS = np.array([[1, 0, 0], [1, 1, 0]], np.int32)
BATCH = {'label': LABELS}
ATTRIBUTES = ('a', 'b', 'c')


def _sigmoid(z):
  return 1 / (1 + np.exp(-z))


def test_multilabel_sse_is_the_course_sum_of_squared_errors():
  task = tasks.create('multilabel_sse', ATTRIBUTES)
  expected = np.sum((_sigmoid(LOGITS) - LABELS) ** 2, axis=1)
  np.testing.assert_allclose(task.loss(LOGITS, BATCH), expected, rtol=1e-6)
  linear = tasks.create('multilabel_sse_linear', ATTRIBUTES)
  np.testing.assert_allclose(linear.loss(LOGITS, BATCH), np.sum((LOGITS - LABELS) ** 2, axis=1), rtol=1e-6)


def test_multilabel_bce_and_attribute_error():
  task = tasks.create('multilabel', ATTRIBUTES)
  p = _sigmoid(LOGITS)
  expected = -np.mean(LABELS * np.log(p) + (1 - LABELS) * np.log(1 - p), axis=1)
  np.testing.assert_allclose(task.loss(LOGITS, BATCH), expected, rtol=1e-5)
  # Predictions (logit > 0): [1,0,1] vs [1,0,0] -> 1/3 wrong; [0,1,0] vs [1,1,0] -> 1/3 wrong.
  sums = task.metric_sums(LOGITS, BATCH, np.array([1.0, 1.0], np.float32))
  assert float(sums['errors']) == pytest.approx(2 / 3) and float(sums['count']) == 2
  assert task.metrics(sums)['error'] == pytest.approx(1 / 3)
  masked = task.metric_sums(LOGITS, BATCH, np.array([1.0, 0.0], np.float32))
  assert float(masked['errors']) == pytest.approx(1 / 3)
  assert float(masked['loss']) == pytest.approx(expected[0], rel=1e-5)


def test_multilabel_rejects_bce_on_a_linear_head_and_unknown_losses():
  from jaxnets.tasks.multilabel import MultiLabel  # noqa: PLC0415
  with pytest.raises(ValueError, match="logistic head, got head='linear'"):
    MultiLabel(ATTRIBUTES, loss='bce', head='linear')
  with pytest.raises(ValueError, match="unknown multi-label loss 'hinge'; valid choices: bce, sse"):
    MultiLabel(ATTRIBUTES, loss='hinge')


class _TwoHeads(nn.Module):
  """A dense main head, in training one auxiliary head sown as GoogLeNet's are, and a sown extra loss."""
  num_classes: int = 3

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = x.reshape(x.shape[0], -1)
    if train:
      self.sow('aux_outputs', 'aux1', nn.Dense(self.num_classes, name='aux')(x))
      self.sow('losses', 'l2_of_input', jnp.sum(x ** 2, axis=-1))
    return nn.Dense(self.num_classes, name='head')(x)


def test_sown_auxiliary_heads_and_losses_join_the_objective():
  model, task = _TwoHeads(), tasks.create('classification', ('x', 'y', 'z'))
  x = jax.random.normal(jax.random.key(0), (4, 2, 2, 1))
  labels = jnp.array([0, 1, 2, 1])
  params = model.init(jax.random.key(1), x, train=True)['params']
  cfg = tiny_config().optimizer
  cfg.weight_decay = 0.0
  tx, schedule = optim.create(cfg, 10)
  from jaxnets.train.state import TrainState  # noqa: PLC0415
  state = TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state={},
                     opt_state=tx.init(params), rng=jax.random.key_data(jax.random.key(2)))
  identity = Preprocess(np.zeros(1, np.float32), np.ones(1, np.float32))
  layers = diagnostics.Layers(('aux', 'head'), ('aux', 'kernel'))
  _, metrics = make_train_step(model, task, tx, schedule, cfg, identity, layers,
                               aux_loss_weight=0.3)(state, {'image': x, 'label': labels})
  flat = x.reshape(4, -1)
  ce = lambda p: optax.softmax_cross_entropy_with_integer_labels(
      flat @ p['kernel'] + p['bias'], labels).mean()
  extra = np.mean(np.sum(np.asarray(flat) ** 2, axis=-1))
  expected = ce(params['head']) + 0.3 * ce(params['aux']) + extra
  np.testing.assert_allclose(metrics['diagnostics']['total_loss'], expected, rtol=1e-5)
  np.testing.assert_allclose(metrics['diagnostics']['loss/aux1'], 0.3 * ce(params['aux']), rtol=1e-5)
  np.testing.assert_allclose(metrics['diagnostics']['loss/l2_of_input'], extra, rtol=1e-5)
  np.testing.assert_allclose(metrics['task']['loss'], ce(params['head']), rtol=1e-5)


SCENE_CLASSES = ('background', 'cat', 'dog')


def _logits_for(predicted, k=3):
  """Logits whose argmax is `predicted` [B, H, W]."""
  return np.eye(k, dtype=np.float32)[predicted] * 5.0


def test_iou_from_a_hand_made_confusion_matrix():
  task = tasks.create('segmentation', SCENE_CLASSES)
  # Rows: true class, columns: predicted. Class 0: 5 hits, row 7, column 7 -> union 9 -> 5/9.
  # Class 1: 3 hits, row 4, column 4 -> union 5 -> 3/5. Class 2: 0 hits, row 1, column 1 -> 0.
  confusion = np.array([[5, 1, 1], [1, 3, 0], [1, 0, 0]], np.float64)
  metrics = task.metrics({'loss': 2.0, 'count': 4.0, 'confusion': confusion})
  iou = [5 / 9, 3 / 5, 0.0]
  np.testing.assert_allclose([metrics[f'iou/{c}'] for c in SCENE_CLASSES], iou)
  assert metrics['miou'] == pytest.approx(np.mean(iou))
  assert metrics['pixel_accuracy'] == pytest.approx(8 / 12) and metrics['loss'] == 0.5
  # A class absent from truth and predictions has no IoU and does not count in the mean.
  absent = task.metrics({'loss': 1.0, 'count': 1.0, 'confusion': np.diag([3.0, 1.0, 0.0])})
  assert np.isnan(absent['iou/dog']) and absent['miou'] == 1.0


def test_confusion_counts_labelled_pixels_of_unmasked_examples():
  task = tasks.create('segmentation', SCENE_CLASSES)
  masks = np.array([[[0, 1], [2, 255]], [[1, 1], [1, 1]]], np.uint8)
  predicted = np.array([[[0, 1], [1, 2]], [[0, 0], [0, 0]]])
  sums = task.metric_sums(_logits_for(predicted), {'mask': masks}, np.array([1.0, 0.0], np.float32))
  want = np.zeros((3, 3))
  for t, p in ((0, 0), (1, 1), (2, 1)):  # Example 0 without its ignored pixel; example 1 masked out.
    want[t, p] += 1
  np.testing.assert_array_equal(sums['confusion'], want)


def test_segmentation_metrics_add_up_over_uneven_batches():
  task = tasks.create('segmentation', SCENE_CLASSES)
  rng = np.random.default_rng(0)
  masks = rng.integers(0, 3, (7, 4, 5)).astype(np.uint8)
  masks[0, 0, :2] = 255
  logits = rng.normal(size=(7, 4, 5, 3)).astype(np.float32)
  whole = task.accumulator()
  whole.add({'sums': task.metric_sums(logits, {'mask': masks}, np.ones(7, np.float32))})
  parts = task.accumulator()
  for lo, hi in ((0, 3), (3, 4), (4, 7)):
    parts.add({'sums': task.metric_sums(logits[lo:hi], {'mask': masks[lo:hi]}, np.ones(hi - lo, np.float32))})
  a, b = whole.result(), parts.result()
  assert a.keys() == b.keys()
  for key in a:
    assert a[key] == pytest.approx(b[key], rel=1e-6, nan_ok=True), key
  # An independent count: pixel accuracy is the fraction of labelled pixels whose argmax is right.
  valid = masks != 255
  assert a['pixel_accuracy'] == pytest.approx(np.mean(np.argmax(logits, -1)[valid] == masks[valid]))


def test_segmentation_loss_is_the_mean_over_labelled_pixels_plus_dice():
  masks = np.array([[[0, 1], [2, 255]]], np.uint8)
  logits = np.random.default_rng(1).normal(size=(1, 2, 2, 3)).astype(np.float32)
  log_p = logits - np.log(np.sum(np.exp(logits), -1, keepdims=True))
  xent = -np.mean([log_p[0, 0, 0, 0], log_p[0, 0, 1, 1], log_p[0, 1, 0, 2]])
  plain = tasks.create('segmentation', SCENE_CLASSES)
  np.testing.assert_allclose(plain.loss(logits, {'mask': masks}), [xent], rtol=1e-5)
  p = np.exp(log_p)[0].reshape(4, 3)[:3]  # The three labelled pixels.
  truth = np.eye(3)[[0, 1, 2]]
  dice = np.mean([2 * np.sum(p[:, k] * truth[:, k]) / (np.sum(p[:, k]) + np.sum(truth[:, k])) for k in range(3)])
  with_dice = tasks.create('segmentation', SCENE_CLASSES, dice_weight=0.5)
  np.testing.assert_allclose(with_dice.loss(logits, {'mask': masks}), [xent + 0.5 * (1 - dice)], rtol=1e-5)
  # A class in neither the truth nor the argmax prediction does not count in the mean (it would add 0).
  two = np.array([[[0, 1], [1, 255]]], np.uint8)
  sharp = _logits_for(np.array([[[0, 1], [1, 0]]]))
  q = np.exp(sharp - np.log(np.sum(np.exp(sharp), -1, keepdims=True)))[0].reshape(4, 3)[:3]
  t = np.eye(3)[[0, 1, 1]]
  dice2 = np.mean([2 * np.sum(q[:, k] * t[:, k]) / (np.sum(q[:, k]) + np.sum(t[:, k])) for k in (0, 1)])
  xent2 = -np.mean([np.log(q[0, 0]), np.log(q[1, 1]), np.log(q[2, 1])])
  np.testing.assert_allclose(with_dice.loss(sharp, {'mask': two}), [xent2 + 0.5 * (1 - dice2)], rtol=1e-5)
  with pytest.raises(ValueError, match=r'task\.dice_weight=-1'):
    tasks.create('segmentation', SCENE_CLASSES, dice_weight=-1)


def test_smaller_logits_are_scored_on_the_centre_of_the_mask():
  """U-Net's unpadded convolutions give logits for the centre of the tile: the mask is cropped to it."""
  task = tasks.create('segmentation', SCENE_CLASSES)
  masks = np.zeros((1, 6, 8), np.uint8)
  masks[0, 2:4, 2:6] = np.array([[1, 2, 1, 2], [2, 1, 2, 1]])
  logits = _logits_for(masks[:, 2:4, 2:6])  # A perfect prediction of the central 2x4 window.
  sums = task.metric_sums(logits, {'mask': masks}, np.ones(1, np.float32))
  np.testing.assert_array_equal(sums['confusion'], np.diag([0, 4, 4]))
  with pytest.raises(ValueError, match=r'logits of size 3x4 do not fit masks of size 6x8'):
    task.loss(_logits_for(np.zeros((1, 3, 4), int)), {'mask': masks})


def test_predicted_masks_are_in_the_masks_frame():
  task = tasks.create('segmentation', SCENE_CLASSES)
  masks = np.zeros((1, 6, 8), np.uint8)
  predicted = np.asarray(task.predict(_logits_for(np.full((1, 2, 4), 2)), {'mask': masks})['mask'])
  assert predicted.shape == (1, 6, 8)
  np.testing.assert_array_equal(predicted[0, 2:4, 2:6], 2)
  assert (predicted[0, :2] == data.MASK_IGNORE).all() and (predicted[0, :, :2] == data.MASK_IGNORE).all()
