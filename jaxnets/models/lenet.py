"""LeNet-5 (LeCun et al. 1998) as in the paper, and its modern variant (ReLU, max pooling, full connections).

The paper's net: 32x32 input, C1 6@5x5, S2 trainable subsampling, C3 16@5x5 wired by Table I, S4,
C5 120@5x5, F6 84, every layer squashed by f(a) = 1.7159 tanh(2a / 3). Its output layer of Euclidean
RBF units with fixed codes is replaced here by a dense layer of logits, so the net trains with the same
cross-entropy as every other model. Smaller inputs are zero-padded to 32x32 (centered), as the paper did
with the 28x28 MNIST digits.
"""

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxnets.nn import activations, initializers
from jaxnets.nn.pooling import KINDS, pool

INPUT_SIZE = 32
POOLINGS = ('subsample',) + KINDS

# Table I: the S2 maps each C3 map takes as input: contiguous triples, contiguous quadruples, three
# discontinuous quadruples, then all six. 60 connections: 60 * 25 weights + 16 biases = 1,516 parameters.
C3_TABLE = ((0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
            (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
            (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5), (0, 1, 2, 3, 4, 5))


class Subsampling(nn.Module):
  """The paper's S layers: the sum of each map's 2x2 windows times a trainable coefficient, plus a bias.

  Two parameters per map; the coefficient is drawn by `kernel_init` as a weight of fan-in 4.
  """
  kernel_init: Callable = initializers.get('lecun98_uniform')

  @nn.compact
  def __call__(self, x):
    maps = x.shape[-1]
    coefficient = self.param('coefficient', lambda key: self.kernel_init(key, (4, maps))[0])
    bias = self.param('bias', nn.initializers.zeros, (maps,))
    return 4 * pool('avg', x, 2) * coefficient + bias


class TableConv(nn.Module):
  """A VALID convolution in which output map j sees only the input maps `table[j]` (the paper's C3).

  The kernel holds one k x k filter per connection, [k, k, connections]; each output map's filters are
  drawn by `kernel_init` with that map's own fan-in (k * k * len(table[j])).
  """
  table: tuple = C3_TABLE
  kernel_size: int = 5
  kernel_init: Callable = initializers.get('lecun98_uniform')

  @nn.compact
  def __call__(self, x):
    k = self.kernel_size

    def init(key):
      keys = jax.random.split(key, len(self.table))
      return jnp.concatenate([self.kernel_init(kj, (k, k, len(inputs), 1))[..., 0]
                              for kj, inputs in zip(keys, self.table)], axis=2)

    kernel = self.param('kernel', init)
    bias = self.param('bias', nn.initializers.zeros, (len(self.table),))
    sources = [i for inputs in self.table for i in inputs]
    targets = [j for j, inputs in enumerate(self.table) for _ in inputs]
    full = jnp.zeros((k, k, x.shape[-1], len(self.table)), kernel.dtype)
    full = full.at[:, :, sources, targets].set(kernel)
    y = jax.lax.conv_general_dilated(x, full, (1, 1), 'VALID', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return y + bias


class LeNet5(nn.Module):
  """LeNet-5, layers named c1, s2, c3, s4, c5, f6, head (num_classes logits in place of the RBF layer).

  `pooling` is 'subsample' (the paper's trainable S layers, followed by the activation) or a parameter-free
  `pool` kind; `c3_table` wires C3 by Table I, else fully; `activation` and `kernel_init` are
  jaxnets.nn specs ('scaled_tanh' and 'lecun98_uniform' are the paper's).
  """
  num_classes: int = 10
  activation: str = 'scaled_tanh'
  pooling: str = 'subsample'
  c3_table: bool = True
  kernel_init: str = 'lecun98_uniform'

  def _pool(self, x, act, init, name):
    """S2 or S4: the trainable subsampling layer and the activation, or a parameter-free 2x2 pool."""
    if self.pooling == 'subsample':
      return act(Subsampling(init, name=name)(x))
    return pool(self.pooling, x, 2)

  @nn.compact
  def __call__(self, x, train: bool = False):
    if self.pooling not in POOLINGS:
      raise ValueError(f'unknown LeNet-5 pooling {self.pooling!r}; valid choices: {", ".join(POOLINGS)}')
    height, width = x.shape[1:3]
    if height > INPUT_SIZE or width > INPUT_SIZE:
      raise ValueError(f'LeNet-5 takes inputs up to {INPUT_SIZE}x{INPUT_SIZE}, got {height}x{width}')
    top, left = (INPUT_SIZE - height) // 2, (INPUT_SIZE - width) // 2
    x = jnp.pad(x, [(0, 0), (top, INPUT_SIZE - height - top), (left, INPUT_SIZE - width - left), (0, 0)])
    act, init = activations.get(self.activation), initializers.get(self.kernel_init)
    x = act(nn.Conv(6, (5, 5), padding='VALID', kernel_init=init, name='c1')(x))
    x = self._pool(x, act, init, 's2')
    if self.c3_table:
      x = act(TableConv(C3_TABLE, 5, init, name='c3')(x))
    else:
      x = act(nn.Conv(16, (5, 5), padding='VALID', kernel_init=init, name='c3')(x))
    x = self._pool(x, act, init, 's4')
    x = act(nn.Conv(120, (5, 5), padding='VALID', kernel_init=init, name='c5')(x))
    x = act(nn.Dense(84, kernel_init=init, name='f6')(x.reshape(x.shape[0], -1)))
    return nn.Dense(self.num_classes, kernel_init=init, name='head')(x)


class ModernLeNet5(LeNet5):
  """LeNet-5 as usually trained today: ReLU, 2x2 max pooling, a fully connected C3, He initialization."""
  activation: str = 'relu'
  pooling: str = 'max'
  c3_table: bool = False
  kernel_init: str = 'he_normal'


ENTRIES = {'lenet5': LeNet5, 'lenet5_modern': ModernLeNet5}
