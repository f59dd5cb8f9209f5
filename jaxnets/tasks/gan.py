"""A GAN (Goodfellow et al. 2014; DCGAN's recipe): the discriminator, then the generator, one step each per
batch, with the non-saturating generator loss -log D(G(z)).

The model is jaxnets.models.gan.DCGAN; pixels are in [0, 1] (data.normalize='unit'). Evaluation generates
one image per test image and scores the lot with jaxnets' own Fashion-MNIST classifier
(jaxnets.generative; trained once into the data_dir on first use): the Frechet distance between the
features of the generated and the real test images (the headline; lower is better), an Inception-score-
style score (at most 10), and the class histogram of the generated images, where mode collapse shows.
The Frechet distance shrinks as the sample grows: the curve during training scores
data.test_curve_examples samples, the final row the whole test split's count. Every evaluation on the
test split writes its first samples and their histogram to samples/step<N>.npz (samples/test.npz at the
end) for the report's picture. As in DCGAN's reference code, both networks run in training mode in both
steps, so BatchNorm's running averages move in each.
"""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.generative import feature_net, scores
from jaxnets.tasks.base import Accumulator, Headline, Task

SAMPLES_DIR = 'samples'
SAVED_SAMPLES = 64


def _bce_real(logits):
  """-log sigmoid(logits): the cross-entropy of calling these images real."""
  return jax.nn.softplus(-logits)


def _bce_fake(logits):
  """-log(1 - sigmoid(logits)): the cross-entropy of calling these images fake."""
  return jax.nn.softplus(logits)


@functools.lru_cache(maxsize=2)
def _judge(data_dir: str):
  """The feature net of `data_dir` and its reference statistics of the real test images (once per process)."""
  net = feature_net.ensure(data_dir or None)
  return net, scores.reference_stats(net, scores.real_images('test', data_dir or None))


class SampleAccumulator(Accumulator):
  """Adds up the losses and keeps every unmasked generated image; scores them with the feature net."""

  def __init__(self, finish, data_dir: str):
    super().__init__(finish)
    self._data_dir = data_dir
    self._samples = []
    self._scores = None

  def add(self, outputs: dict) -> None:
    super().add(outputs)
    examples = outputs['examples']
    self._samples.append(np.asarray(examples['samples'])[np.asarray(examples['mask']) > 0])

  def _scored(self) -> dict:
    """The feature net's verdict on the samples, computed once."""
    if self._scores is None:
      net, reference = _judge(self._data_dir)
      self._scores = scores.evaluate(net, np.concatenate(self._samples).astype(np.float32) / 255.0, reference)
    return self._scores

  def result(self) -> dict:
    scored = self._scored()
    histogram = np.asarray(scored['histogram'])
    return {**super().result(), 'frechet': scored['frechet'], 'score': scored['score'],
            'top_class_fraction': float(histogram.max())}

  def write(self, directory: str, split: str) -> None:
    """samples/<split>.npz: the first generated images (uint8) and the class histogram of all of them."""
    os.makedirs(os.path.join(directory, SAMPLES_DIR), exist_ok=True)
    path = os.path.join(directory, SAMPLES_DIR, f'{split}.npz')
    with open(path + '.tmp', 'wb') as f:
      np.savez_compressed(f, samples=np.concatenate(self._samples)[:SAVED_SAMPLES],
                          histogram=np.asarray(self._scored()['histogram']))
    os.replace(path + '.tmp', path)


class GAN(Task):
  """DCGAN's two losses; see the module docstring."""
  target = 'image'
  headline = Headline('frechet', higher_is_better=False)
  unit_images = True
  networks = ('discriminator', 'generator')
  curve_files = True  # Each evaluation during training writes its samples (SampleAccumulator.write).
  prediction_examples = SAVED_SAMPLES

  def __init__(self, classes: tuple, dataset: str, data_dir: str = '', data_classes: str = ''):
    del classes
    if dataset != 'fashion_mnist':
      raise ValueError(f'task gan scores samples with a Fashion-MNIST classifier; data.name={dataset!r} is not '
                       'fashion_mnist')
    if data_classes:
      raise ValueError(f"task gan scores samples against all ten classes' test images; data.classes="
                       f"{data_classes!r} must be ''")
    self.data_dir = data_dir

  def network_loss(self, network, apply, variables, batch, key):
    """The discriminator's cross-entropy on real (label 1) and detached generated (label 0) images, or the
    generator's -log D(G(z)); each network's batch goes through BatchNorm on its own, as in DCGAN."""
    real = 2 * batch['image'] - 1
    fake, updates = apply(variables, real.shape[0], train=True, method='generate', mutable=['batch_stats'],
                          rngs={'sample': key})
    variables = {**variables, **updates}
    discriminate = functools.partial(apply, train=True, method='discriminate', mutable=['batch_stats'])
    if network == 'generator':
      fake_logits, updates = discriminate(variables, fake)
      loss = jnp.mean(_bce_real(fake_logits))
      return loss, ({'g_loss': loss}, _state(variables, updates))
    real_logits, updates = discriminate(variables, real)
    variables = {**variables, **updates}
    fake_logits, updates = discriminate(variables, jax.lax.stop_gradient(fake))
    loss = jnp.mean(_bce_real(real_logits)) + jnp.mean(_bce_fake(fake_logits))
    metrics = {'d_loss': loss, 'd_real': jnp.mean(jax.nn.sigmoid(real_logits)),
               'd_fake': jnp.mean(jax.nn.sigmoid(fake_logits))}
    return loss, (metrics, _state(variables, updates))

  def metric_sums(self, outputs, batch, mask):
    """Per-image discriminator and generator losses in evaluation mode, summed."""
    d_loss = _bce_real(outputs['real_logits']) + _bce_fake(outputs['fake_logits'])
    return {'d_loss': jnp.sum(d_loss * mask), 'g_loss': jnp.sum(_bce_real(outputs['fake_logits']) * mask),
            'count': jnp.sum(mask)}

  def metrics(self, sums):
    """Mean losses."""
    return {'d_loss': sums['d_loss'] / sums['count'], 'g_loss': sums['g_loss'] / sums['count']}

  def eval_outputs(self, outputs, batch, mask):
    """The loss sums, and the generated images (uint8) with the mask for the feature net."""
    return {'sums': self.metric_sums(outputs, batch, mask),
            'examples': {'samples': _to_uint8(outputs['samples']), 'mask': mask}}

  def accumulator(self):
    return SampleAccumulator(self.metrics, self.data_dir)

  def predict(self, outputs, batch):
    """Generated images (uint8), one per example."""
    return {'image': _to_uint8(outputs['samples'])}


def _to_uint8(images):
  """Images in [0, 1] as stored pixels."""
  return jnp.round(255 * jnp.clip(images, 0, 1)).astype(jnp.uint8)


def _state(variables, updates) -> dict:
  """The model state after a forward pass: every collection but the parameters, with `updates` applied."""
  return {k: v for k, v in {**variables, **updates}.items() if k != 'params'}
