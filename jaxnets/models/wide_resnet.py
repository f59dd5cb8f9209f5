"""Wide residual networks WRN-d-k (Zagoruyko & Komodakis 2016): fewer, k times wider pre-activation blocks.

A WRN-d-k is a 3x3 conv of 16 filters, three groups of N = (d - 4) / 6 pre-activation basic blocks
16k, 32k and 64k wide (strides 1, 2, 2; a 1x1 conv shortcut where the shape changes), dropout between
each block's two convolutions if asked, the final BN-relu, global average pooling and a dense head.
"""

import functools

import flax.linen as nn

from jaxnets.models import stack
from jaxnets.models.layers import conv
from jaxnets.models.resnet import PreActBasicBlock, preact_stages
from jaxnets.nn import pooling

PAPER_DEPTHS = (16, 22, 28, 40)
# (depth, widen factor) of the networks in the paper's Tables 1, 4 and 5.
PAPER_NETS = ((16, 8), (22, 8), (28, 10), (40, 1), (40, 2), (40, 4))


def blocks_per_group(depth: int) -> int:
  """N blocks per group, from the paper's rule depth = 6N + 4."""
  if depth < 10 or (depth - 4) % 6:
    raise ValueError(f'WRN depth must be 6N+4 (N >= 1), got {depth}; '
                     f'the paper uses {", ".join(map(str, PAPER_DEPTHS))}')
  return (depth - 4) // 6


class WideResNet(nn.Module):
  """WRN-`depth`-`widen_factor`, with `dropout` between the convolutions of every block."""
  depth: int = 28
  widen_factor: int = 10
  dropout: float = 0.0
  num_classes: int = 10
  scan: bool | None = None  # None: scan when a stage has SCAN_FROM blocks or more (jaxnets.models.stack).
  remat: bool = False  # Recompute blocks' activations in the backward pass (saves memory in scanned stages).

  @nn.compact
  def __call__(self, x, train: bool = False):
    n = blocks_per_group(self.depth)
    if self.widen_factor < 1:
      raise ValueError(f'widen_factor must be a positive integer, got {self.widen_factor}')
    widths = tuple(w * self.widen_factor for w in (16, 32, 64))
    x = conv(16, 3, name='stem')(x)
    x = preact_stages(x, train, PreActBasicBlock, widths, n, stack.resolve_scan(self.scan, [n]), self.remat,
                      dropout=self.dropout)
    x = pooling.global_avg_pool(x)
    return nn.Dense(self.num_classes, name='head')(x)


ENTRIES = {'wide_resnet': WideResNet}
for _depth, _k in PAPER_NETS:
  ENTRIES[f'wrn{_depth}_{_k}'] = functools.partial(WideResNet, depth=_depth, widen_factor=_k)
