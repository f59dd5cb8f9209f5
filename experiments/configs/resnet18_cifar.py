"""ResNet-18 in its CIFAR form: the ImageNet net's four stages of basic blocks (64-512 filters, 11.2M
parameters) behind a 3x3 stride-1 stem without max pooling, so 32x32 inputs keep their resolution.

Default: Fashion-MNIST (offline) for a short CPU budget. Variant
':cifar10': CIFAR-10 with crop+flip, SGD momentum 0.9, lr 0.1 with cosine decay, weight decay 5e-4,
200 epochs of batch 128.
"""

import ml_collections

from experiments.configs import default


def get_config(arg: str | None = None):
  c = default.get_config()
  c.model = ml_collections.ConfigDict({'name': 'resnet18', 'stem': 'cifar'})
  c.optimizer.name = 'momentum'
  c.optimizer.schedule.name = 'cosine'
  if arg in (None, ''):
    c.data.name = 'fashion_mnist'
    c.data.augment = ''
    c.data.batch_size = 64
    c.data.train_eval_examples = 2000
    c.data.test_curve_examples = 1000
    c.data.eval_batch_size = 500
    c.optimizer.lr = 0.05
    c.optimizer.weight_decay = 5e-4
    c.optimizer.schedule.warmup_steps = 90
    default.train_for(c, steps=900, log_every=10, eval_every=150)
  elif arg == 'cifar10':
    c.data.name = 'cifar10'
    c.data.augment = 'crop,flip'
    c.data.batch_size = 128
    c.optimizer.lr = 0.1
    c.optimizer.weight_decay = 5e-4
    default.train_for(c, steps=78200, log_every=100, eval_every=2500)  # 200 epochs of 50,000 images.
  else:
    raise ValueError(f"unknown variant {arg!r} of resnet18_cifar; valid choices: '' (default), 'cifar10'")
  return c
