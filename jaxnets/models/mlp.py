"""The multilayer perceptron: flattened input, hidden dense layers with a chosen activation, a linear head.

Each hidden layer is Dense -> activation -> dropout (training only). With 'maxout:k' a hidden Dense
produces width * k features and maxout reduces them to width units.
"""

import flax.linen as nn

from jaxnets.nn import activations, initializers
from jaxnets.nn.dropout import make_dropout


class MLP(nn.Module):
  """Dense layers named layer0, layer1, ... (so diagnostics report each) and a `head` of num_classes logits.

  `kernel_init` is an initializers spec for every kernel; `dropout` is the drop rate after each hidden
  activation, of `dropout_kind` 'standard' or 'alpha' (for SELU nets).
  """
  widths: tuple = (256, 128)
  num_classes: int = 10
  activation: str = 'relu'
  kernel_init: str = 'lecun_normal'
  dropout: float = 0.0
  dropout_kind: str = 'standard'

  @nn.compact
  def __call__(self, x, train: bool = False):
    if not 0 <= self.dropout < 1:
      raise ValueError(f'MLP dropout must be in [0, 1), got {self.dropout}')
    act = activations.get(self.activation)
    k = activations.pieces(self.activation)
    init = initializers.get(self.kernel_init)
    x = x.reshape(x.shape[0], -1)
    for i, width in enumerate(self.widths):
      x = act(nn.Dense(width * k, kernel_init=init, name=f'layer{i}')(x))
      x = make_dropout(self.dropout_kind, self.dropout, deterministic=not train)(x)
    return nn.Dense(self.num_classes, kernel_init=init, name='head')(x)


ENTRIES = {'mlp': MLP}
