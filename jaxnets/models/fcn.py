"""Fully convolutional networks (Long, Shelhamer & Darrell 2015): FCN-32s, FCN-16s, FCN-8s on VGG-16.

The VGG-16 conv stack ('backbone', the zoo's VGG with its stage widths) is followed by the classifier
made convolutional: fc6 a 7x7 convolution of `fc_width` filters, fc7 a 1x1 one (ReLU and dropout after
each), score_fr a 1x1 convolution to the classes, at stride 32. FCN-32s upsamples those scores to the
input size. FCN-16s upsamples them 2x by a learned up-convolution (transposed, stride 2, initialized
to bilinear interpolation), adds a 1x1 score of pool4 and upsamples the sum 16x; FCN-8s adds a second
2x up-convolution and a score of pool3, then upsamples 8x. The last upsampling is fixed bilinear
interpolation (no parameters), as in the paper. Score layers are zero-initialized (Sec. 4.3; Sec. 4.2
for the skips, so an FCN-16s starts from its FCN-32s's predictions); fc6 and fc7 are He-initialized
here, which a VGG classifier's weights replace (its fc6 kernel reshapes to (7, 7, C, fc_width), fc7 to
(1, 1, fc_width, fc_width)).

Unlike the paper (100 pixels of input padding, then crops), every convolution is SAME-padded and the
input is zero-padded at the bottom and right to a multiple of 32, the logits cropped back: any input
size works, and the stride-32 grid stays aligned with the input's top-left corner. All upsampling is
half-pixel-centred bilinear interpolation, so the learned 2x layers match jax.image.resize at
initialization except on their outer ring, where the zero padding weighs in. At initialization FCN-16s
is therefore FCN-32s's score map upsampled 2x, then 16x, not in one step: equal to FCN-32s's output
where the scores are constant (away from the border), not in general.

Parameters with the paper's widths, fc_width 4096, RGB input and 21 classes (PASCAL VOC; Table 1:
134M): FCN-32s 134,346,581, FCN-16s 134,364,410, FCN-8s 134,376,863.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.models import vgg
from jaxnets.nn import initializers

# Output stride of the last score map -> the skips fused into it: (pool layer, its 2x up-convolution),
# named as in the paper's Caffe models.
SKIPS = (('pool4', 'upscore2'), ('pool3', 'upscore_pool4'))
STRIDES = {32: 0, 16: 1, 8: 2}

he_normal = initializers.get('he_normal')


def bilinear_kernel(key, shape, dtype=jnp.float32):
  """A (k, k, c, c) up-convolution kernel upsampling each channel bilinearly; `key` is unused.

  The paper's upsample_filt: taps 1 - |i - centre| / factor, factor (k + 1) // 2; for k 4, stride 2:
  0.25, 0.75, 0.75, 0.25 per axis.
  """
  del key
  k, _, channels_in, channels_out = shape
  if channels_in != channels_out:
    raise ValueError(f'a bilinear kernel maps each channel to itself, got shape {shape}')
  factor = (k + 1) // 2
  centre = factor - 1 if k % 2 else factor - 0.5
  taps = 1 - np.abs(np.arange(k) - centre) / factor
  return jnp.asarray(np.outer(taps, taps)[:, :, None, None] * np.eye(channels_in), dtype)


def upsample_bilinear(x, height: int, width: int):
  """NHWC `x` resized to height x width by fixed bilinear interpolation (half-pixel centres)."""
  return jax.image.resize(x, (x.shape[0], height, width, x.shape[3]), 'bilinear')


class FCN(nn.Module):
  """backbone (VGG-16 endpoints), fc6, fc7, score_fr; for stride 16 and 8 the skips of SKIPS."""
  stride: int = 32
  num_classes: int = 21
  widths: tuple = vgg.STAGE_WIDTHS
  fc_width: int = 4096
  batch_norm: bool = False
  dropout: float = 0.5

  @nn.compact
  def __call__(self, x, train: bool = False):
    if self.stride not in STRIDES:
      raise ValueError(f'unknown FCN stride {self.stride}; valid choices: {", ".join(map(str, STRIDES))}')
    height, width = x.shape[1:3]
    x = jnp.pad(x, [(0, 0), (0, -height % 32), (0, -width % 32), (0, 0)])
    features = vgg.VGG(depth=16, batch_norm=self.batch_norm, widths=self.widths,
                       name='backbone')(x, train, endpoints=True)
    y = features['pool5']
    for name, kernel in (('fc6', 7), ('fc7', 1)):
      y = nn.Conv(self.fc_width, (kernel, kernel), padding='SAME', kernel_init=he_normal, name=name)(y)
      y = nn.Dropout(self.dropout, deterministic=not train)(nn.relu(y))
    score = functools.partial(nn.Conv, self.num_classes, (1, 1), kernel_init=nn.initializers.zeros)
    scores = score(name='score_fr')(y)
    for pool_name, upscore_name in SKIPS[:STRIDES[self.stride]]:
      scores = nn.ConvTranspose(self.num_classes, (4, 4), (2, 2), padding='SAME', use_bias=False,
                                kernel_init=bilinear_kernel, name=upscore_name)(scores)
      scores = scores + score(name=f'score_{pool_name}')(features[pool_name])
    return upsample_bilinear(scores, *x.shape[1:3])[:, :height, :width]


ENTRIES = {f'fcn{s}s': functools.partial(FCN, stride=s) for s in STRIDES}
