"""Conv-BatchNorm-activation and its pre-activation mirror: the units of the convolutional families.

ConvBN is the original ResNet's order (He et al. 2016); BNActConv the pre-activation order of
He et al. (2016b), where BatchNorm and the nonlinearity come before the convolution.
"""

from typing import Callable, Optional

import flax.linen as nn

from jaxnets.nn import conv as conv_ops
from jaxnets.nn import initializers
from jaxnets.nn.batch_norm import BatchNorm

# He et al. (2015) initialization, the one the ResNet paper uses: N(0, 2 / fan_in).
he_normal = initializers.get('he_normal')


def conv(features: int, kernel_size: int = 3, strides: int = 1, name: Optional[str] = None) -> nn.Conv:
  """A bias-free, He-initialized k x k convolution padded by k // 2 on each side (torchvision's padding).

  Its gradients are written in the layout XLA CPU runs fast inside nn.scan (jaxnets.nn.conv).
  """
  k = kernel_size
  return nn.Conv(features, (k, k), (strides, strides), padding=[(k // 2, k // 2)] * 2, use_bias=False,
                 kernel_init=he_normal, name=name, conv_general_dilated=conv_ops.conv_general_dilated)


def batch_norm(train: bool, momentum: float = 0.9, epsilon: float = 1e-5, name: Optional[str] = None):
  """BatchNorm with batch statistics in training and running averages in eval (Flax's, with its backward pass
  written out: jaxnets.nn.batch_norm)."""
  return BatchNorm(use_running_average=not train, momentum=momentum, epsilon=epsilon, name=name)


class ConvBN(nn.Module):
  """Bias-free convolution, BatchNorm (batch statistics in training, running averages in eval), activation."""
  features: int
  kernel_size: int = 3
  strides: int = 1
  act: Optional[Callable] = nn.relu
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x, train: bool):
    x = conv(self.features, self.kernel_size, self.strides, name='conv')(x)
    x = batch_norm(train, self.bn_momentum, self.bn_epsilon, name='bn')(x)
    return x if self.act is None else self.act(x)


class BNActConv(nn.Module):
  """The pre-activation unit: BatchNorm, activation, dropout (if `dropout` > 0), a bias-free convolution."""
  features: int
  kernel_size: int = 3
  strides: int = 1
  dropout: float = 0.0
  act: Callable = nn.relu
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x, train: bool):
    x = self.act(batch_norm(train, self.bn_momentum, self.bn_epsilon, name='bn')(x))
    if self.dropout:
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return conv(self.features, self.kernel_size, self.strides, name='conv')(x)
