"""Autoencoders: dense or convolutional, stacked, tied, denoising, sparse, and variational (Kingma & Welling 2014).

An autoencoder maps an image to a code and back. Its outputs are a dict:
  'logits': [B, H, W, C], the reconstruction before the sigmoid (sigmoid(logits) is the image in [0, 1]);
    a VAE's is decoded from its sample z in training and from the posterior mean in evaluation;
  'code': [B, code], the code (a VAE's posterior mean);
  'kl': [B], a VAE's KL(q(z|x) || N(0, I)) in nats;
  'elbo_logits' and 'prior_sample': [B, H, W, C], a VAE's logits in evaluation decoded from a sample of
    q(z|x) (the ELBO's one-sample reconstruction term) and from z ~ N(0, I) (sample grids).
A stacked autoencoder is one with several hidden layers (`hidden`), trained end to end. A denoising one
corrupts its input in training only (Gaussian noise of std `input_noise`, in [0, 1] pixel units, and/or
dropout of pixels), the target staying the clean image. A sparse one adds a penalty on the code to the
objective in training, sown into 'losses': 'l1' is weight * sum |code| per example; 'kl' gives the code a
sigmoid and is weight * sum_j KL(target || mean activation of unit j over the batch) (Ng's sparse
autoencoder). A VAE draws z = mean + exp(log_var / 2) * eps from the 'sample' RNG stream.

The encoder is a module of its own ('encoder'), so that a classifier (`encoder_classifier`) can reuse an
autoencoder's trained encoder for unsupervised pretraining.
"""

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxnets.nn import initializers

SPARSITY = ('', 'l1', 'kl')


def _conv_grid(shape: tuple, widths: tuple) -> tuple:
  """(H, W) after len(widths) stride-2 convolutions; an error unless each halving is exact."""
  h, w = shape[:2]
  factor = 2 ** len(widths)
  if h % factor or w % factor:
    raise ValueError(f'a convolutional autoencoder with {len(widths)} stride-2 stages needs images whose sides '
                     f'divide by {factor}, got {h}x{w}: set data.pad_to or change model.widths={widths}')
  return h // factor, w // factor


def reparameterize(key, mean, log_var):
  """z = mean + exp(log_var / 2) * eps, eps ~ N(0, I): a sample of N(mean, exp(log_var)) that gradients flow
  through to mean and log_var."""
  return mean + jnp.exp(0.5 * log_var) * jax.random.normal(key, mean.shape, mean.dtype)


class Encoder(nn.Module):
  """Image -> features: dense layers (`hidden`) on the flattened image, or stride-2 3x3 convolutions
  (`widths`), ReLU after each; then the code layer 'code' (linear), and for a VAE 'log_var'."""
  kind: str  # 'dense' or 'conv'.
  hidden: tuple
  widths: tuple
  code: int
  variational: bool = False

  @nn.compact
  def __call__(self, x):
    init = initializers.get('he_normal')
    if self.kind == 'conv':
      for i, width in enumerate(self.widths):
        x = nn.relu(nn.Conv(width, (3, 3), strides=2, padding='SAME', kernel_init=init, name=f'conv{i}')(x))
    x = x.reshape(x.shape[0], -1)
    if self.kind == 'dense':
      for i, width in enumerate(self.hidden):
        x = nn.relu(nn.Dense(width, kernel_init=init, name=f'dense{i}')(x))
    code = nn.Dense(self.code, name='code')(x)
    return (code, nn.Dense(self.code, name='log_var')(x)) if self.variational else (code, None)


class Decoder(nn.Module):
  """Code -> reconstruction logits of `shape`: the encoder's layers mirrored (dense, or a dense layer to the
  last feature map then stride-2 transposed convolutions), ReLU between them."""
  kind: str
  hidden: tuple
  widths: tuple
  shape: tuple  # (H, W, C) of the image.

  @nn.compact
  def __call__(self, z):
    init = initializers.get('he_normal')
    if self.kind == 'dense':
      for i, width in reversed(list(enumerate(self.hidden))):
        z = nn.relu(nn.Dense(width, kernel_init=init, name=f'dense{i}')(z))
      return nn.Dense(math.prod(self.shape), name='out')(z).reshape((-1,) + tuple(self.shape))
    h, w = _conv_grid(self.shape, self.widths)
    z = nn.relu(nn.Dense(h * w * self.widths[-1], kernel_init=init, name='dense')(z))
    z = z.reshape(-1, h, w, self.widths[-1])
    for i, width in reversed(list(enumerate(self.widths[:-1]))):
      z = nn.relu(nn.ConvTranspose(width, (3, 3), strides=(2, 2), padding='SAME', kernel_init=init,
                                   name=f'deconv{i + 1}')(z))
    return nn.ConvTranspose(self.shape[-1], (3, 3), strides=(2, 2), padding='SAME', name='deconv0')(z)


class TiedDecoder(nn.Module):
  """A dense decoder whose kernels are the encoder's, transposed (tied weights); only its biases are its own."""
  kernels: tuple  # The encoder's dense kernels, input to code.
  shape: tuple

  @nn.compact
  def __call__(self, z):
    for i, kernel in reversed(list(enumerate(self.kernels))):
      bias = self.param(f'bias{i}', nn.initializers.zeros, (kernel.shape[0],))
      z = z @ kernel.T + bias
      z = nn.relu(z) if i else z
    return z.reshape((-1,) + tuple(self.shape))


