"""The course's small convolutional net, with the regularizers an ablation switches on and off.

Stages of `convs_per_stage` 3x3 convolutions (conv -> optional BatchNorm -> activation), each stage
followed by 2x2 pooling; then a dense hidden layer, dropout, and a linear head. Without BatchNorm the
convolutions carry a bias; with it they do not (BN's shift replaces it).
"""

from typing import Optional

import flax.linen as nn

from jaxnets.models.layers import batch_norm
from jaxnets.nn import activations, initializers, pooling
from jaxnets.nn.dropout import make_dropout


class ConvUnit(nn.Module):
  """conv 3x3 (SAME) -> BatchNorm (if batch_norm; epsilon as configured) -> activation.

  The convolution carries a bias unless BatchNorm follows it; `conv_bias=True` keeps it anyway
  (torchvision's VGG-BN does, and its parameter counts include those biases).
  """
  features: int
  activation: str
  kernel_init: str
  batch_norm: bool
  bn_epsilon: float
  conv_bias: Optional[bool] = None  # None: a bias exactly when there is no BatchNorm.

  @nn.compact
  def __call__(self, x, train: bool):
    use_bias = not self.batch_norm if self.conv_bias is None else self.conv_bias
    x = nn.Conv(self.features, (3, 3), padding='SAME', use_bias=use_bias,
                kernel_init=initializers.get(self.kernel_init), name='conv')(x)
    if self.batch_norm:
      x = batch_norm(train, epsilon=self.bn_epsilon, name='bn')(x)
    return activations.get(self.activation)(x)


class SimpleCNN(nn.Module):
  """Conv stages (stage1_block0, ...), pooling after each, dense `hidden`, dropout, `head`."""
  widths: tuple = (32, 64)
  convs_per_stage: int = 2
  hidden: int = 128
  num_classes: int = 10
  activation: str = 'relu'
  kernel_init: str = 'he_normal'
  pool: str = 'max'
  batch_norm: bool = False
  bn_epsilon: float = 1e-3  # The course's (and Keras's) default.
  dropout: float = 0.0  # Drop rate on the hidden dense layer's outputs, in training.
  dropout_kind: str = 'standard'

  @nn.compact
  def __call__(self, x, train: bool = False):
    if not 0 <= self.dropout < 1:
      raise ValueError(f'SimpleCNN dropout must be in [0, 1), got {self.dropout}')
    for i, width in enumerate(self.widths):
      for j in range(self.convs_per_stage):
        x = ConvUnit(width, self.activation, self.kernel_init, self.batch_norm, self.bn_epsilon,
                     name=f'stage{i + 1}_block{j}')(x, train)
      x = pooling.pool(self.pool, x, 2)
    x = x.reshape(x.shape[0], -1)
    init = initializers.get(self.kernel_init)
    x = activations.get(self.activation)(nn.Dense(self.hidden, kernel_init=init, name='hidden')(x))
    x = make_dropout(self.dropout_kind, self.dropout, deterministic=not train)(x)
    return nn.Dense(self.num_classes, kernel_init=init, name='head')(x)


ENTRIES = {'simple_cnn': SimpleCNN}
