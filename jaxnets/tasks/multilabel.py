"""Multi-label attribute recognition: K independent yes/no outputs per example (e.g. CelebA's 40).

The model's K outputs go through an output head (logistic: sigmoid, linear: none) and are scored
against 0/1 targets by binary cross-entropy or by the course's sum of squared errors,
E = sum_k (o_k - y_k)^2. The error metric is the fraction of wrong attributes (o_k > 1/2 vs y_k).
"""

import jax
import jax.numpy as jnp
import optax

from jaxnets.registry import Registry

HEADS = Registry('output head')
HEADS.register('logistic', jax.nn.sigmoid)
HEADS.register('linear', lambda z: z)

LOSSES = ('bce', 'sse')


class MultiLabel:
  """Loss and metric sums for outputs [B, K] against 0/1 targets [B, K]."""

  def __init__(self, loss: str = 'bce', head: str = 'logistic'):
    if loss not in LOSSES:
      raise ValueError(f'unknown multi-label loss {loss!r}; valid choices: {", ".join(LOSSES)}')
    if loss == 'bce' and head != 'logistic':
      raise ValueError(f"binary cross-entropy needs the logistic head, got head={head!r}")
    self._loss, self._head = loss, HEADS.get(head)

  def loss(self, logits, labels):
    """Per-example loss, summed over attributes (sse) or averaged over them (bce)."""
    targets = labels.astype(jnp.float32)
    if self._loss == 'bce':  # From the logits, for numerical stability; equal to -log of the sigmoid.
      return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, targets), axis=-1)
    return jnp.sum(jnp.square(self._head(logits) - targets), axis=-1)

  def metric_sums(self, logits, labels, mask):
    """Sums over the unmasked examples: loss, errors (fraction of wrong attributes per example), count."""
    wrong = ((self._head(logits) > 0.5) != (labels > 0)).astype(jnp.float32)
    return {'loss': jnp.sum(self.loss(logits, labels) * mask),
            'errors': jnp.sum(jnp.mean(wrong, axis=-1) * mask),
            'count': jnp.sum(mask)}
