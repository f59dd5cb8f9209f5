"""PyTorch twins of jaxnets' CIFAR ResNets (option A) and MLP, trained by the same recipe, for benchmarks.compare.

An optional benchmark dependency: nothing in jaxnets or its tests imports this module. The nets follow
jaxnets.models.resnet.CifarResNet and jaxnets.models.mlp.MLP layer for layer (same parameters; He-initialized,
bias-free 3x3 convolutions; BatchNorm momentum 0.1, which is flax's 0.9, eps 1e-5). The train step follows
jaxnets.train.step's: normalize, per-image pad-4 random crop and flip, cross-entropy, L2 weight decay on the
conv and dense kernels only (jaxnets' 'l2' mode), SGD with momentum. It runs eager, the ResNets channels_last.
"""

import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# The image shapes (H, W, C) of the datasets the compared configs name.
IMAGE_SHAPES = {'cifar10': (32, 32, 3), 'fashion_mnist': (28, 28, 1)}
NUM_CLASSES = 10
# Stand-in channel statistics of the random images, as benchmarks.train_step's IMAGE_MEAN, IMAGE_STD (that
# module imports JAX, which must not load into this process).
IMAGE_MEAN, IMAGE_STD = 128.0, 64.0
MOMENTUM = 0.9  # jaxnets' default for the 'momentum' optimizer (jaxnets/optim.py).


def conv3x3(cin: int, cout: int, stride: int) -> nn.Conv2d:
  """A bias-free 3x3 convolution padded by 1, He-initialized N(0, 2 / fan_in) as jaxnets' `conv`."""
  conv = nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False)
  nn.init.kaiming_normal_(conv.weight, mode='fan_in', nonlinearity='relu')
  return conv


def dense(cin: int, cout: int, gain: float) -> nn.Linear:
  """A linear layer with kernel N(0, gain / fan_in) and zero bias (gain 2: He; 1: LeCun, flax's default)."""
  layer = nn.Linear(cin, cout)
  nn.init.normal_(layer.weight, std=math.sqrt(gain / cin))
  nn.init.zeros_(layer.bias)
  return layer


def batch_norm(channels: int) -> nn.BatchNorm2d:
  """BatchNorm with flax's momentum 0.9 (PyTorch counts the other way: 0.1) and eps 1e-5."""
  return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)


class BasicBlock(nn.Module):
  """relu(conv-BN-relu-conv-BN(x) + shortcut(x)) with jaxnets' option-A shortcut."""

  def __init__(self, cin: int, cout: int, stride: int):
    super().__init__()
    self.conv1, self.bn1 = conv3x3(cin, cout, stride), batch_norm(cout)
    self.conv2, self.bn2 = conv3x3(cout, cout, 1), batch_norm(cout)
    self.stride, self.extra = stride, cout - cin

  def shortcut(self, x: torch.Tensor) -> torch.Tensor:
    """Identity; where the shape changes, strided subsampling and zero channels split evenly on both sides."""
    if self.stride == 1 and not self.extra:
      return x
    x = x[:, :, ::self.stride, ::self.stride]
    return F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    """The block's output."""
    y = F.relu(self.bn1(self.conv1(x)))
    return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class CifarResNet(nn.Module):
  """A 3x3 conv stem of 16, three stages of n basic blocks (16, 32, 64; stride 2 opens stages 2 and 3), global
  average pooling, a linear head: depth 6n + 2."""

  def __init__(self, depth: int, in_channels: int, widths: tuple = (16, 32, 64)):
    super().__init__()
    if (depth - 2) % 6 or depth < 8:
      raise ValueError(f'CIFAR ResNet depth must be 6n+2 (n >= 1), got {depth}')
    n = (depth - 2) // 6
    self.stem = nn.Sequential(conv3x3(in_channels, widths[0], 1), batch_norm(widths[0]), nn.ReLU())
    blocks, cin = [], widths[0]
    for i, width in enumerate(widths):
      for j in range(n):
        blocks.append(BasicBlock(cin, width, 2 if i > 0 and j == 0 else 1))
        cin = width
    self.blocks = nn.Sequential(*blocks)
    self.head = dense(cin, NUM_CLASSES, gain=1.0)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    """Logits of NCHW images."""
    return self.head(self.blocks(self.stem(x)).mean((2, 3)))


class MLP(nn.Sequential):
  """Flattened input, He-initialized relu layers of `widths`, a linear head (jaxnets' mlp, relu, he_normal)."""

  def __init__(self, in_features: int, widths: tuple):
    layers = []
    for width in widths:
      layers += [dense(in_features, width, gain=2.0), nn.ReLU()]
      in_features = width
    super().__init__(nn.Flatten(), *layers, dense(in_features, NUM_CLASSES, gain=2.0))


def build_net(model_cfg, image_shape: tuple) -> nn.Module:
  """The PyTorch twin of a jaxnets config.model: cifar_resnet given only a depth, or the relu He-normal mlp."""
  m = model_cfg.to_dict()
  if m == {'name': 'cifar_resnet', 'depth': m.get('depth')}:
    return CifarResNet(m['depth'], image_shape[-1]).to(memory_format=torch.channels_last)
  if m == {'name': 'mlp', 'widths': m.get('widths'), 'activation': 'relu', 'kernel_init': 'he_normal'}:
    return MLP(math.prod(image_shape), tuple(m['widths']))
  raise ValueError(f'no PyTorch twin of jaxnets model {m}')


