"""The multilayer perceptron: flattened input, hidden dense layers with a chosen activation, a linear head."""

import flax.linen as nn

from jaxnets.nn import activations


class MLP(nn.Module):
  """Dense layers named layer0, layer1, ... (so diagnostics report each) and a `head` of num_classes logits."""
  widths: tuple = (256, 128)
  num_classes: int = 10
  activation: str = 'relu'

  @nn.compact
  def __call__(self, x, train: bool = False):
    act = activations.get(self.activation)
    x = x.reshape(x.shape[0], -1)
    for i, width in enumerate(self.widths):
      x = act(nn.Dense(width, name=f'layer{i}')(x))
    return nn.Dense(self.num_classes, name='head')(x)
