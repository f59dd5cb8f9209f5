"""Device-side preprocessing of batch dicts from config: per-channel normalization, then the augmentations."""

import dataclasses

import jax
import numpy as np

from jaxnets.data import augment
from jaxnets.registry import Registry

AUGMENTATIONS = Registry('augmentation')
AUGMENTATIONS.register('crop', lambda key, batch, pre: augment.random_crop(key, batch, pre.crop_padding))
AUGMENTATIONS.register('flip', lambda key, batch, pre: augment.random_flip(key, batch))
AUGMENTATIONS.register('rotate', lambda key, batch, pre: augment.random_rotate(key, batch, pre.rotate_degrees))
# brightness is a fraction of the full [0, 255] range, so in normalized units it is 255 * b / std.
AUGMENTATIONS.register(
    'brightness',
    lambda key, batch, pre: augment.random_brightness(key, batch, 255.0 * pre.brightness / pre.std))


# How images reach the model: 'standard' is (x - mean) / std with the training set's channel statistics;
# 'unit' is x / 255 in [0, 1] (an autoencoder's sigmoid output, a Bernoulli likelihood); 'binary' is
# x / 255 > 0.5, MNIST-style binarization, fixed per pixel.
NORMALIZATIONS = ('standard', 'unit', 'binary')


def check_normalize(name: str) -> None:
  """A one-line error naming the valid choices unless `name` is one of NORMALIZATIONS."""
  if name not in NORMALIZATIONS:
    raise ValueError(f'data.normalize={name!r} is not one of {", ".join(NORMALIZATIONS)}')


def parse_augment(spec: str) -> tuple:
  """'crop,flip' -> ('crop', 'flip'), each name checked against the registry ('' means none)."""
  names = tuple(n.strip() for n in spec.split(',') if n.strip())
  for name in names:
    AUGMENTATIONS.get(name)
  return names


@dataclasses.dataclass(frozen=True)
class Preprocess:
  """Normalizes a batch's uint8 images (by the training set's channel statistics, or to [0, 1]); augments
  in training only.

  Batches are dicts; the image's mask and boxes go through every transform with it. A batch without
  an 'image' passes through unchanged.
  """
  mean: np.ndarray
  std: np.ndarray
  augment: tuple = ()
  crop_padding: int = 4
  rotate_degrees: float = 15.0
  brightness: float = 0.2
  pad_to: int = 0
  binarize: bool = False  # After scaling to [0, 1]: 1 where a pixel exceeds 0.5, else 0.

  @classmethod
  def from_config(cls, data_cfg, stats: tuple | None) -> 'Preprocess':
    """config.data's normalization and augmentations; `stats` is the training set's channel (mean, std)
    for data.normalize='standard' and unused otherwise."""
    check_normalize(data_cfg.normalize)
    mean, std = stats if data_cfg.normalize == 'standard' else (0.0, 255.0)
    return cls(mean, std, parse_augment(data_cfg.augment), data_cfg.crop_padding,
               data_cfg.rotate_degrees, data_cfg.brightness, data_cfg.pad_to,
               binarize=data_cfg.normalize == 'binary')

  def train(self, key, batch: dict) -> dict:
    """Normalized and padded, then each augmentation in order with its own key."""
    batch = self.eval(batch)
    if 'image' not in batch:
      return batch
    for i, name in enumerate(self.augment):
      batch = AUGMENTATIONS.get(name)(jax.random.fold_in(key, i), batch, self)
    return batch

  def frame(self, batch: dict) -> dict:
    """The batch as stored (uint8 images), centred in the pad_to frame the model sees: predictions line
    up with its masks and boxes."""
    if 'image' not in batch:
      return batch
    h, w = input_shape(batch['image'].shape[1:], self.pad_to)[:2]
    return jax.tree.map(np.asarray, augment.pad_to(batch, h, w))

  def eval(self, batch: dict) -> dict:
    """Normalized, and centred in a pad_to x pad_to frame (padding = the mean) if that is set."""
    if 'image' not in batch:
      return batch
    image = augment.normalize(batch['image'], self.mean, self.std)
    batch = dict(batch, image=(image > 0.5).astype(image.dtype) if self.binarize else image)
    h, w = input_shape(batch['image'].shape[1:], self.pad_to)[:2]
    return augment.pad_to(batch, h, w)


def input_shape(image_shape: tuple, pad_to: int) -> tuple:
  """The (H, W, C) the model sees: images padded to at least pad_to x pad_to (0: as stored)."""
  if pad_to < 0:
    raise ValueError(f'data.pad_to={pad_to} must be >= 0 (0: no padding)')
  h, w, c = image_shape
  return (max(h, pad_to), max(w, pad_to), c)
