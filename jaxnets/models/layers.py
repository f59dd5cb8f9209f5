"""Conv-BatchNorm-activation: the unit every convolutional family here is built from."""

from typing import Callable, Optional

import flax.linen as nn

# He et al. (2015) initialization, the one the ResNet paper uses: N(0, 2 / fan_in).
he_normal = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')


class ConvBN(nn.Module):
  """A bias-free convolution, BatchNorm (batch statistics in training, running averages in eval), activation."""
  features: int
  kernel_size: int = 3
  strides: int = 1
  act: Optional[Callable] = nn.relu
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x, train: bool):
    k = self.kernel_size
    x = nn.Conv(self.features, (k, k), (self.strides, self.strides), padding=[(k // 2, k // 2)] * 2,
                use_bias=False, kernel_init=he_normal, name='conv')(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                     epsilon=self.bn_epsilon, name='bn')(x)
    return x if self.act is None else self.act(x)
