"""Residual networks (He et al. 2016) and plain twins, CIFAR and ImageNet; pre-activation ResNets (2016b).

A block's `residual` switch removes the skip connection and nothing else, so a plain net and its
ResNet twin differ only in the additions y = F(x) + shortcut(x). A pre-activation block moves BatchNorm
and relu in front of each convolution, so its identity path carries x untouched: y = x + F(x).
"""

import functools

import flax.linen as nn
import jax.numpy as jnp

from jaxnets.models import stack
from jaxnets.models.layers import BNActConv, ConvBN, batch_norm, conv
from jaxnets.nn import pooling

SHORTCUTS = ('A', 'B', 'C')
CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)
# block -> (layers per stage of n blocks, the papers' depths): basic blocks 6n+2, bottlenecks 9n+2.
CIFAR_BLOCK_RULES = {'basic': (6, CIFAR_DEPTHS), 'bottleneck': (9, (164, 1001))}
VERSIONS = ('v1', 'v1.5')
STEMS = ('imagenet', 'cifar')


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
  """F(x) of a bottleneck block: 1x1 reduce, 3x3, 1x1 expand to 4x `features`.

  The stride sits on the 3x3 (torchvision's 'v1.5'), or with `stride_in_1x1` on the first 1x1
  (He et al. 2016's original, 'v1': fewer multiply-adds, the 3x3 then runs at the reduced resolution).
  """
  features: int
  strides: int = 1
  stride_in_1x1: bool = False

  @nn.compact
  def __call__(self, x, train: bool):
    first, middle = (self.strides, 1) if self.stride_in_1x1 else (1, self.strides)
    y = ConvBN(self.features, 1, first, name='conv1')(x, train)
    y = ConvBN(self.features, 3, middle, name='conv2')(y, train)
    return ConvBN(self.features * 4, 1, 1, act=None, name='conv3')(y, train)


class _Block(nn.Module):
  """relu(F(x) + shortcut(x)) with `residual`, relu(F(x)) without: the plain twin drops only the skip."""
  features: int
  strides: int = 1
  residual: bool = True
  shortcut: str = 'A'
  branch_cls = BasicBranch
  expansion = 1

  def make_branch(self) -> nn.Module:
    """The module computing F(x)."""
    return self.branch_cls(self.features, self.strides, name='branch')

  @nn.compact
  def __call__(self, x, train: bool):
    if self.shortcut not in SHORTCUTS:  # Checked for plain twins too, which build no shortcut.
      raise ValueError(f'unknown shortcut option {self.shortcut!r}; valid choices: {", ".join(SHORTCUTS)}')
    y = self.make_branch()(x, train)
    if self.residual:
      y = y + Shortcut(self.features * self.expansion, self.strides, self.shortcut,
                       name='shortcut')(x, train)
    return nn.relu(y)


class BasicBlock(_Block):
  """Two 3x3 convolutions (He et al. 2016, Fig. 2 left); output has `features` channels."""


class BottleneckBlock(_Block):
  """1x1-3x3-1x1 (He et al. 2016, Fig. 5 right); output has 4x `features` channels."""
  shortcut: str = 'B'
  stride_in_1x1: bool = False
  branch_cls = BottleneckBranch
  expansion = 4

  def make_branch(self) -> nn.Module:
    """The bottleneck branch, strided on its first 1x1 or its 3x3 as `stride_in_1x1` says."""
    return self.branch_cls(self.features, self.strides, self.stride_in_1x1, name='branch')


def cifar_blocks_per_stage(depth: int, block: str = 'basic') -> int:
  """n in depth = 6n + 2 (basic blocks, He et al. 2016, Sec. 4.2) or 9n + 2 (bottlenecks, 2016b)."""
  if block not in CIFAR_BLOCK_RULES:
    raise ValueError(f'unknown block {block!r}; valid choices: {", ".join(CIFAR_BLOCK_RULES)}')
  layers_per_stage, paper_depths = CIFAR_BLOCK_RULES[block]
  if depth < layers_per_stage + 2 or (depth - 2) % layers_per_stage:
    raise ValueError(f'CIFAR ResNet depth must be {layers_per_stage}n+2 (n >= 1) with {block} blocks, got '
                     f'{depth}; the papers use {", ".join(map(str, paper_depths))}')
  return (depth - 2) // layers_per_stage


