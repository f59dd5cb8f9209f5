"""A seconds-long study for the launch tests: the course MLP on real Fashion-MNIST, 20 steps, two
learning rates x three seeds (get_sweep) and a TPE search space over the learning rate (get_search)."""

from experiments.configs import mlp


def get_config(arg: str | None = None):
  c = mlp.get_config(arg)
  c.model.widths = (32,)
  c.data.train_split = 'train[:2048]'
  c.data.test_split = 'test[:512]'
  c.data.train_eval_examples = 256
  c.data.test_curve_examples = 256
  c.train.update(steps=20, log_every=5, eval_every=10, checkpoint_every=5)
  return c


def get_sweep(h):
  return h.product([h.sweep('config.optimizer.lr', [0.01, 0.1]), h.seeds([0, 1, 2])])


def get_search(h):
  return [h.loguniform('config.optimizer.lr', 1e-3, 0.3)]
