"""The model registry: `create(name, **kwargs)` builds any model by name; `names()` lists them."""

import functools

from jaxnets.models.mlp import MLP
from jaxnets.models.resnet import CIFAR_DEPTHS, CifarResNet
from jaxnets.registry import Registry

MODELS = Registry('model')
MODELS.register('mlp', MLP)
MODELS.register('cifar_resnet', CifarResNet)
for _depth in CIFAR_DEPTHS:
  MODELS.register(f'cifar_resnet{_depth}', functools.partial(CifarResNet, depth=_depth, residual=True))
  MODELS.register(f'cifar_plain{_depth}', functools.partial(CifarResNet, depth=_depth, residual=False))


def create(name: str, **kwargs):
  """An unbound Flax module of the registered family `name`, configured by `kwargs`."""
  return MODELS.create(name, **kwargs)


def names() -> list[str]:
  """Every registered model name."""
  return MODELS.names()
