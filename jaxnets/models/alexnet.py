"""AlexNet (Krizhevsky et al. 2012) in torchvision's one-tower layout (61,100,840 parameters at 1000 classes).

torchvision's variant, from Krizhevsky (2014)'s "one weird trick": 64-192-384-256-256 filters, no local
response normalization, no split across two GPUs. An adaptive average pool to 6x6 feeds the classifier
(dropout 0.5 before each of the two 4096-wide layers), so any input of at least 63x63 works.
"""

import flax.linen as nn

from jaxnets.nn.pooling import adaptive_avg_pool, pool


class AlexNet(nn.Module):
  """Five convolutions (conv1 ... conv5, ReLU, 3x3/2 max pools after 1, 2 and 5), fc6, fc7, head.

  Flax's default initializers; the flatten is NHWC, so torchvision's fc6 weights need a permutation.
  """
  num_classes: int = 1000
  dropout: float = 0.5

  @nn.compact
  def __call__(self, x, train: bool = False):
    layers = [(64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1)]
    for i, (features, kernel, stride, padding) in enumerate(layers):
      x = nn.relu(nn.Conv(features, (kernel, kernel), stride, padding=[(padding, padding)] * 2,
                          name=f'conv{i + 1}')(x))
      if i in (0, 1, 4):
        x = pool('max', x, 3, 2)
    x = adaptive_avg_pool(x, 6).reshape(x.shape[0], -1)
    for name in ('fc6', 'fc7'):
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
      x = nn.relu(nn.Dense(4096, name=name)(x))
    return nn.Dense(self.num_classes, name='head')(x)


ENTRIES = {'alexnet': AlexNet}
