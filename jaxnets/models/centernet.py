"""CenterNet (Zhou et al. 2019, "Objects as Points"): a backbone's feature map and three small heads.

Every output cell predicts, per class, a score that an object's centre lies in it ('heatmap' logits),
the object's (width, height) in input pixels ('size') and the centre's position inside the cell
('offset'); jaxnets.tasks.detection builds the targets and decodes the peaks into boxes. The backbone is
a ResNet of jaxnets.models.resnet read at one of its endpoints, whose stride is the detector's.
"""

import flax.linen as nn

from jaxnets.models import resnet

BACKBONES = {'cifar_resnet': resnet.CifarResNet, 'resnet': resnet.ResNet}
# The heatmap's initial logit, as the paper's code sets it: a score of about 0.1 (log(0.1 / 0.9) = -2.197)
# on every cell, so the focal loss of the many background cells does not swamp the first steps.
HEATMAP_BIAS = -2.19


class Head(nn.Module):
  """3x3 conv + relu + 1x1 conv to `features` outputs per cell, the paper's head."""
  features: int
  width: int = 64
  bias: float = 0.0

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(self.width, (3, 3), name='conv')(x))
    return nn.Conv(self.features, (1, 1), bias_init=nn.initializers.constant(self.bias), name='out')(x)


class CenterNet(nn.Module):
  """A `backbone` ResNet's `endpoint` feature map, then heatmap, size and offset heads.

  The default, a CIFAR ResNet-20 read after stage3, has stride 4: a 64x64 input gives 16x16 maps.
  `backbone_depth` and `backbone_widths` are the ResNet's depth and widths (for 'resnet', e.g. 18 and
  (64, 128, 256, 512), read at 'stage1' for stride 4).
  """
  num_classes: int = 10
  backbone: str = 'cifar_resnet'
  backbone_depth: int = 20
  backbone_widths: tuple = (16, 32, 64)
  endpoint: str = 'stage3'
  head_width: int = 64

  @nn.compact
  def __call__(self, x, train: bool = False):
    if self.backbone not in BACKBONES:
      raise ValueError(f'unknown CenterNet backbone {self.backbone!r}; valid choices: {", ".join(BACKBONES)}')
    backbone = BACKBONES[self.backbone](depth=self.backbone_depth, widths=tuple(self.backbone_widths),
                                        name='backbone')
    features = backbone(x, train, endpoints=True)
    if self.endpoint not in features:
      raise ValueError(f'unknown endpoint {self.endpoint!r} of the {self.backbone} backbone; valid choices: '
                       f'{", ".join(features)}')
    x = features[self.endpoint]
    return {'heatmap': Head(self.num_classes, self.head_width, HEATMAP_BIAS, name='heatmap')(x),
            'size': Head(2, self.head_width, name='size')(x),
            'offset': Head(2, self.head_width, name='offset')(x)}


ENTRIES = {'centernet': CenterNet}
