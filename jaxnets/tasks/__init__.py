"""Tasks: what a model's outputs are scored against. A task is a loss plus the metrics it reports."""

import functools

from jaxnets.registry import Registry
from jaxnets.tasks.classification import Classification
from jaxnets.tasks.multilabel import MultiLabel

TASKS = Registry('task')
TASKS.register('classification', Classification)
TASKS.register('multilabel', functools.partial(MultiLabel, loss='bce', head='logistic'))
TASKS.register('multilabel_sse', functools.partial(MultiLabel, loss='sse', head='logistic'))
TASKS.register('multilabel_sse_linear', functools.partial(MultiLabel, loss='sse', head='linear'))


def create(name: str):
  """The task registered under `name`."""
  return TASKS.create(name)


def names() -> list[str]:
  """Every registered task name."""
  return TASKS.names()
