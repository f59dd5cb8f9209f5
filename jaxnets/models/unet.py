"""U-Net (Ronneberger, Fischer & Brox 2015): a contracting path, an expanding path, skip concatenations.

Each level is a double 3x3 convolution (conv-ReLU twice; conv-BatchNorm-ReLU with `batch_norm`, the
convolution then bias-free), followed on the way down by a 2x2 max pool and on the way up preceded by a
2x2 up-convolution (transposed, stride 2) halving the channels, whose output is concatenated with the
same level's contracting feature map. A 1x1 convolution gives the per-pixel logits. Channels start at
`width` and double per level, `depth` times (the paper: 64 and 4, 1024 channels at the bottom).

`padding='VALID'` is the paper's unpadded network: each 3x3 convolution trims a pixel per side, the
skip feature maps are centre-cropped to the up-sampled size, and a 572x572 tile gives 388x388 logits
(Fig. 1); every max pool must see an even side. 'SAME' keeps the input's size: sides must then be
divisible by 2^depth. `output_size` says which sides work. Initialization is the paper's Gaussian of
standard deviation sqrt(2 / N), N the inputs of one unit.

Parameters of the paper's configuration ('unet_paper': depth 4, width 64, 1 input channel, 2 classes):
31,030,658.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxnets.models.layers import batch_norm
from jaxnets.nn import initializers
from jaxnets.nn.pooling import pool

PADDINGS = ('SAME', 'VALID')

he_normal = initializers.get('he_normal')
# jax counts a 2x2 kernel's fan-in as 4 * cin, but each output of a stride-2 2x2 up-convolution sees
# only cin inputs (one tap): scale 8 over that fan-in gives the paper's variance 2 / cin.
upconv_init = jax.nn.initializers.variance_scaling(8.0, 'fan_in', 'normal')


def _valid_output(size: int, depth: int):
  """The output side of the unpadded U-Net for input side `size`; None where it does not work."""
  for _ in range(depth):
    size -= 4
    if size < 2 or size % 2:
      return None
    size //= 2
  size -= 4
  for _ in range(depth):
    size = 2 * size - 4
  return size if size > 0 else None


def output_size(size: int, depth: int, padding: str) -> int:
  """The side of U-Net's logits for an input side `size`; a ValueError names the size if it does not work."""
  if padding not in PADDINGS:
    raise ValueError(f'unknown U-Net padding {padding!r}; valid choices: {", ".join(PADDINGS)}')
  if depth < 1:
    raise ValueError(f'U-Net depth must be at least 1, got {depth}')
  step = 2 ** depth
  if padding == 'SAME':
    if size % step:
      raise ValueError(f'U-Net with SAME padding and depth {depth} needs input sides divisible by {step}, '
                       f'got {size}')
    return size
  out = _valid_output(size, depth)
  if out is None:
    # The sides that work are offset + step * b: each level down subtracts 4, then halves.
    offset = 4 * (step - 1)
    working = [s for s in (offset + step * b for b in range(size // step + 10)) if _valid_output(s, depth)]
    nearest = [s for s in working if s < size][-1:] + [s for s in working if s > size][:1]
    raise ValueError(f'U-Net with VALID padding and depth {depth} cannot take input side {size}: every '
                     f'max pool needs an even side and the output must be non-empty; nearest sides that '
                     f'work: {", ".join(map(str, nearest))}')
  return out


def center_crop(x, height: int, width: int):
  """The central height x width window of NHWC `x` (the paper's cropping of the skip feature maps)."""
  top, left = (x.shape[1] - height) // 2, (x.shape[2] - width) // 2
  return x[:, top:top + height, left:left + width]


class DoubleConv(nn.Module):
  """3x3 conv -> (BatchNorm) -> ReLU, twice: one U-Net level."""
  features: int
  padding: str
  batch_norm: bool

  @nn.compact
  def __call__(self, x, train: bool):
    for i in (1, 2):
      x = nn.Conv(self.features, (3, 3), padding=self.padding, use_bias=not self.batch_norm,
                  kernel_init=he_normal, name=f'conv{i}')(x)
      if self.batch_norm:
        x = batch_norm(train, name=f'bn{i}')(x)
      x = nn.relu(x)
    return x


class UNet(nn.Module):
  """Levels down1 ... down{depth}, bottom, upconvK and upK back to the top, a 1x1 `head`."""
  num_classes: int = 2
  depth: int = 4
  width: int = 64
  padding: str = 'SAME'
  batch_norm: bool = False

  @nn.compact
  def __call__(self, x, train: bool = False):
    for side in x.shape[1:3]:
      output_size(side, self.depth, self.padding)
    level = functools.partial(DoubleConv, padding=self.padding, batch_norm=self.batch_norm)
    skips = []
    for i in range(self.depth):
      x = level(self.width * 2 ** i, name=f'down{i + 1}')(x, train)
      skips.append(x)
      x = pool('max', x, 2)
    x = level(self.width * 2 ** self.depth, name='bottom')(x, train)
    for i in reversed(range(self.depth)):
      features = self.width * 2 ** i
      x = nn.ConvTranspose(features, (2, 2), (2, 2), padding='VALID', kernel_init=upconv_init,
                           name=f'upconv{i + 1}')(x)
      x = jnp.concatenate([center_crop(skips[i], *x.shape[1:3]), x], axis=-1)
      x = level(features, name=f'up{i + 1}')(x, train)
    return nn.Conv(self.num_classes, (1, 1), kernel_init=he_normal, name='head')(x)


ENTRIES = {
    'unet': UNet,
    'unet_paper': functools.partial(UNet, depth=4, width=64, padding='VALID'),
}
