"""The registered datasets: what each is called in TFDS and the shape of its examples."""

import dataclasses
from typing import Callable

from jaxnets.registry import Registry

CELEBA_SIZE = 64  # CelebA's 178x218 faces, centre-cropped to 178x178 and resized, fit in memory (2 GB).


def celeba_example(example: dict):
  """(64x64x3 uint8 face, 40 binary attributes in sorted-name order) from a TFDS celeb_a example."""
  import tensorflow as tf  # noqa: PLC0415 (TFDS's tf.data map functions run in TensorFlow).
  image = tf.image.crop_to_bounding_box(example['image'], 20, 0, 178, 178)
  image = tf.image.resize(image, (CELEBA_SIZE, CELEBA_SIZE), antialias=True)
  image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
  attributes = example['attributes']
  return image, tf.stack([tf.cast(attributes[k], tf.int32) for k in sorted(attributes)])


def imagenet_example(example: dict):
  """(224x224x3 uint8 centre crop of the image resized to a shorter side of 256, label): the paper's
  test-time view (He et al. 2016, Sec. 3.4), stored once so that training can crop and flip on device."""
  import tensorflow as tf  # noqa: PLC0415
  image = example['image']
  shape = tf.cast(tf.shape(image)[:2], tf.float32)
  size = tf.cast(tf.round(shape * 256.0 / tf.reduce_min(shape)), tf.int32)
  image = tf.image.resize(image, size, antialias=True)
  image = tf.image.resize_with_crop_or_pad(image, 224, 224)
  return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8), example['label']


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """One dataset as the rest of jaxnets sees it: TFDS name, example shape, outputs and splits.

  `example` maps a TFDS example dict to (image, label) inside tf.data; None reads TFDS's supervised
  (image, label) pairs. num_classes is the number of model outputs (classes, or attributes of a
  multi-label dataset). `on_disk` keeps the split in memory-mapped .npy files rather than in RAM.
  """
  name: str
  tfds_name: str
  image_shape: tuple[int, int, int]  # (H, W, C)
  num_classes: int
  train_split: str  # TFDS split strings
  test_split: str
  example: Callable | None = None
  on_disk: bool = False


DATASETS = Registry('dataset')
for _spec in (
    DatasetSpec('cifar10', 'cifar10', (32, 32, 3), 10, 'train', 'test'),
    DatasetSpec('cifar100', 'cifar100', (32, 32, 3), 100, 'train', 'test'),
    DatasetSpec('mnist', 'mnist', (28, 28, 1), 10, 'train', 'test'),
    DatasetSpec('fashion_mnist', 'fashion_mnist', (28, 28, 1), 10, 'train', 'test'),
    DatasetSpec('imagenet2012', 'imagenet2012', (224, 224, 3), 1000, 'train', 'validation',
                imagenet_example, on_disk=True),  # 1.28M x 224x224x3 bytes = 193 GB.
    DatasetSpec('celeb_a', 'celeb_a', (CELEBA_SIZE, CELEBA_SIZE, 3), 40, 'train', 'test', celeba_example),
):
  DATASETS.register(_spec.name, _spec)


def names() -> list[str]:
  """The names `spec` and `load` accept."""
  return DATASETS.names()


def spec(name: str) -> DatasetSpec:
  """The spec of dataset `name`; an unknown name raises the registry's error listing valid ones."""
  return DATASETS.get(name)
