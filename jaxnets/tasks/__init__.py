"""Tasks: what a model's outputs are scored against (see base.py for the interface every task implements).

`config.task.name` picks one; its other fields are the task's arguments. A task predicts one feature of
the dataset (its `target`), and the dataset names that feature's classes.
"""

import functools

from jaxnets.registry import Registry
from jaxnets.tasks.base import Headline, Task
from jaxnets.tasks.classification import Classification
from jaxnets.tasks.detection import Detection
from jaxnets.tasks.gan import GAN
from jaxnets.tasks.multilabel import MultiLabel
from jaxnets.tasks.reconstruction import Reconstruction
from jaxnets.tasks.segmentation import Segmentation
from jaxnets.tasks.sequences import Forecast, Seq2Seq, SequenceLabeling

TASKS = Registry('task')
TASKS.register('classification', Classification)
TASKS.register('multilabel', functools.partial(MultiLabel, loss='bce', head='logistic'))
TASKS.register('multilabel_sse', functools.partial(MultiLabel, loss='sse', head='logistic'))
TASKS.register('multilabel_sse_linear', functools.partial(MultiLabel, loss='sse', head='linear'))
TASKS.register('segmentation', Segmentation)
TASKS.register('detection', Detection)
TASKS.register('forecast', Forecast)
TASKS.register('seq2seq', Seq2Seq)
TASKS.register('sequence_labeling', SequenceLabeling)
TASKS.register('reconstruction', Reconstruction)
TASKS.register('gan', GAN)


def _task_class(name: str):
  """The class registered under `name` (unwrapping a partial)."""
  constructor = TASKS.get(name)
  return getattr(constructor, 'func', constructor)


def target(name: str) -> str:
  """The dataset feature that task `name` predicts (e.g. 'label', 'mask')."""
  return _task_class(name).target


def headline(name: str) -> Headline:
  """The metric by which runs of task `name` are compared."""
  return _task_class(name).headline


def create(name: str, classes: tuple, **fields) -> Task:
  """The task registered under `name` for a target with these class names, configured by `fields`."""
  return TASKS.create(name, classes=classes, **fields)


def names() -> list[str]:
  """Every registered task name."""
  return TASKS.names()


__all__ = ['Headline', 'Task', 'create', 'headline', 'names', 'target']
