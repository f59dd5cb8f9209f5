"""Attribute recognition on CelebA: 40 yes/no attributes per face, a multi-label head.

Faces centre-cropped and resized to 64x64 at load time (TFDS celeb_a, which needs network access to
prepare). Default: the course's sum-of-squared-errors loss on logistic outputs; variant ':bce':
binary cross-entropy. The error reported is the fraction of wrong attributes.
"""

import ml_collections

from experiments.configs import default

LOSSES = {'': 'multilabel_sse', 'bce': 'multilabel'}


def get_config(arg: str | None = None):
  if (arg or '') not in LOSSES:
    raise ValueError(f"unknown variant {arg!r} of celeba_attributes; valid choices: '' (default), 'bce'")
  c = default.get_config()
  c.task.name = LOSSES[arg or '']
  c.model = ml_collections.ConfigDict({
      'name': 'simple_cnn', 'widths': (32, 64, 128), 'convs_per_stage': 2, 'hidden': 256,
      'batch_norm': True, 'dropout': 0.3})
  c.data.name = 'celeb_a'
  c.data.augment = 'flip'
  c.data.batch_size = 128
  c.optimizer.name = 'adam'
  c.optimizer.lr = 1e-3
  c.optimizer.weight_decay = 0.0
  c.optimizer.schedule.name = 'cosine'
  default.train_for(c, steps=6000, log_every=50, eval_every=1000)
  return c
