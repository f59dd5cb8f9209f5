"""1D convolutions over time for series and text: a plain CNN, a WaveNet-style causal dilated stack, and a
hybrid whose convolutions shorten the sequence before a recurrent layer reads it.

Inputs follow jaxnets.models.recurrent: a series [B, T, C], token ids [B, T] (embedded first), or a dict
with 'inputs' (and 'length': padded steps are zeroed before each convolution, and a mean over time
counts the valid steps only).
"""

import flax.linen as nn
import jax.numpy as jnp

from jaxnets.models.recurrent import RecurrentStack, embed, last_step, mask_steps, unpack


class CNN1D(nn.Module):
  """Convolutions of `widths` channels (kernel `kernel`, stride `stride`, ReLU), then the flattened features
  (pool='flatten', fixed length) or their average over time (pool='mean') into a Dense head. The MNIST-1D
  baseline (Greydanus 2020) is three convolutions of stride 2 and a linear head."""
  num_classes: int = 10
  widths: tuple = (32, 32, 32)
  kernel: int = 5
  stride: int = 2
  pool: str = 'flatten'
  vocab_size: int = 0
  embed_dim: int = 64

  @nn.compact
  def __call__(self, x, train: bool = False):
    if self.pool not in ('flatten', 'mean'):
      raise ValueError(f"CNN1D pool={self.pool!r}; valid choices: 'flatten', 'mean'")
    inputs, length, _ = unpack(x)
    h = embed(inputs, self.vocab_size, self.embed_dim)
    for i, width in enumerate(self.widths):
      h = mask_steps(h, length)
      h = nn.relu(nn.Conv(width, (self.kernel,), strides=self.stride, padding='SAME', name=f'conv{i}')(h))
      length = None if length is None else -(-length // self.stride)  # Output steps that read a valid one.
    if self.pool == 'flatten':
      return nn.Dense(self.num_classes, name='head')(mask_steps(h, length).reshape(h.shape[0], -1))
    count = h.shape[1] if length is None else jnp.maximum(length, 1)[:, None]
    return nn.Dense(self.num_classes, name='head')(jnp.sum(mask_steps(h, length), axis=1) / count)


class WaveNet(nn.Module):
  """A WaveNet-style stack (van den Oord et al. 2016): causal convolutions with dilations `dilations`
  (receptive field 1 + (kernel - 1) * sum(dilations) steps), gated tanh x sigmoid units, residual and skip
  connections. Outputs the last step's prediction [B, num_classes], or every step's with per_step=True
  (each step sees only itself and the past)."""
  num_classes: int = 1
  channels: int = 32
  dilations: tuple = (1, 2, 4, 8, 16)
  kernel: int = 2
  per_step: bool = False
  vocab_size: int = 0
  embed_dim: int = 64

  @nn.compact
  def __call__(self, x, train: bool = False):
    inputs, length, _ = unpack(x)
    h = nn.Conv(self.channels, (1,), name='input')(mask_steps(embed(inputs, self.vocab_size, self.embed_dim),
                                                               length))
    skips = 0
    for i, dilation in enumerate(self.dilations):
      z = nn.Conv(2 * self.channels, (self.kernel,), padding='CAUSAL', kernel_dilation=dilation,
                  name=f'dilated{i}')(h)
      gated = jnp.tanh(z[..., :self.channels]) * nn.sigmoid(z[..., self.channels:])
      h = h + nn.Conv(self.channels, (1,), name=f'residual{i}')(gated)
      skips = skips + nn.Conv(self.channels, (1,), name=f'skip{i}')(gated)
    out = nn.Conv(self.num_classes, (1,), name='head')(nn.relu(nn.Conv(self.channels, (1,), name='mix')(
        nn.relu(skips))))
    return mask_steps(out, length) if self.per_step else last_step(out, length, bidirectional=False)


class ConvRNN(nn.Module):
  """A hybrid: strided convolutions extract local features and shorten the series, then a recurrent layer
  reads them and a Dense head takes its last step (sequences of one length; no 'length' input)."""
  num_classes: int = 10
  widths: tuple = (32, 32)
  kernel: int = 5
  stride: int = 2
  cell: str = 'gru'
  features: int = 64
  vocab_size: int = 0
  embed_dim: int = 64

  @nn.compact
  def __call__(self, x, train: bool = False):
    inputs, length, _ = unpack(x)
    if length is not None:
      raise ValueError('conv_rnn reads sequences of one length; this dataset pads them (it has a length)')
    h = embed(inputs, self.vocab_size, self.embed_dim)
    for i, width in enumerate(self.widths):
      h = nn.relu(nn.Conv(width, (self.kernel,), strides=self.stride, padding='SAME', name=f'conv{i}')(h))
    h = RecurrentStack(self.cell, self.features, name='rnn')(h, train=train)
    return nn.Dense(self.num_classes, name='head')(h[:, -1])


ENTRIES = {'cnn1d': CNN1D, 'wavenet': WaveNet, 'conv_rnn': ConvRNN}