class CifarResNet(nn.Module):
  """A 3x3 conv stem, three stages of n basic blocks (16, 32, 64 filters), global pooling, a dense head.

  Parameter groups are named stem / stageK_blockJ / head, so diagnostics can report them per stage.
  With `endpoints=True` the call returns the feature maps {'stem', 'stage1', 'stage2', 'stage3'} (strides
  1, 1, 2, 4) instead of logits and creates no head, so a detector or segmenter can use it as a backbone.
  """
  depth: int = 20
  num_classes: int = 10
  residual: bool = True
  shortcut: str = 'A'
  widths: tuple = (16, 32, 64)
  scan: bool | None = None  # None: scan when a stage has SCAN_FROM blocks or more (jaxnets.models.stack).
  remat: bool = False  # Recompute blocks' activations in the backward pass (saves memory in scanned stages).

  @nn.compact
  def __call__(self, x, train: bool = False, endpoints: bool = False):
    n = cifar_blocks_per_stage(self.depth)
    x = ConvBN(self.widths[0], 3, 1, name='stem')(x, train)
    features = {'stem': x}
    for i, width in enumerate(self.widths):
      block = {'features': width, 'residual': self.residual, 'shortcut': self.shortcut}
      x = stack.stage(x, train, BasicBlock, n, f'stage{i + 1}', stack.resolve_scan(self.scan, [n]), self.remat,
                      first={**block, 'strides': 2 if i > 0 else 1}, rest=block)
      features[f'stage{i + 1}'] = x
    if endpoints:
      return features
    x = pooling.global_avg_pool(x)
    return nn.Dense(self.num_classes, name='head')(x)


# depth -> (block, blocks per stage): He et al. (2016), Table 1.
IMAGENET_STACKS = {18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)),
                   50: (BottleneckBlock, (3, 4, 6, 3)), 101: (BottleneckBlock, (3, 4, 23, 3)),
                   152: (BottleneckBlock, (3, 8, 36, 3))}


class ResNet(nn.Module):
  """He et al. (2016)'s ImageNet ResNets (Table 1) and their plain twins.

  A 7x7/2 conv stem (64 filters, BN, relu), a 3x3/2 max pool, four stages of blocks 64/128/256/512 wide
  (bottlenecks output 4x that; stride 2 opens every stage after the first), global average pooling, a
  dense head; stem='cifar' is a 3x3 stride-1 conv without the pool, for 32x32 inputs (the common
  CIFAR ResNet-18). `version` places a bottleneck's stride: 'v1' on its first 1x1 (the paper, whose Table 1
  FLOPs this gives), 'v1.5' on its 3x3 (torchvision); both have the same parameters.
  With `endpoints=True` the call returns the feature maps {'stem' (the stem conv's output, before the
  pool), 'stage1', ..., 'stage4'} (strides 2, 4, 8, 16, 32; 1, 1, 2, 4, 8 with stem='cifar') and creates
  no head.
  """
  depth: int = 50
  num_classes: int = 1000
  residual: bool = True
  shortcut: str = 'B'
  version: str = 'v1'
  widths: tuple = (64, 128, 256, 512)
  stem: str = 'imagenet'
  scan: bool | None = None  # None: scan when a stage has SCAN_FROM blocks or more (jaxnets.models.stack).
  remat: bool = False  # Recompute blocks' activations in the backward pass (saves memory in scanned stages).

  @nn.compact
  def __call__(self, x, train: bool = False, endpoints: bool = False):
    if self.stem not in STEMS:
      raise ValueError(f'unknown ResNet stem {self.stem!r}; valid choices: {", ".join(STEMS)}')
    if self.depth not in IMAGENET_STACKS:
      raise ValueError(f'ImageNet ResNet depth must be one of {", ".join(map(str, IMAGENET_STACKS))}, '
                       f'got {self.depth}')
    if self.version not in VERSIONS:
      raise ValueError(f'unknown ResNet version {self.version!r}; valid choices: {", ".join(VERSIONS)}')
    block_cls, stage_sizes = IMAGENET_STACKS[self.depth]
    if len(self.widths) != len(stage_sizes):
      raise ValueError(f'ImageNet ResNet widths={tuple(self.widths)} must give one width per stage, '
                       f'{len(stage_sizes)} of them')
    extra = {'stride_in_1x1': self.version == 'v1'} if block_cls is BottleneckBlock else {}
    if self.stem == 'imagenet':
      x = ConvBN(self.widths[0], 7, 2, name='stem')(x, train)
      features = {'stem': x}
      # torchvision's padding, 1 on each side (pooling.pool's SAME would pad the far side only).
      x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
    else:
      x = ConvBN(self.widths[0], 3, 1, name='stem')(x, train)
      features = {'stem': x}
    for i, (width, n) in enumerate(zip(self.widths, stage_sizes)):
      block = {'features': width, 'residual': self.residual, 'shortcut': self.shortcut, **extra}
      x = stack.stage(x, train, block_cls, n, f'stage{i + 1}', stack.resolve_scan(self.scan, stage_sizes),
                      self.remat, first={**block, 'strides': 2 if i > 0 else 1}, rest=block)
      features[f'stage{i + 1}'] = x
    if endpoints:
      return features
    x = pooling.global_avg_pool(x)
    return nn.Dense(self.num_classes, name='head')(x)


class PreActBasicBranch(nn.Module):
  """F of a pre-activation basic block, on relu(BN(x)): 3x3 conv (strided), BN-relu, dropout, 3x3 conv."""
  features: int
  strides: int = 1
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool):
    y = conv(self.features, 3, self.strides, name='conv1')(x)
    return BNActConv(self.features, 3, dropout=self.dropout, name='conv2')(y, train)


