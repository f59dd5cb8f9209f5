"""The model registry: `create(name, **kwargs)` builds any model by name; `names()` lists them.

Each family module exposes `ENTRIES`, a dict name -> constructor (a Module class or a
functools.partial of one fixing e.g. the depth); adding a model is one entry there.
"""

from jaxnets.models import (alexnet, autoencoder, centernet, cnn, conv1d, densenet, fcn, gan, googlenet, highway,
                            lenet, mlp, recurrent, resnet, seq2seq, unet, vgg, wide_resnet)
from jaxnets.registry import Registry

MODELS = Registry('model')
for _family in (mlp, resnet, densenet, cnn, wide_resnet, highway, lenet, alexnet, vgg, googlenet, unet, fcn,
                centernet, recurrent, conv1d, seq2seq, autoencoder, gan):
  for _name, _constructor in _family.ENTRIES.items():
    MODELS.register(_name, _constructor)


def create(name: str, **kwargs):
  """An unbound Flax module of the registered family `name`, configured by `kwargs`."""
  return MODELS.create(name, **kwargs)


def names() -> list[str]:
  """Every registered model name."""
  return MODELS.names()
