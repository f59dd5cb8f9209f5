"""Residual networks (He et al. 2016) and their plain twins: blocks, shortcut options A/B/C, the CIFAR family.

A block's `residual` switch removes the skip connection and nothing else, so a plain net and its
ResNet twin differ only in the additions y = F(x) + shortcut(x).
"""

import flax.linen as nn
import jax.numpy as jnp

from jaxnets.models.layers import ConvBN

SHORTCUTS = ('A', 'B', 'C')
CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)


class Shortcut(nn.Module):
  """The skip path from x to a block output of `features` channels at `strides`.

  A: identity; where the shape changes, strided subsampling and zero-padded channels (no parameters).
  B: a 1x1 projection (conv + BN) only where the shape changes, identity elsewhere.
  C: a 1x1 projection on every block.
  """
  features: int
  strides: int
  option: str

  @nn.compact
  def __call__(self, x, train: bool):
    changes_shape = self.strides != 1 or x.shape[-1] != self.features
    if self.option == 'C' or (self.option == 'B' and changes_shape):
      return ConvBN(self.features, 1, self.strides, act=None, name='proj')(x, train)
    if not changes_shape:
      return x
    x = x[:, ::self.strides, ::self.strides, :]
    extra = self.features - x.shape[-1]
    return jnp.pad(x, [(0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)])


class BasicBranch(nn.Module):
  """F(x) of a basic block: 3x3 conv-BN-relu (strided), 3x3 conv-BN."""
  features: int
  strides: int = 1

  @nn.compact
  def __call__(self, x, train: bool):
    y = ConvBN(self.features, 3, self.strides, name='conv1')(x, train)
    return ConvBN(self.features, 3, 1, act=None, name='conv2')(y, train)


class BottleneckBranch(nn.Module):
  """F(x) of a bottleneck block: 1x1 reduce, 3x3 (strided), 1x1 expand to 4x `features`."""
  features: int
  strides: int = 1

  @nn.compact
  def __call__(self, x, train: bool):
    y = ConvBN(self.features, 1, 1, name='conv1')(x, train)
    y = ConvBN(self.features, 3, self.strides, name='conv2')(y, train)
    return ConvBN(self.features * 4, 1, 1, act=None, name='conv3')(y, train)


class _Block(nn.Module):
  """relu(F(x) + shortcut(x)) with `residual`, relu(F(x)) without: the plain twin drops only the skip."""
  features: int
  strides: int = 1
  residual: bool = True
  shortcut: str = 'A'
  branch_cls = BasicBranch
  expansion = 1

  @nn.compact
  def __call__(self, x, train: bool):
    if self.shortcut not in SHORTCUTS:  # Checked for plain twins too, which build no shortcut.
      raise ValueError(f'unknown shortcut option {self.shortcut!r}; valid choices: {", ".join(SHORTCUTS)}')
    y = self.branch_cls(self.features, self.strides, name='branch')(x, train)
    if self.residual:
      y = y + Shortcut(self.features * self.expansion, self.strides, self.shortcut,
                       name='shortcut')(x, train)
    return nn.relu(y)


class BasicBlock(_Block):
  """Two 3x3 convolutions (He et al. 2016, Fig. 2 left); output has `features` channels."""


class BottleneckBlock(_Block):
  """1x1-3x3-1x1 (He et al. 2016, Fig. 5 right); output has 4x `features` channels."""
  shortcut: str = 'B'
  branch_cls = BottleneckBranch
  expansion = 4


def cifar_blocks_per_stage(depth: int) -> int:
  """n in depth = 6n + 2, the CIFAR ResNet family of He et al. (2016), Sec. 4.2."""
  if depth < 8 or (depth - 2) % 6:
    raise ValueError(f'CIFAR ResNet depth must be 6n+2 (n >= 1), got {depth}; '
                     f'the paper uses {", ".join(map(str, CIFAR_DEPTHS))}')
  return (depth - 2) // 6


class CifarResNet(nn.Module):
  """A 3x3 conv stem, three stages of n basic blocks (16, 32, 64 filters), global pooling, a dense head.

  Parameter groups are named stem / stageK_blockJ / head, so diagnostics can report them per stage.
  """
  depth: int = 20
  num_classes: int = 10
  residual: bool = True
  shortcut: str = 'A'
  widths: tuple = (16, 32, 64)

  @nn.compact
  def __call__(self, x, train: bool = False):
    n = cifar_blocks_per_stage(self.depth)
    x = ConvBN(self.widths[0], 3, 1, name='stem')(x, train)
    for i, width in enumerate(self.widths):
      for j in range(n):
        strides = 2 if i > 0 and j == 0 else 1
        x = BasicBlock(width, strides, self.residual, self.shortcut,
                       name=f'stage{i + 1}_block{j}')(x, train)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name='head')(x)
