"""Early stopping on a validation split: stop after `patience` evaluations without a new best headline.

The headline is the task's (error for classification, mIoU for segmentation...), with its direction.
The state is a few numbers kept in every checkpoint's metadata, so a resumed run stops exactly where
an uninterrupted one would; the best parameters are kept in a checkpoint of their own.
"""

import dataclasses
import math

from jaxnets.tasks.base import Headline


@dataclasses.dataclass
class EarlyStopping:
  """Best validation value so far, the step that reached it, and evaluations since then."""
  patience: int
  headline: Headline
  best_value: float = math.nan  # nan until the first evaluation.
  best_step: int = 0
  evals_since_best: int = 0

  def update(self, step: int, value: float) -> bool:
    """Record the validation headline at `step`; True if it is a new best (strictly better)."""
    if math.isnan(self.best_value) or self.headline.better(value, self.best_value):
      self.best_value, self.best_step, self.evals_since_best = value, step, 0
      return True
    self.evals_since_best += 1
    return False

  @property
  def should_stop(self) -> bool:
    """Whether `patience` evaluations in a row brought no improvement."""
    return self.evals_since_best >= self.patience

  def to_meta(self) -> dict:
    """JSON-able state for checkpoint metadata (no best value yet is stored as None)."""
    return {'best_value': None if math.isnan(self.best_value) else self.best_value,
            'best_step': self.best_step, 'evals_since_best': self.evals_since_best}

  @classmethod
  def from_meta(cls, patience: int, headline: Headline, meta: dict) -> 'EarlyStopping':
    """The state saved by to_meta."""
    best = meta['best_value']
    return cls(patience, headline, math.nan if best is None else best, meta['best_step'],
               meta['evals_since_best'])
