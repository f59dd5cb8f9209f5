"""He et al. (2016) degradation: plain nets get worse with depth, residual twins get better.

Default: plain and residual CIFAR-style nets of depth 20 and 56 on real Fashion-MNIST (offline), sized
for a 2-core CPU (about 13 minutes for all four). Variant ':cifar10': the paper's recipe (Sec. 4.2) on
CIFAR-10, depths 20-110.

The CPU budget buys about 46k training images per net, spent as 720 steps of batch 64: smaller batches
than the paper's 128 take the nets further in the same images (measured on this CPU: see the README).
"""

import ml_collections

from experiments.configs import default


def get_config(arg: str | None = None):
  c = default.get_config()
  # One recipe for every run: SGD momentum 0.9, lr 0.1, weight decay 1e-4 (L2), /10 at 50% and 75%.
  c.model = ml_collections.ConfigDict({'name': 'cifar_resnet', 'shortcut': 'A'})
  c.optimizer.name = 'momentum'  # Its momentum is 0.9 (jaxnets/optim.py).
  c.optimizer.lr = 0.1
  c.optimizer.weight_decay = 1e-4
  c.optimizer.schedule.name = 'step'
  c.optimizer.schedule.boundaries = (0.5, 0.75)
  c.data.augment = 'crop,flip'
  c.experiment.sweep = 'model.residual=False,True model.depth=20,56'
  c.experiment.columns = 'model.depth,model.residual'
  c.experiment.report = 'degradation'

  if arg in (None, ''):
    c.data.name = 'fashion_mnist'
    c.data.batch_size = 64
    c.train.steps = 720
    c.optimizer.schedule.warmup_steps = 144
    c.train.log_every = 10
    c.train.eval_every = 90
    c.train.checkpoint_every = 90
    c.data.train_eval_examples = 5000
    c.data.test_curve_examples = 1000
  elif arg == 'cifar10':
    c.data.name = 'cifar10'
    c.data.train_split = 'train[:45000]'  # The paper's 45k/5k train/validation split.
    c.data.test_split = 'test'
    c.data.batch_size = 128
    c.train.steps = 64000  # /10 at 32k and 48k.
    c.optimizer.schedule.warmup_steps = 400  # The paper warms up ResNet-110 for ~400 iterations.
    c.train.log_every = 100
    c.train.eval_every = 2000
    c.train.checkpoint_every = 2000
    c.data.train_eval_examples = 10000
    c.data.test_curve_examples = 0
    c.experiment.sweep = 'model.residual=False,True model.depth=20,32,44,56,110'
  else:
    raise ValueError(f"unknown variant {arg!r} of resnet_degradation; valid choices: '' (default), 'cifar10'")
  return c
