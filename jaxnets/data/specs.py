"""The registered datasets: where each comes from and what its examples hold.

An example is a dict of arrays with fixed shapes and dtypes, declared by the spec's `features`, so a
model can be traced and a config checked before any data is read. A split is the same dict with a
leading example axis. Keys: 'image' (uint8 H x W x C), 'label' (classification), 'mask' (per-pixel
classes, MASK_IGNORE where unlabelled), 'boxes' / 'classes' / 'box_mask' (detection, padded to a
maximum count; boxes as x1, y1, x2, y2 pixels with exclusive right/bottom edges). Sequences: 'inputs'
(float32 [L, C] series or int32 [L] token ids, id 0 = PAD), 'length' (int32, the valid steps of padded
inputs), 'target' (float32 [H] forecasts), 'targets' (int32 [T] output tokens or per-step labels) and
'time' (float32, a forecast target's time, to plot in order).
"""

import dataclasses
from typing import Callable

import numpy as np

from jaxnets.registry import Registry

CELEBA_SIZE = 64  # CelebA's 178x218 faces, centre-cropped to 178x178 and resized, fit in memory (2 GB).
PETS_SIZE = 128  # Oxford-IIIT pets, resized to 128x128 (images bilinear, trimaps nearest).
VOC_SIZE = 256  # PASCAL VOC images resized to 256x256, boxes scaled with them.
VOC_MAX_BOXES = 42  # The most objects in one VOC 2007 image (trainval and test).
MASK_IGNORE = 255  # A mask value that neither the loss nor the metrics count (VOC's convention).
PAD_ID, EOS_ID = 0, 1  # Token ids: padding in every vocabulary; end of sequence in every output vocabulary.

FASHION_MNIST_CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt',
                         'Sneaker', 'Bag', 'Ankle boot')
CIFAR10_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck')
VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
               'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
               'train', 'tvmonitor')


def numbered(count: int) -> tuple[str, ...]:
  """Class names '0', '1', ... for datasets whose names nobody reads off a table (e.g. ImageNet's 1000)."""
  return tuple(str(i) for i in range(count))


def image_classes(shape: tuple, classes: tuple) -> tuple[dict, dict]:
  """(features, classes) of an image classification dataset: uint8 images, one integer label each."""
  return {'image': (shape, np.uint8), 'label': ((), np.int32)}, {'label': classes}


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """One dataset as the rest of jaxnets sees it.

  `features`: key -> (shape, dtype) of one example. `classes`: for each key a task can predict, the
  names of its classes (the model's outputs when a task predicts that key). `source` reads a split as
  a dict of numpy arrays: TFDS (jaxnets.data.source.Tfds) or a dataset composed here (scenes, sequences).
  `meta`: facts about the data that other code needs: 'vocab_size' (token inputs: the number of input
  ids, PAD = 0 included), 'target_offset' and 'target_scale' (forecasting: a stored target is
  (value - offset) / scale, so an error times scale is in the series' own units), 'season' (forecasting:
  the seasonal period in steps, for a seasonal-naive baseline), 'delay' (echo: how far back a target is),
  'source_tokens' (seq2seq: the text of each source id, for plots).
  """
  name: str
  features: dict
  classes: dict
  train_split: str
  test_split: str
  source: Callable
  meta: dict = dataclasses.field(default_factory=dict)

  @property
  def image_shape(self) -> tuple:
    """(H, W, C) of the stored images."""
    return self.features['image'][0]

  def num_classes(self, target: str) -> int:
    """How many outputs a model needs to predict `target`; an error names the targets this dataset has."""
    if target not in self.classes:
      raise ValueError(f"dataset {self.name!r} has no {target!r} to predict; it has: {', '.join(self.classes)}")
    return len(self.classes[target])


DATASETS = Registry('dataset')


def register(dataset_spec: DatasetSpec) -> None:
  """Add a dataset; called by the modules that define sources."""
  DATASETS.register(dataset_spec.name, dataset_spec)


def names() -> list[str]:
  """The names `spec` and `load` accept."""
  return DATASETS.names()


def spec(name: str) -> DatasetSpec:
  """The spec of dataset `name`; an unknown name raises the registry's error listing valid ones."""
  return DATASETS.get(name)
