"""The registered datasets: what each is called in TFDS and the shape of its examples."""

import dataclasses

from jaxnets.registry import Registry


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """One dataset as the rest of jaxnets sees it: TFDS name, example shape, classes and splits."""
  name: str
  tfds_name: str
  image_shape: tuple[int, int, int]  # (H, W, C)
  num_classes: int
  train_split: str  # TFDS split strings
  test_split: str


DATASETS = Registry('dataset')
for _spec in (
    DatasetSpec('cifar10', 'cifar10', (32, 32, 3), 10, 'train', 'test'),
    DatasetSpec('cifar100', 'cifar100', (32, 32, 3), 100, 'train', 'test'),
    DatasetSpec('mnist', 'mnist', (28, 28, 1), 10, 'train', 'test'),
    DatasetSpec('fashion_mnist', 'fashion_mnist', (28, 28, 1), 10, 'train', 'test'),
):
  DATASETS.register(_spec.name, _spec)


def names() -> list[str]:
  """The names `spec` and `load` accept."""
  return DATASETS.names()


def spec(name: str) -> DatasetSpec:
  """The spec of dataset `name`; an unknown name raises the registry's error listing valid ones."""
  return DATASETS.get(name)
