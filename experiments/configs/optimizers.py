"""One network, seven optimizers: SGD, momentum, Nesterov, AdaGrad, AdaDelta, RMSProp, Adam.

The course's small CNN (no batch norm, no weight decay) on Fashion-MNIST, a constant learning rate per
optimizer at its customary value (SGD 0.05; momentum and Nesterov 0.01 with momentum 0.9, about the
same effective step; AdaGrad 0.05; AdaDelta 1.0, as Zeiler 2012; RMSProp and Adam 0.001). At 0.05,
Nesterov's net died at chance level here (measured), which the study should not be about. Every run
sees the same batches in the same order. Reports training loss and error curves in one plot (curves.png) and the final errors in results.md.
"""

import ml_collections

from experiments.configs import default

# name -> its settings; the rest are the optimizer's own defaults (jaxnets/optim.py): momentum 0.9 for
# momentum and Nesterov, RMSProp without momentum.
VARIANTS = {
    'sgd': 'optimizer.lr=0.05',
    'momentum': 'optimizer.lr=0.01',  # Momentum 0.9 multiplies the step by about 10.
    'nesterov': 'optimizer.lr=0.01',
    'adagrad': 'optimizer.lr=0.05',
    'adadelta': 'optimizer.lr=1.0',  # Zeiler (2012)'s rho 0.95, eps 1e-6: the optimizer's defaults.
    'rmsprop': 'optimizer.lr=0.001 optimizer.rho=0.95',
    'adam': 'optimizer.lr=0.001',
}


def get_config(arg: str | None = None):
  default.no_variants(arg, 'optimizers')
  c = default.get_config()
  c.model = ml_collections.ConfigDict({'name': 'simple_cnn', 'widths': (32, 64), 'convs_per_stage': 1})
  c.data.augment = ''
  c.data.batch_size = 64
  c.optimizer.weight_decay = 0.0
  c.optimizer.schedule.name = 'constant'
  default.train_for(c, steps=800, log_every=20, eval_every=200)
  c.experiment.variants = '; '.join(
      f'{name}: optimizer.name={name} {fields}' for name, fields in VARIANTS.items())
  c.experiment.columns = 'optimizer.name,optimizer.lr'
  c.experiment.report = 'curves'
  return c
