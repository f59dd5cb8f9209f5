"""Highway networks (Srivastava, Greff & Schmidhuber 2015): layers that learn how much of x to carry through.

A highway layer computes y = H(x) * T(x) + x * (1 - T(x)) with a transform gate T(x) = sigmoid(W_T x + b_T).
b_T starts negative (the paper suggests -1 to -3), so a fresh layer mostly carries x and a very deep
stack still trains: the gate, not a fixed identity, decides when a layer becomes a transformation.
"""

import flax.linen as nn

from jaxnets.nn import activations, pooling


class _Highway(nn.Module):
  """One highway layer of x's width (last axis); subclasses choose the layer type of H and T.

  With 'maxout:k', H produces k times the width before the maxout.
  """
  activation: str = 'relu'
  gate_bias: float = -2.0

  def _layer(self, features: int, **kwargs) -> nn.Module:
    raise NotImplementedError

  @nn.compact
  def __call__(self, x):
    width = x.shape[-1]
    k = activations.pieces(self.activation)
    h = activations.get(self.activation)(self._layer(width * k, name='h')(x))
    t = nn.sigmoid(self._layer(width, bias_init=nn.initializers.constant(self.gate_bias), name='t')(x))
    return h * t + x * (1.0 - t)


class HighwayDense(_Highway):
  """A dense highway layer: H and T are dense layers."""

  def _layer(self, features, **kwargs):
    return nn.Dense(features, **kwargs)


class HighwayConv(_Highway):
  """A convolutional highway layer: H and T are 3x3 same-padded convolutions."""

  def _layer(self, features, **kwargs):
    return nn.Conv(features, (3, 3), padding=1, **kwargs)


class HighwayMLP(nn.Module):
  """A dense layer to `width` with `activation` (stem), `depth` highway layers (layer0, ...), a dense head."""
  width: int = 50
  depth: int = 10
  activation: str = 'relu'
  gate_bias: float = -2.0
  num_classes: int = 10

  @nn.compact
  def __call__(self, x, train: bool = False):
    k = activations.pieces(self.activation)
    x = x.reshape(x.shape[0], -1)
    x = activations.get(self.activation)(nn.Dense(self.width * k, name='stem')(x))
    for i in range(self.depth):
      x = HighwayDense(self.activation, self.gate_bias, name=f'layer{i}')(x)
    return nn.Dense(self.num_classes, name='head')(x)


class HighwayCNN(nn.Module):
  """A 3x3 conv stem, stages of convolutional highway layers with 2x2 max pooling between, a dense head.

  Every layer has `width` channels; global average pooling feeds the head.
  """
  width: int = 64
  stage_sizes: tuple = (3, 3, 3)
  activation: str = 'relu'
  gate_bias: float = -2.0
  num_classes: int = 10

  @nn.compact
  def __call__(self, x, train: bool = False):
    k = activations.pieces(self.activation)
    x = activations.get(self.activation)(nn.Conv(self.width * k, (3, 3), padding=1, name='stem')(x))
    for i, n in enumerate(self.stage_sizes):
      if i > 0:
        x = pooling.pool('max', x, 2)
      for j in range(n):
        x = HighwayConv(self.activation, self.gate_bias, name=f'stage{i + 1}_block{j}')(x)
    x = pooling.global_avg_pool(x)
    return nn.Dense(self.num_classes, name='head')(x)


ENTRIES = {'highway_mlp': HighwayMLP, 'highway_cnn': HighwayCNN}
