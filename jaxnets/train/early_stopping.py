"""Early stopping on a validation split: stop after `patience` evaluations without a new best error.

The state is a few numbers kept in every checkpoint's metadata, so a resumed run stops exactly where
an uninterrupted one would; the best parameters are kept in a checkpoint of their own.
"""

import dataclasses
import math


@dataclasses.dataclass
class EarlyStopping:
  """Best validation error so far, the step that reached it, and evaluations since then."""
  patience: int
  best_error: float = math.inf
  best_step: int = 0
  evals_since_best: int = 0

  def update(self, step: int, error: float) -> bool:
    """Record the validation error at `step`; True if it is a new best (strictly lower)."""
    if error < self.best_error:
      self.best_error, self.best_step, self.evals_since_best = error, step, 0
      return True
    self.evals_since_best += 1
    return False

  @property
  def should_stop(self) -> bool:
    """Whether `patience` evaluations in a row brought no improvement."""
    return self.evals_since_best >= self.patience

  def to_meta(self) -> dict:
    """JSON-able state for checkpoint metadata (an infinite best error is stored as None)."""
    return {'best_error': None if math.isinf(self.best_error) else self.best_error,
            'best_step': self.best_step, 'evals_since_best': self.evals_since_best}

  @classmethod
  def from_meta(cls, patience: int, meta: dict) -> 'EarlyStopping':
    """The state saved by to_meta."""
    best = meta['best_error']
    return cls(patience, math.inf if best is None else best, meta['best_step'], meta['evals_since_best'])
