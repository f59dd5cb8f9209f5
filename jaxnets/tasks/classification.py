"""Single-label classification: softmax cross-entropy on integer labels, scored by error rate."""

import jax.numpy as jnp
import optax

from jaxnets.tasks.base import Headline, Task


class Classification(Task):
  """Logits [B, K] against integer labels [B]."""
  target = 'label'
  headline = Headline('error', higher_is_better=False)

  def __init__(self, classes: tuple):
    self.classes = classes

  def loss(self, outputs, batch):
    """Per-example softmax cross-entropy."""
    return optax.softmax_cross_entropy_with_integer_labels(outputs, batch['label'])

  def metric_sums(self, outputs, batch, mask):
    """Sums over the unmasked examples, so batches and devices add up exactly: loss, errors, count."""
    wrong = (jnp.argmax(outputs, -1) != batch['label']).astype(jnp.float32)
    return {'loss': jnp.sum(self.loss(outputs, batch) * mask),
            'errors': jnp.sum(wrong * mask),
            'count': jnp.sum(mask)}

  def predict(self, outputs, batch):
    """The most likely class."""
    return {'label': jnp.argmax(outputs, -1)}

  def metrics(self, sums):
    """Mean loss and error rate."""
    return {'loss': sums['loss'] / sums['count'], 'error': sums['errors'] / sums['count']}