def sgd(net: nn.Module, opt_cfg) -> torch.optim.SGD:
  """jaxnets' 'momentum' optimizer with 'l2' weight decay: the penalty's gradient on conv and linear weights
  (its `kernel` leaves) only, never on biases or BatchNorm."""
  if (opt_cfg.name != 'momentum' or opt_cfg.weight_decay_mode != 'l2'
      or any(opt_cfg[f] for f in ('l1', 'clip_value', 'clip_norm', 'param_groups'))):
    raise ValueError(f'no PyTorch twin of jaxnets optimizer {opt_cfg.to_dict()}')
  kernels = [m.weight for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
  decayed = {id(k) for k in kernels}
  others = [p for p in net.parameters() if id(p) not in decayed]
  return torch.optim.SGD([{'params': kernels, 'weight_decay': opt_cfg.weight_decay},
                          {'params': others, 'weight_decay': 0.0}],
                         lr=opt_cfg.lr, momentum=opt_cfg.get('momentum', MOMENTUM))


def crop_and_flip(x: torch.Tensor, padding: int, crop: bool, flip: bool) -> torch.Tensor:
  """Per image of an NHWC batch: a random window of the zero-padded image (if crop), mirrored left-right with
  probability 1/2 (if flip); one gather for the whole batch."""
  n, h, w, _ = x.shape
  pad = padding if crop else 0
  x = F.pad(x, (0, 0, pad, pad, pad, pad))
  offsets = torch.randint(0, 2 * pad + 1, (2, n))
  rows = offsets[0, :, None] + torch.arange(h)
  cols = offsets[1, :, None] + torch.arange(w)
  if flip:
    cols = torch.where(torch.rand(n, 1) < 0.5, cols.flip(1), cols)
  return x[torch.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


class Trainer:
  """A config's PyTorch twin: its net, optimizer and augmentation, and fixed random batches as jaxnets' bench."""

  def __init__(self, config, batch: int, eval_batch: int):
    self.image_shape = IMAGE_SHAPES[config.data.name]
    self.net = build_net(config.model, self.image_shape)
    self.convolutional = isinstance(self.net, CifarResNet)
    self.optimizer = sgd(self.net, config.optimizer)
    augment = {a.strip() for a in config.data.augment.split(',') if a.strip()}
    if augment - {'crop', 'flip'}:
      raise ValueError(f'no PyTorch twin of the augmentations {sorted(augment)}')
    self.crop, self.flip, self.padding = 'crop' in augment, 'flip' in augment, config.data.crop_padding
    rng = np.random.default_rng(0)
    self.images, self.labels = self.random_batch(rng, batch)
    self.eval_images, _ = self.random_batch(rng, eval_batch)

  def random_batch(self, rng, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`size` random uint8 NHWC images and random labels."""
    images = rng.integers(0, 256, (size,) + self.image_shape, dtype=np.uint8)
    return torch.from_numpy(images), torch.from_numpy(rng.integers(0, NUM_CLASSES, size))

  def inputs(self, images: torch.Tensor, train: bool) -> torch.Tensor:
    """Normalized (and in training augmented) NHWC images as the net takes them: a ResNet NCHW in channels_last
    memory, the MLP NHWC (flattened in jaxnets' order)."""
    x = (images.float() - IMAGE_MEAN) / IMAGE_STD
    if train and (self.crop or self.flip):
      x = crop_and_flip(x, self.padding, self.crop, self.flip)
    return x.permute(0, 3, 1, 2) if self.convolutional else x

  def train_step(self) -> torch.Tensor:
    """One SGD step on the training batch; its loss."""
    self.net.train()
    loss = F.cross_entropy(self.net(self.inputs(self.images, train=True)), self.labels)
    self.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    self.optimizer.step()
    return loss.detach()

  def eval_step(self) -> torch.Tensor:
    """Logits of the eval batch, BatchNorm on its running averages, without autograd."""
    self.net.eval()
    with torch.no_grad():
      return self.net(self.inputs(self.eval_images, train=False))

  def count_params(self) -> int:
    """Trainable scalars (BatchNorm's running averages are buffers, not parameters), as jaxnets counts."""
    return sum(p.numel() for p in self.net.parameters())


def images_per_second(fn, images_per_call: int, calls: int) -> float:
  """img/s of `calls` calls of fn() after one warm-up call, as benchmarks.timing's (eager CPU ops are done when
  they return; that module imports JAX, which must not load into this process)."""
  fn()
  start = time.perf_counter()
  for _ in range(calls):
    fn()
  return calls * images_per_call / (time.perf_counter() - start)


def measure(config, batch: int, eval_batch: int, steps: int) -> dict:
  """{'params', 'train_ips', 'eval_ips'} of the config's PyTorch twin on all cores of this machine."""
  torch.set_num_threads(os.cpu_count())
  torch.manual_seed(config.seed)
  trainer = Trainer(config, batch, eval_batch)
  return {'params': trainer.count_params(),
          'train_ips': images_per_second(trainer.train_step, batch, steps),
          'eval_ips': images_per_second(trainer.eval_step, eval_batch, max(1, steps // 4))}
