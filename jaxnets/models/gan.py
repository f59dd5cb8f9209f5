"""DCGAN (Radford et al. 2016) for small grey images: a generator and a discriminator in one module.

The generator maps z ~ N(0, I) through a dense layer to a 4x-downsampled map, then stride-2 transposed
convolutions with BatchNorm and ReLU up to the image, tanh at the output (no BatchNorm there). The
discriminator mirrors it: stride-2 convolutions with LeakyReLU(0.2), BatchNorm after all but the first, and
one logit. Images enter the discriminator in [-1, 1], the generator's range; the data are pixels in [0, 1]
(data.normalize='unit'), mapped by 2x - 1.

Parameters and BatchNorm statistics are {'generator': ..., 'discriminator': ...}; jaxnets.tasks.gan
updates each network with its own optimizer state. Methods: `generate(count, train)` draws z from the
'sample' RNG stream; `discriminate(images, train)` gives logits [B]. Called as a whole (init and
evaluation) it returns {'samples' in [0, 1], 'real_logits', 'fake_logits'}.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxnets.models.layers import batch_norm

LEAK = 0.2


class Generator(nn.Module):
  """z -> image in [-1, 1] of `shape` (H and W divisible by 4)."""
  shape: tuple
  width: int = 64

  @nn.compact
  def __call__(self, z, train: bool):
    h, w, c = self.shape
    x = nn.Dense((h // 4) * (w // 4) * 2 * self.width, use_bias=False, name='project')(z)
    x = nn.relu(batch_norm(train, name='project_bn')(x)).reshape(-1, h // 4, w // 4, 2 * self.width)
    x = nn.ConvTranspose(self.width, (4, 4), strides=(2, 2), padding='SAME', use_bias=False, name='deconv1')(x)
    x = nn.relu(batch_norm(train, name='deconv1_bn')(x))
    return jnp.tanh(nn.ConvTranspose(c, (4, 4), strides=(2, 2), padding='SAME', name='deconv2')(x))


class Discriminator(nn.Module):
  """Image in [-1, 1] -> one real-vs-fake logit per image."""
  width: int = 64

  @nn.compact
  def __call__(self, x, train: bool):
    x = nn.leaky_relu(nn.Conv(self.width, (4, 4), strides=2, padding='SAME', name='conv1')(x), LEAK)
    x = nn.Conv(2 * self.width, (4, 4), strides=2, padding='SAME', use_bias=False, name='conv2')(x)
    x = nn.leaky_relu(batch_norm(train, name='conv2_bn')(x), LEAK)
    return nn.Dense(1, name='logit')(x.reshape(x.shape[0], -1))[:, 0]


class DCGAN(nn.Module):
  """The pair; see the module docstring."""
  latent: int = 100
  width: int = 64
  image_shape: tuple = (28, 28, 1)

  def setup(self):
    h, w, _ = self.image_shape
    if h % 4 or w % 4:
      raise ValueError(f'a DCGAN upsamples by 4: image sides must divide by 4, got {h}x{w}; set data.pad_to')
    self.generator = Generator(tuple(self.image_shape), self.width)
    self.discriminator = Discriminator(self.width)

  def generate(self, count: int, train: bool = False):
    """`count` generated images in [-1, 1], z drawn from the 'sample' stream."""
    z = jax.random.normal(self.make_rng('sample'), (count, self.latent))
    return self.generator(z, train)

  def discriminate(self, images, train: bool = False):
    """Logits [B] that images in [-1, 1] are real."""
    return self.discriminator(images, train)

  def __call__(self, images, train: bool = False):
    if tuple(images.shape[1:]) != tuple(self.image_shape):
      raise ValueError(f'model.image_shape={tuple(self.image_shape)} but the images are {tuple(images.shape[1:])}')
    fake = self.generate(images.shape[0], train)
    return {'samples': (fake + 1) / 2, 'real_logits': self.discriminate(2 * images - 1, train),
            'fake_logits': self.discriminate(fake, train)}


ENTRIES = {'dcgan': DCGAN}
