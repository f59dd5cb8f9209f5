"""Tasks: what a model's outputs are scored against. A task is a loss plus the metrics it reports."""

from jaxnets.registry import Registry
from jaxnets.tasks.classification import Classification

TASKS = Registry('task')
TASKS.register('classification', Classification)


def create(name: str):
  """The task registered under `name`."""
  return TASKS.create(name)


def names() -> list[str]:
  """Every registered task name."""
  return TASKS.names()
