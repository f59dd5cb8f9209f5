"""Exploding gradients and gradient clipping (Pascanu et al. 2013): a simple recurrent net learns the delayed
echo (256 steps, target = the input 16 steps back) by full BPTT with plain SGD, unclipped, clipped by
value (each gradient entry to [-c, c]) and clipped by global norm (the whole gradient rescaled to norm at
most c). grad_norms.png draws the gradient's global norm at every logged step (before clipping) for the
three runs; results.md the test errors.
"""

from experiments.configs import default
from experiments.configs.tbptt import echo_config

VARIANTS = {
    'unclipped': 'optimizer.clip_value=0.0 optimizer.clip_norm=0.0',
    'clip_value': 'optimizer.clip_value=0.1 optimizer.clip_norm=0.0',
    'clip_norm': 'optimizer.clip_value=0.0 optimizer.clip_norm=1.0',
}


def get_config(arg: str | None = None):
  default.no_variants(arg, 'clipping')
  c = echo_config({'cell': 'simple', 'features': 128})
  c.optimizer.name = 'sgd'
  c.optimizer.lr = 0.5
  c.optimizer.clip_norm = 0.0  # Each variant sets its clipping.
  c.optimizer.schedule.name = 'constant'
  default.train_for(c, steps=1000, log_every=10, eval_every=250)
  c.experiment.variants = '; '.join(f'{name}: {fields}' for name, fields in VARIANTS.items())
  c.experiment.columns = 'optimizer.clip_value,optimizer.clip_norm'
  c.experiment.report = 'grad_norms'
  return c
