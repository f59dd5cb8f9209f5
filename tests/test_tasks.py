"""Tasks against their formulas: multi-label SSE and BCE, the attribute error, auxiliary-head losses."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnets import optim, tasks
from jaxnets.data.preprocess import Preprocess
from jaxnets.train.step import make_train_step
from tests.tiny import tiny_config

LOGITS = np.array([[2.0, -1.0, 0.5], [-0.3, 0.2, -4.0]], np.float32)
LABELS = np.array([[1, 0, 0], [1, 1, 0]], np.int32)


def _sigmoid(z):
  return 1 / (1 + np.exp(-z))


def test_multilabel_sse_is_the_course_sum_of_squared_errors():
  task = tasks.create('multilabel_sse')
  expected = np.sum((_sigmoid(LOGITS) - LABELS) ** 2, axis=1)
  np.testing.assert_allclose(task.loss(LOGITS, LABELS), expected, rtol=1e-6)
  linear = tasks.create('multilabel_sse_linear')
  np.testing.assert_allclose(linear.loss(LOGITS, LABELS), np.sum((LOGITS - LABELS) ** 2, axis=1), rtol=1e-6)


def test_multilabel_bce_and_attribute_error():
  task = tasks.create('multilabel')
  p = _sigmoid(LOGITS)
  expected = -np.mean(LABELS * np.log(p) + (1 - LABELS) * np.log(1 - p), axis=1)
  np.testing.assert_allclose(task.loss(LOGITS, LABELS), expected, rtol=1e-5)
  # Predictions (logit > 0): [1,0,1] vs [1,0,0] -> 1/3 wrong; [0,1,0] vs [1,1,0] -> 1/3 wrong.
  sums = task.metric_sums(LOGITS, LABELS, np.array([1.0, 1.0], np.float32))
  assert float(sums['errors']) == pytest.approx(2 / 3) and float(sums['count']) == 2
  masked = task.metric_sums(LOGITS, LABELS, np.array([1.0, 0.0], np.float32))
  assert float(masked['errors']) == pytest.approx(1 / 3)
  assert float(masked['loss']) == pytest.approx(expected[0], rel=1e-5)


def test_multilabel_rejects_bce_on_a_linear_head_and_unknown_losses():
  from jaxnets.tasks.multilabel import MultiLabel  # noqa: PLC0415
  with pytest.raises(ValueError, match="logistic head, got head='linear'"):
    MultiLabel(loss='bce', head='linear')
  with pytest.raises(ValueError, match="unknown multi-label loss 'hinge'; valid choices: bce, sse"):
    MultiLabel(loss='hinge')


class _TwoHeads(nn.Module):
  """A dense main head and, in training, one auxiliary head sown as GoogLeNet's are."""
  num_classes: int = 3

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = x.reshape(x.shape[0], -1)
    if train:
      self.sow('aux_logits', 'aux1', nn.Dense(self.num_classes, name='aux')(x))
    return nn.Dense(self.num_classes, name='head')(x)


def test_auxiliary_heads_add_their_weighted_loss():
  model, task = _TwoHeads(), tasks.create('classification')
  x = jax.random.normal(jax.random.key(0), (4, 2, 2, 1))
  labels = jnp.array([0, 1, 2, 1])
  params = model.init(jax.random.key(1), x, train=True)['params']
  cfg = tiny_config().optimizer
  cfg.weight_decay = 0.0
  tx, schedule = optim.create(cfg, 10)
  from jaxnets.train.state import TrainState  # noqa: PLC0415
  state = TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats={},
                     opt_state=tx.init(params), rng=jax.random.key_data(jax.random.key(2)))
  identity = Preprocess(np.zeros(1, np.float32), np.ones(1, np.float32))
  _, metrics = make_train_step(model, task, tx, schedule, cfg, identity, ('aux', 'head'),
                               aux_loss_weight=0.3)(state, x, labels)
  flat = x.reshape(4, -1)
  ce = lambda p: optax.softmax_cross_entropy_with_integer_labels(
      flat @ p['kernel'] + p['bias'], labels).mean()
  expected = ce(params['head']) + 0.3 * ce(params['aux'])
  np.testing.assert_allclose(metrics['total_loss'], expected, rtol=1e-5)
  np.testing.assert_allclose(metrics['loss'], ce(params['head']), rtol=1e-5)