class PreActBottleneckBranch(nn.Module):
  """F of a pre-activation bottleneck, on relu(BN(x)): 1x1 reduce, BN-relu-3x3 (strided), BN-relu-1x1 to 4x.

  `dropout` (if > 0) acts after each inner BN-relu, as in the basic branch.
  """
  features: int
  strides: int = 1
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool):
    y = conv(self.features, 1, name='conv1')(x)
    y = BNActConv(self.features, 3, self.strides, self.dropout, name='conv2')(y, train)
    return BNActConv(self.features * 4, 1, dropout=self.dropout, name='conv3')(y, train)


class _PreActBlock(nn.Module):
  """x + F(relu(BN(x))) (He et al. 2016b, Fig. 4e), with nothing after the addition.

  Where the shape changes the shortcut is a 1x1 convolution of the same relu(BN(x)) the branch sees
  (the activation comes before the split); elsewhere it is x itself.
  """
  features: int
  strides: int = 1
  dropout: float = 0.0
  branch_cls = PreActBasicBranch
  expansion = 1

  @nn.compact
  def __call__(self, x, train: bool):
    pre = nn.relu(batch_norm(train, name='bn')(x))
    out = self.features * self.expansion
    if self.strides != 1 or x.shape[-1] != out:
      x = conv(out, 1, self.strides, name='shortcut')(pre)
    return x + self.branch_cls(self.features, self.strides, self.dropout, name='branch')(pre, train)


class PreActBasicBlock(_PreActBlock):
  """Two BN-relu-3x3 units around an untouched identity; output has `features` channels."""


class PreActBottleneckBlock(_PreActBlock):
  """BN-relu-1x1, BN-relu-3x3, BN-relu-1x1 around an untouched identity; output has 4x `features` channels."""
  branch_cls = PreActBottleneckBranch
  expansion = 4


PREACT_BLOCKS = {'basic': PreActBasicBlock, 'bottleneck': PreActBottleneckBlock}


def preact_stages(x, train: bool, block_cls, widths, n: int, scan: bool, remat: bool, **block_kwargs):
  """Stages of n pre-activation blocks (stride 2 opening each stage after the first), then the final BN-relu.

  Called inside a compact method, so the modules (stageK_blockJ or stageK_blocks, final_bn) belong to the
  caller; `scan` and `remat` as in jaxnets.models.stack.stage.
  """
  for i, width in enumerate(widths):
    block = {'features': width, **block_kwargs}
    x = stack.stage(x, train, block_cls, n, f'stage{i + 1}', scan, remat,
                    first={**block, 'strides': 2 if i > 0 else 1}, rest=block)
  return nn.relu(batch_norm(train, name='final_bn')(x))


class CifarPreActResNet(nn.Module):
  """He et al. (2016b)'s pre-activation ResNets for CIFAR.

  A 3x3 conv of 16 filters, three stages of n pre-activation blocks 16/32/64 wide (bottlenecks output
  4x that), the final BN-relu, global average pooling, a dense head. Depth is 6n+2 with basic blocks and
  9n+2 with bottlenecks (ResNet-164, ResNet-1001).
  """
  depth: int = 164
  block: str = 'bottleneck'
  num_classes: int = 10
  widths: tuple = (16, 32, 64)
  scan: bool | None = None  # None: scan when a stage has SCAN_FROM blocks or more (jaxnets.models.stack).
  remat: bool = False  # Recompute blocks' activations in the backward pass (saves memory in scanned stages).

  @nn.compact
  def __call__(self, x, train: bool = False):
    n = cifar_blocks_per_stage(self.depth, self.block)
    x = conv(self.widths[0], 3, name='stem')(x)
    x = preact_stages(x, train, PREACT_BLOCKS[self.block], self.widths, n, stack.resolve_scan(self.scan, [n]),
                      self.remat)
    x = pooling.global_avg_pool(x)
    return nn.Dense(self.num_classes, name='head')(x)


ENTRIES = {'cifar_resnet': CifarResNet}
for _depth in CIFAR_DEPTHS:
  ENTRIES[f'cifar_resnet{_depth}'] = functools.partial(CifarResNet, depth=_depth, residual=True)
  ENTRIES[f'cifar_plain{_depth}'] = functools.partial(CifarResNet, depth=_depth, residual=False)
ENTRIES['resnet'] = ResNet
for _depth in IMAGENET_STACKS:
  ENTRIES[f'resnet{_depth}'] = functools.partial(ResNet, depth=_depth, residual=True)
for _depth in (18, 34):
  ENTRIES[f'plain{_depth}'] = functools.partial(ResNet, depth=_depth, residual=False)
ENTRIES['cifar_preact_resnet'] = CifarPreActResNet
for _depth, _block in ((110, 'basic'), (164, 'bottleneck'), (1001, 'bottleneck')):
  ENTRIES[f'cifar_preact_resnet{_depth}'] = functools.partial(CifarPreActResNet, depth=_depth, block=_block)
