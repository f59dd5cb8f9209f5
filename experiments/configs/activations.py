"""The vanishing gradient made visible: one deep MLP (12 hidden layers) under six activations.

Sigmoid and tanh with Glorot (Xavier) initialization, ReLU, leaky ReLU and ELU with He
initialization, SELU with LeCun initialization and alpha dropout (Klambauer et al. 2017). Plain SGD
with one learning rate for all, no batch norm. Reports (layer_gradients.png) the gradient norm of every
layer at initialization and after training, and the learning curves (curves.png).
"""

import ml_collections

from experiments.configs import default

DEPTH, WIDTH = 12, 128


def get_config(arg: str | None = None):
  default.no_variants(arg, 'activations')
  c = default.get_config()
  c.model = ml_collections.ConfigDict({
      'name': 'mlp', 'widths': (WIDTH,) * DEPTH, 'activation': 'relu', 'kernel_init': 'he_normal',
      'dropout': 0.0, 'dropout_kind': 'standard'})
  c.data.augment = ''
  c.data.batch_size = 64
  c.optimizer.name = 'sgd'
  c.optimizer.lr = 0.02  # At 0.05 the ELU net diverged (NaN loss within 25 steps).
  c.optimizer.weight_decay = 0.0
  c.optimizer.schedule.name = 'constant'
  default.train_for(c, steps=3000, log_every=25, eval_every=500)
  c.experiment.variants = '; '.join([
      'sigmoid: model.activation=sigmoid model.kernel_init=xavier_normal',
      'tanh: model.activation=tanh model.kernel_init=xavier_normal',
      'relu: model.activation=relu model.kernel_init=he_normal',
      'leaky_relu: model.activation=leaky_relu model.kernel_init=he_normal',
      'elu: model.activation=elu model.kernel_init=he_normal',
      'selu: model.activation=selu model.kernel_init=lecun_normal model.dropout=0.05 '
      'model.dropout_kind=alpha',
  ])
  c.experiment.columns = 'model.activation,model.kernel_init,model.dropout_kind'
  c.experiment.report = 'layer_gradients'
  return c
