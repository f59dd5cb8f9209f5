"""VGG (Simonyan & Zisserman 2015), configurations A, B, D, E (11, 13, 16, 19 layers), with and without BN.

torchvision's layout: 3x3 convolutions with bias (BatchNorm between conv and ReLU in the _bn variants),
five stages of 64, 128, 256, 512, 512 filters each closed by a 2x2/2 max pool, an adaptive average pool
to 7x7, a classifier of two 4096-wide layers (ReLU, dropout 0.5) and the logits; torchvision's
initialization (He normal over fan-out for convolutions, N(0, 0.01^2) for dense layers, zero biases).
The fields also give the CIFAR-style nets: a narrower classifier, global pooling or none, narrower
stages. With `endpoints=True` the net is a backbone (FCN's): it returns the feature map after each
stage's max pool and builds no classifier, so its parameters are the classifier's conv stack, by name.
"""

import functools
from typing import Optional

import flax.linen as nn

from jaxnets.models.cnn import ConvUnit
from jaxnets.nn import initializers
from jaxnets.nn.pooling import adaptive_avg_pool, pool

# Convolutions per stage, Table 1 of the paper: A (11), B (13), D (16), E (19).
STAGE_DEPTHS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
STAGE_WIDTHS = (64, 128, 256, 512, 512)

dense_init = initializers.get('normal:0.01')


class VGG(nn.Module):
  """Convolutions stageK_blockJ (`widths[K - 1]` filters), then fc6, fc7 (`classifier_width` wide) and head.

  `pool_size` is the side of the adaptive average pool before the classifier (torchvision: 7; 1 is
  global average pooling; None flattens the last feature map as it is).
  """
  depth: int = 16
  num_classes: int = 1000
  batch_norm: bool = False
  classifier_width: int = 4096
  pool_size: Optional[int] = 7
  dropout: float = 0.5
  widths: tuple = STAGE_WIDTHS

  @nn.compact
  def __call__(self, x, train: bool = False, endpoints: bool = False):
    """The logits, or with `endpoints` the dict {'pool1': ..., 'pool5': ...} of strides 2 ... 32."""
    if self.depth not in STAGE_DEPTHS:
      raise ValueError(f'unknown VGG depth {self.depth}; valid choices: {", ".join(map(str, STAGE_DEPTHS))}')
    if len(self.widths) != len(STAGE_WIDTHS):
      raise ValueError(f'VGG takes {len(STAGE_WIDTHS)} stage widths, got {len(self.widths)}: {self.widths}')
    features = {}
    for i, (convs, width) in enumerate(zip(STAGE_DEPTHS[self.depth], self.widths)):
      for j in range(convs):
        # torchvision: conv with bias even before BN, fan-out He init, BN momentum 0.1 and eps 1e-5.
        x = ConvUnit(width, 'relu', 'he_normal_fan_out', self.batch_norm, 1e-5, conv_bias=True,
                     name=f'stage{i + 1}_block{j}')(x, train)
      x = features[f'pool{i + 1}'] = pool('max', x, 2)
    if endpoints:
      return features
    if self.pool_size is not None:
      x = adaptive_avg_pool(x, self.pool_size)
    x = x.reshape(x.shape[0], -1)
    for name in ('fc6', 'fc7'):
      x = nn.relu(nn.Dense(self.classifier_width, kernel_init=dense_init, name=name)(x))
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(self.num_classes, kernel_init=dense_init, name='head')(x)


ENTRIES = {}
for _depth in STAGE_DEPTHS:
  ENTRIES[f'vgg{_depth}'] = functools.partial(VGG, depth=_depth, batch_norm=False)
  ENTRIES[f'vgg{_depth}_bn'] = functools.partial(VGG, depth=_depth, batch_norm=True)
