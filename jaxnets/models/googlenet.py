"""GoogLeNet / Inception v1 (Szegedy et al. 2014) in torchvision's layout, with optional auxiliary heads.

Every convolution is a bias-free conv, BatchNorm (eps 1e-3) and ReLU (torchvision adds BN to the paper's
net); 3x3/2 max pools round up (PyTorch's ceil_mode), giving the paper's 112, 56, 28, 14, 7 feature map
sizes at 224x224; dropout 0.2 before the logits (the paper: 0.4). The paper's 5x5 branch is 3x3 in
torchvision (a known slip kept for weight compatibility): `branch_kernel` picks, 5 by default; with 3 the
parameter counts are torchvision's (6,624,904 at 1000 classes, 13,004,888 with the auxiliary heads).
"""

import flax.linen as nn
import jax.numpy as jnp

from jaxnets.models.layers import ConvBN
from jaxnets.nn import initializers
from jaxnets.nn.pooling import adaptive_avg_pool, global_avg_pool, pool

# Table 1 of the paper: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
INCEPTION_WIDTHS = {
    '3a': (64, 96, 128, 16, 32, 32),
    '3b': (128, 128, 192, 32, 96, 64),
    '4a': (192, 96, 208, 16, 48, 64),
    '4b': (160, 112, 224, 24, 64, 64),
    '4c': (128, 128, 256, 24, 64, 64),
    '4d': (112, 144, 288, 32, 64, 64),
    '4e': (256, 160, 320, 32, 128, 128),
    '5a': (256, 160, 320, 32, 128, 128),
    '5b': (384, 192, 384, 48, 128, 128),
}
BN_EPSILON = 1e-3
dense_init = initializers.get('normal:0.01')


class Inception(nn.Module):
  """Four branches concatenated on channels: 1x1; 1x1-3x3; 1x1-kxk (k = branch_kernel); 3x3/1 max pool-1x1."""
  widths: tuple
  branch_kernel: int = 5

  @nn.compact
  def __call__(self, x, train: bool):
    n1x1, reduce3, n3x3, reduce5, n5x5, pool_proj = self.widths
    unit = lambda features, kernel, name: ConvBN(features, kernel, bn_epsilon=BN_EPSILON, name=name)
    branches = [
        unit(n1x1, 1, 'branch1')(x, train),
        unit(n3x3, 3, 'branch2_conv')(unit(reduce3, 1, 'branch2_reduce')(x, train), train),
        unit(n5x5, self.branch_kernel, 'branch3_conv')(unit(reduce5, 1, 'branch3_reduce')(x, train), train),
        unit(pool_proj, 1, 'branch4_proj')(pool('max', x, 3, 1, 'SAME'), train),
    ]
    return jnp.concatenate(branches, axis=-1)


class AuxHead(nn.Module):
  """An auxiliary classifier: adaptive average pool to 4x4, 1x1 conv 128, fc 1024, ReLU, dropout, logits."""
  num_classes: int
  dropout: float = 0.7

  @nn.compact
  def __call__(self, x, train: bool):
    x = ConvBN(128, 1, bn_epsilon=BN_EPSILON, name='conv')(adaptive_avg_pool(x, 4), train)
    x = nn.relu(nn.Dense(1024, kernel_init=dense_init, name='fc1')(x.reshape(x.shape[0], -1)))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(self.num_classes, kernel_init=dense_init, name='fc2')(x)


class GoogLeNet(nn.Module):
  """conv1 ... conv3, inception3a ... 5b, head; `aux_logits` adds aux1_head (after 4a) and aux2_head (4d).

  The auxiliary heads' parameters are created at init; their logits are computed and sown (collection
  'aux_outputs', names aux1 / aux2) only in training, as torchvision returns them only then.
  """
  num_classes: int = 1000
  aux_logits: bool = False
  branch_kernel: int = 5
  dropout: float = 0.2
  aux_dropout: float = 0.7

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = ConvBN(64, 7, 2, bn_epsilon=BN_EPSILON, name='conv1')(x, train)
    x = pool('max', x, 3, 2, ceil_mode=True)
    x = ConvBN(64, 1, bn_epsilon=BN_EPSILON, name='conv2')(x, train)
    x = ConvBN(192, 3, bn_epsilon=BN_EPSILON, name='conv3')(x, train)
    x = pool('max', x, 3, 2, ceil_mode=True)
    for block, widths in INCEPTION_WIDTHS.items():
      if block in ('4a', '5a'):
        x = pool('max', x, 3 if block == '4a' else 2, 2, ceil_mode=True)
      x = Inception(widths, self.branch_kernel, name=f'inception{block}')(x, train)
      aux = {'4a': 'aux1', '4d': 'aux2'}.get(block)
      if aux and self.aux_logits and (train or self.is_initializing()):
        logits = AuxHead(self.num_classes, self.aux_dropout, name=f'{aux}_head')(x, train)
        if train:
          self.sow('aux_outputs', aux, logits)
    x = nn.Dropout(self.dropout, deterministic=not train)(global_avg_pool(x))
    return nn.Dense(self.num_classes, kernel_init=dense_init, name='head')(x)


ENTRIES = {'googlenet': GoogLeNet}
