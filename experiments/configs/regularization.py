"""The regularization ablation: the course's small CNN trained on 5,000 Fashion-MNIST images long
enough to overfit, then batch norm, dropout, L2, data augmentation and early stopping one at a time,
and all together.

Validation: 5,000 further training images (train[50000:55000]), scored every 100 steps in every run;
early stopping keeps the network of the best validation error (patience 3 evaluations). Test error
is the whole test split. results.md is the ablation table; curves.png the learning curves.
"""

import ml_collections

from experiments.configs import default

VARIANTS = {
    'baseline': '',
    'batch_norm': 'model.batch_norm=True',
    'dropout': 'model.dropout=0.5',
    'l2': 'optimizer.weight_decay=0.001',
    'augmentation': 'data.augment=crop,flip,rotate,brightness',
    'early_stopping': 'train.early_stopping_patience=3',
    'all': 'model.batch_norm=True model.dropout=0.5 optimizer.weight_decay=0.001 '
           'data.augment=crop,flip,rotate,brightness train.early_stopping_patience=3',
}


def get_config(arg: str | None = None):
  default.no_variants(arg, 'regularization')
  c = default.get_config()
  c.model = ml_collections.ConfigDict({
      'name': 'simple_cnn', 'widths': (32, 64), 'convs_per_stage': 1, 'hidden': 256,
      'batch_norm': False, 'bn_epsilon': 1e-3, 'dropout': 0.0})
  c.data.train_split = 'train[:5000]'
  c.data.val_split = 'train[50000:55000]'
  c.data.augment = ''
  c.data.crop_padding = 2
  c.data.batch_size = 64
  c.data.train_eval_examples = 0  # All 5,000 training images.
  c.optimizer.name = 'momentum'
  c.optimizer.lr = 0.02
  c.optimizer.weight_decay = 0.0
  c.optimizer.schedule.name = 'constant'
  default.train_for(c, steps=1200, log_every=20, eval_every=100)
  c.experiment.variants = '; '.join(f'{name}: {fields}' for name, fields in VARIANTS.items())
  c.experiment.columns = ('model.batch_norm,model.dropout,optimizer.weight_decay,data.augment,'
                          'train.early_stopping_patience')
  c.experiment.report = 'curves'
  return c
