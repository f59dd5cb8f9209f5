"""Device-side input preprocessing from config: per-channel normalization, then the named augmentations."""

import dataclasses

import jax
import numpy as np

from jaxnets.data import augment
from jaxnets.registry import Registry

AUGMENTATIONS = Registry('augmentation')
AUGMENTATIONS.register('crop', lambda key, x, pre: augment.random_crop(key, x, pre.crop_padding))
AUGMENTATIONS.register('flip', lambda key, x, pre: augment.random_flip(key, x))


def parse_augment(spec: str) -> tuple:
  """'crop,flip' -> ('crop', 'flip'), each name checked against the registry ('' means none)."""
  names = tuple(n.strip() for n in spec.split(',') if n.strip())
  for name in names:
    AUGMENTATIONS.get(name)
  return names


@dataclasses.dataclass(frozen=True)
class Preprocess:
  """Normalizes uint8 batches with the training set's channel statistics; augments in training only."""
  mean: np.ndarray
  std: np.ndarray
  augment: tuple = ()
  crop_padding: int = 4

  @classmethod
  def from_config(cls, data_cfg, train_images: np.ndarray) -> 'Preprocess':
    """config.data's augmentations, normalized by the channel statistics of `train_images`."""
    mean, std = augment.channel_stats(train_images)
    return cls(mean, std, parse_augment(data_cfg.augment), data_cfg.crop_padding)

  def train(self, key, images):
    """Normalized, then each augmentation in order with its own key."""
    x = augment.normalize(images, self.mean, self.std)
    for i, name in enumerate(self.augment):
      x = AUGMENTATIONS.get(name)(jax.random.fold_in(key, i), x, self)
    return x

  def eval(self, images):
    """Normalized only."""
    return augment.normalize(images, self.mean, self.std)
