"""The course's multilayer perceptron: flattened 28x28 images, two hidden ReLU layers (300, 100) with
He initialization, a softmax output trained by cross-entropy, SGD with momentum."""

import ml_collections

from experiments.configs import default


def get_config(arg: str | None = None):
  default.no_variants(arg, 'mlp')
  c = default.get_config()
  c.model = ml_collections.ConfigDict({
      'name': 'mlp', 'widths': (300, 100), 'activation': 'relu', 'kernel_init': 'he_normal'})
  c.data.augment = ''
  c.data.batch_size = 64
  c.optimizer.lr = 0.02
  c.optimizer.weight_decay = 0.0
  c.optimizer.schedule.name = 'cosine'
  default.train_for(c, steps=3000, log_every=50, eval_every=500)
  return c


def get_sweep(h):
  """The launch.sweep study: learning rate x batch size, two seeds each (18 trials)."""
  return h.product([h.sweep('config.optimizer.lr', [0.005, 0.02, 0.08]),
                    h.sweep('config.data.batch_size', [32, 64, 128]),
                    h.seeds([0, 1])])
