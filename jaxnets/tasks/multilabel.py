"""Multi-label attribute recognition: K independent yes/no outputs per example (e.g. CelebA's 40).

The model's K outputs go through an output head (logistic: sigmoid, linear: none) and are scored
against 0/1 targets by binary cross-entropy or by the course's sum of squared errors,
E = sum_k (o_k - y_k)^2. The error metric is the fraction of wrong attributes (o_k > 1/2 vs y_k).
"""

import jax
import jax.numpy as jnp
import optax

from jaxnets.registry import Registry
from jaxnets.tasks.base import Headline, Task

HEADS = Registry('output head')
HEADS.register('logistic', jax.nn.sigmoid)
HEADS.register('linear', lambda z: z)

LOSSES = ('bce', 'sse')


class MultiLabel(Task):
  """Outputs [B, K] against 0/1 targets [B, K] (batch['label'])."""
  target = 'label'
  headline = Headline('error', higher_is_better=False)

  def __init__(self, classes: tuple, loss: str = 'bce', head: str = 'logistic'):
    if loss not in LOSSES:
      raise ValueError(f'unknown multi-label loss {loss!r}; valid choices: {", ".join(LOSSES)}')
    if loss == 'bce' and head != 'logistic':
      raise ValueError(f"binary cross-entropy needs the logistic head, got head={head!r}")
    self.classes, self._loss, self._head = classes, loss, HEADS.get(head)

  def loss(self, outputs, batch):
    """Per-example loss, summed over attributes (sse) or averaged over them (bce)."""
    logits, targets = outputs, batch['label'].astype(jnp.float32)
    if self._loss == 'bce':  # From the logits, for numerical stability; equal to -log of the sigmoid.
      return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, targets), axis=-1)
    return jnp.sum(jnp.square(self._head(logits) - targets), axis=-1)

  def metric_sums(self, outputs, batch, mask):
    """Sums over the unmasked examples: loss, errors (fraction of wrong attributes per example), count."""
    wrong = ((self._head(outputs) > 0.5) != (batch['label'] > 0)).astype(jnp.float32)
    return {'loss': jnp.sum(self.loss(outputs, batch) * mask),
            'errors': jnp.sum(jnp.mean(wrong, axis=-1) * mask),
            'count': jnp.sum(mask)}

  def predict(self, outputs, batch):
    """Each attribute predicted present (1) where its output is above 1/2."""
    return {'label': (self._head(outputs) > 0.5).astype(jnp.int32)}

  def metrics(self, sums):
    """Mean loss and the mean fraction of wrong attributes."""
    return {'loss': sums['loss'] / sums['count'], 'error': sums['errors'] / sums['count']}
