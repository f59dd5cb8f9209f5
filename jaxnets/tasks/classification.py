"""Single-label classification: softmax cross-entropy on integer labels, scored by error rate."""

import jax.numpy as jnp
import optax


class Classification:
  """Loss and metric sums for logits [B, K] against integer labels [B]."""

  def loss(self, logits, labels):
    """Per-example softmax cross-entropy."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)

  def metric_sums(self, logits, labels, mask):
    """Sums over the unmasked examples, so batches and devices add up exactly: loss, errors, count."""
    wrong = (jnp.argmax(logits, -1) != labels).astype(jnp.float32)
    return {'loss': jnp.sum(self.loss(logits, labels) * mask),
            'errors': jnp.sum(wrong * mask),
            'count': jnp.sum(mask)}
