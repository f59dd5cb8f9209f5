"""Class subsets (data.classes): a dataset cut down to some of its labels, relabelled 0..k-1 in the order given,
as a transfer-learning study needs (8 Fashion-MNIST classes for the source task, 2 others for the target)."""

import numpy as np

from jaxnets.data.specs import DatasetSpec


def label_subset(spec: DatasetSpec, text: str) -> tuple[int, ...]:
  """The dataset's label indices that data.classes ('Sandal,Shirt') names, in its order; () for all."""
  names = tuple(n.strip() for n in text.split(',') if n.strip())
  if not names:
    return ()
  if 'label' not in spec.classes:
    raise ValueError(f'data.classes={text!r}: dataset {spec.name!r} has no labels to select from')
  valid = spec.classes['label']
  unknown = [n for n in names if n not in valid]
  repeated = [n for n in names if names.count(n) > 1]
  if unknown or repeated:
    problem = f'unknown class {unknown[0]!r}' if unknown else f'class {repeated[0]!r} given twice'
    raise ValueError(f'data.classes={text!r}: {problem}; the classes of {spec.name!r}: {", ".join(valid)}')
  return tuple(valid.index(n) for n in names)


def class_names(spec: DatasetSpec, target: str, subset: tuple[int, ...]) -> tuple:
  """The names of a task's classes: the target's own, cut to `subset` when the target is the label."""
  names = spec.classes.get(target, ())
  return tuple(names[i] for i in subset) if subset and target == 'label' else names


def keep_classes(split: dict, subset: tuple[int, ...]) -> dict:
  """The examples of `split` whose label is in `subset`, relabelled by their position in it (all of them,
  as they are, for an empty subset)."""
  if not subset:
    return split
  labels = split['label']
  keep = np.isin(labels, subset)
  relabel = np.zeros(max(int(labels.max()), max(subset)) + 1, labels.dtype)
  relabel[list(subset)] = np.arange(len(subset))
  out = {k: v[keep] for k, v in split.items()}
  out['label'] = relabel[out['label']]
  return out
