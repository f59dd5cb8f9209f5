"""Initialization on deep nets: small random normal vs Xavier (Glorot) vs He, on a deep tanh and a deep
ReLU MLP (12 hidden layers, plain SGD, no batch norm).

Glorot & Bengio (2010) and He et al. (2015): with N(0, 0.01^2) weights the signal and the gradient
shrink layer by layer; Xavier keeps tanh nets' variance, He keeps ReLU nets'. Reports the per-layer
gradient norms at initialization and after training (layer_gradients.png) and the learning curves.
"""

import ml_collections

from experiments.configs import default


def get_config(arg: str | None = None):
  default.no_variants(arg, 'initialization')
  c = default.get_config()
  c.model = ml_collections.ConfigDict({
      'name': 'mlp', 'widths': (128,) * 12, 'activation': 'tanh', 'kernel_init': 'xavier_normal'})
  c.data.augment = ''
  c.data.batch_size = 64
  c.optimizer.name = 'sgd'
  c.optimizer.lr = 0.05
  c.optimizer.weight_decay = 0.0
  c.optimizer.schedule.name = 'constant'
  default.train_for(c, steps=1000, log_every=25, eval_every=250)
  c.experiment.sweep = 'model.activation=tanh,relu model.kernel_init=normal:0.01,xavier_normal,he_normal'
  c.experiment.columns = 'model.activation,model.kernel_init'
  c.experiment.report = 'layer_gradients'
  return c
