"""Reconstruction: an autoencoder's target is its own input image, in [0, 1] (data.normalize 'unit' or 'binary').

The model gives {'logits', 'code'} and, for a VAE, 'kl' (see jaxnets.models.autoencoder). The per-image
objective is summed over pixels: Bernoulli cross-entropy (nats per image) or the squared error; a VAE adds
its KL term, so with the Bernoulli loss it minimizes the negative ELBO. Runs are ranked by the pixel MSE
of sigmoid(logits), which every kind of autoencoder shares; the negative ELBO in nats per image (what
Flax's VAE example reports) is logged beside it for a VAE. A VAE's evaluation draws one z per image from the
run's evaluation key (the ELBO is a one-sample estimate, the same on every rerun); its reconstruction, the
MSE and the pictures, decodes the posterior mean.
"""

import jax
import jax.numpy as jnp
import optax

from jaxnets.tasks.base import Headline, Task

LOSSES = ('bernoulli', 'mse')


class Reconstruction(Task):
  """Reconstruction logits [B, H, W, C] against the input image [B, H, W, C] in [0, 1]."""
  target = 'image'
  headline = Headline('mse', higher_is_better=False)
  unit_images = True  # Its targets are pixels in [0, 1]: the builder refuses data.normalize='standard'.
  prediction_examples = 1000  # The code-space plot colours this many test codes by class.

  def __init__(self, classes: tuple, loss: str = 'bernoulli'):
    del classes  # The image is its own target.
    if loss not in LOSSES:
      raise ValueError(f'task.loss={loss!r} is not one of {", ".join(LOSSES)}')
    self.loss_name = loss

  def _terms(self, outputs, batch) -> dict:
    """Per-image sums over pixels: Bernoulli cross-entropy (of a VAE's sample z in evaluation, 'elbo_logits')
    and squared error (of the reconstruction, 'logits'); and the KL term if any."""
    logits, image = outputs['logits'], batch['image']
    axes = tuple(range(1, image.ndim))
    terms = {'bce': jnp.sum(optax.sigmoid_binary_cross_entropy(outputs.get('elbo_logits', logits), image), axes),
             'squared_error': jnp.sum(jnp.square(jax.nn.sigmoid(logits) - image), axes)}
    if 'kl' in outputs:
      terms['kl'] = outputs['kl']
    return terms

  def loss(self, outputs, batch):
    """Per-image objective: the chosen reconstruction term, plus the KL term for a VAE."""
    terms = self._terms(outputs, batch)
    data = terms['bce'] if self.loss_name == 'bernoulli' else terms['squared_error']
    return data + terms.get('kl', 0.0)

  def metric_sums(self, outputs, batch, mask):
    """Sums over the unmasked images of each term and the loss; 'pixels' counts pixels per image."""
    sums = {k: jnp.sum(v * mask) for k, v in self._terms(outputs, batch).items()}
    sums.update(loss=jnp.sum(self.loss(outputs, batch) * mask), count=jnp.sum(mask),
                pixels=jnp.asarray(batch['image'][0].size, jnp.float32) * jnp.sum(mask))
    return sums

  def metrics(self, sums):
    """Pixel MSE, Bernoulli cross-entropy in nats per image, and for a VAE its KL and negative ELBO."""
    out = {'mse': sums['squared_error'] / sums['pixels'], 'loss': sums['loss'] / sums['count'],
           'bce': sums['bce'] / sums['count']}
    if 'kl' in sums:
      out['kl'] = sums['kl'] / sums['count']
      out['neg_elbo'] = out['bce'] + out['kl']
    return out

  def predict(self, outputs, batch):
    """The reconstructed image (uint8), the code, and a VAE's decoded prior sample (uint8)."""
    to_uint8 = lambda logits: jnp.round(255 * jax.nn.sigmoid(logits)).astype(jnp.uint8)
    out = {'image': to_uint8(outputs['logits']), 'code': outputs['code']}
    if 'prior_sample' in outputs:
      out['sample'] = to_uint8(outputs['prior_sample'])
    return out
