"""Densely connected networks (Huang et al. 2017), the ImageNet DenseNet-BC of torchvision's layout.

Each layer of a dense block sees the concatenation of every earlier feature map in the block and adds
`growth_rate` channels of its own; transitions halve the channels (compression 0.5) and the resolution.
"""

import functools

import flax.linen as nn
import jax.numpy as jnp

from jaxnets.models.layers import BNActConv, ConvBN, batch_norm
from jaxnets.nn import pooling


class DenseLayer(nn.Module):
  """BN-relu-conv1x1 (bn_size * growth_rate channels), BN-relu-conv3x3 (growth_rate), joined to its input."""
  growth_rate: int
  bn_size: int = 4
  drop_rate: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool):
    y = BNActConv(self.bn_size * self.growth_rate, 1, name='conv1')(x, train)
    y = BNActConv(self.growth_rate, 3, name='conv2')(y, train)
    y = nn.Dropout(self.drop_rate, deterministic=not train)(y)
    return jnp.concatenate([x, y], axis=-1)


class DenseBlock(nn.Module):
  """`num_layers` dense layers named layer1, layer2, ...; adds num_layers * growth_rate channels."""
  num_layers: int
  growth_rate: int
  bn_size: int = 4
  drop_rate: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool):
    for i in range(self.num_layers):
      x = DenseLayer(self.growth_rate, self.bn_size, self.drop_rate, name=f'layer{i + 1}')(x, train)
    return x


class Transition(nn.Module):
  """BN-relu-conv1x1 to half the channels, then 2x2 average pooling with stride 2."""

  @nn.compact
  def __call__(self, x, train: bool):
    return pooling.pool('avg', BNActConv(x.shape[-1] // 2, 1, name='conv')(x, train), 2)


class DenseNet(nn.Module):
  """A 7x7/2 conv stem, a 3x3/2 max pool, dense blocks joined by transitions, BN-relu, pooling, a head.

  Top-level modules: stem, denseblock1, transition1, ..., denseblockN, final_norm, head.
  """
  block_config: tuple = (6, 12, 24, 16)
  growth_rate: int = 32
  num_init_features: int = 64
  bn_size: int = 4
  drop_rate: float = 0.0
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = ConvBN(self.num_init_features, 7, 2, name='stem')(x, train)
    x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))  # torchvision's; SAME shifts the windows.
    for i, num_layers in enumerate(self.block_config):
      x = DenseBlock(num_layers, self.growth_rate, self.bn_size, self.drop_rate,
                     name=f'denseblock{i + 1}')(x, train)
      if i < len(self.block_config) - 1:
        x = Transition(name=f'transition{i + 1}')(x, train)
    x = nn.relu(batch_norm(train, name='final_norm')(x))
    return nn.Dense(self.num_classes, name='head')(pooling.global_avg_pool(x))


ENTRIES = {
    'densenet': DenseNet,
    'densenet121': functools.partial(DenseNet, block_config=(6, 12, 24, 16)),
    'densenet169': functools.partial(DenseNet, block_config=(6, 12, 32, 32)),
    'densenet201': functools.partial(DenseNet, block_config=(6, 12, 48, 32)),
    'densenet161': functools.partial(DenseNet, block_config=(6, 12, 36, 24), growth_rate=48,
                                     num_init_features=96),
}