class Autoencoder(nn.Module):
  """Encoder -> code -> decoder, with the denoising, sparsity and variational options of the module doc."""
  kind: str = 'dense'
  hidden: tuple = (256,)  # Dense kind: hidden widths, input side first.
  widths: tuple = (32, 64)  # Conv kind: channels of the stride-2 convolutions.
  code: int = 32
  tied: bool = False
  input_noise: float = 0.0
  input_dropout: float = 0.0
  sparsity: str = ''
  sparsity_weight: float = 0.0
  sparsity_target: float = 0.05
  variational: bool = False

  def _check(self):
    """One-line errors for settings that do not fit together."""
    if self.kind not in ('dense', 'conv'):
      raise ValueError(f"model.kind={self.kind!r} is not one of dense, conv")
    if self.sparsity not in SPARSITY:
      raise ValueError(f'model.sparsity={self.sparsity!r} is not one of {SPARSITY}')
    if self.tied and (self.kind != 'dense' or self.variational):
      raise ValueError('model.tied=True ties a dense, non-variational autoencoder\'s decoder to its encoder; '
                       f'got kind={self.kind!r}, variational={self.variational}')
    if self.sparsity and self.sparsity_weight <= 0:
      raise ValueError(f'model.sparsity={self.sparsity!r} needs model.sparsity_weight > 0, got {self.sparsity_weight}')
    if self.sparsity and self.variational:
      raise ValueError(f'model.sparsity={self.sparsity!r} is for a plain autoencoder; a VAE\'s code is '
                       'regularized by its KL term')
    if not 0 <= self.input_dropout < 1 or self.input_noise < 0:
      raise ValueError(f'model.input_dropout={self.input_dropout} must be in [0, 1) and model.input_noise='
                       f'{self.input_noise} >= 0')

  def _corrupt(self, x, train):
    """The denoising autoencoder's corrupted input (training only)."""
    if not train:
      return x
    if self.input_noise:
      x = x + self.input_noise * jax.random.normal(self.make_rng('dropout'), x.shape, x.dtype)
    if self.input_dropout:
      x = nn.Dropout(self.input_dropout, deterministic=False)(x)
    return x

  def _sparse(self, code, train):
    """The sparse code, and its penalty sown into 'losses' in training."""
    if self.sparsity == 'kl':
      code = nn.sigmoid(code)
    if train and self.sparsity == 'l1':
      self.sow('losses', 'sparsity', self.sparsity_weight * jnp.sum(jnp.abs(code), -1))
    if train and self.sparsity == 'kl':
      rho, rho_hat = self.sparsity_target, jnp.clip(jnp.mean(code, 0), 1e-6, 1 - 1e-6)
      kl = rho * jnp.log(rho / rho_hat) + (1 - rho) * jnp.log((1 - rho) / (1 - rho_hat))
      self.sow('losses', 'sparsity', self.sparsity_weight * jnp.sum(kl))
    return code

  @nn.compact
  def __call__(self, x, train: bool = False):
    self._check()
    shape = x.shape[1:]
    if self.kind == 'conv':
      _conv_grid(shape, self.widths)
    encoder = Encoder(self.kind, self.hidden, self.widths, self.code, self.variational, name='encoder')
    mean, log_var = encoder(self._corrupt(x, train))
    if self.tied:
      kernels = tuple(encoder.variables['params'][f'dense{i}']['kernel'] for i in range(len(self.hidden)))
      decoder = TiedDecoder(kernels + (encoder.variables['params']['code']['kernel'],), shape, name='decoder')
    else:
      decoder = Decoder(self.kind, self.hidden, self.widths, shape, name='decoder')
    if not self.variational:
      code = self._sparse(mean, train)
      return {'logits': decoder(code), 'code': code}
    z = reparameterize(self.make_rng('sample'), mean, log_var)
    kl = 0.5 * jnp.sum(jnp.exp(log_var) + jnp.square(mean) - 1.0 - log_var, -1)
    if train:
      return {'logits': decoder(z), 'code': mean, 'kl': kl}
    # Evaluation: the reconstruction of the posterior mean (compared with the other autoencoders'), the
    # ELBO's term from the sample z, and an image of the prior.
    return {'logits': decoder(mean), 'elbo_logits': decoder(z), 'code': mean, 'kl': kl,
            'prior_sample': decoder(jax.random.normal(self.make_rng('sample'), mean.shape, mean.dtype))}


class EncoderClassifier(nn.Module):
  """An autoencoder's encoder, ReLU on its code, and a linear 'head': a classifier whose 'encoder/...'
  parameters an autoencoder run (or another classifier) can give it."""
  num_classes: int = 10
  kind: str = 'conv'
  hidden: tuple = (256,)
  widths: tuple = (32, 64)
  code: int = 32
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool = False):
    code, _ = Encoder(self.kind, self.hidden, self.widths, self.code, name='encoder')(x)
    h = nn.Dropout(self.dropout, deterministic=not train)(nn.relu(code))
    return nn.Dense(self.num_classes, name='head')(h)


ENTRIES = {
    'autoencoder': Autoencoder,
    'conv_autoencoder': functools.partial(Autoencoder, kind='conv'),
    'vae': functools.partial(Autoencoder, variational=True),
    'conv_vae': functools.partial(Autoencoder, kind='conv', variational=True),
    'encoder_classifier': EncoderClassifier,
}
