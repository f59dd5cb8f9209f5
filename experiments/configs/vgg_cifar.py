"""VGG with batch norm in its CIFAR form: the paper's convolution stacks on 32x32 inputs, a 512-wide
classifier after the last (1x1) feature map, dropout 0.5.

Default: VGG-11-BN on Fashion-MNIST padded to 32x32 (offline, on a 2-core CPU).
Variant ':cifar10': VGG-16-BN on CIFAR-10 (needs TFDS's cifar10 prepared), crop+flip augmentation,
SGD momentum 0.9, lr 0.05 with cosine decay, weight decay 5e-4, 160 epochs of batch 128.
"""

import ml_collections

from experiments.configs import default


def get_config(arg: str | None = None):
  c = default.get_config()
  c.model = ml_collections.ConfigDict({
      'name': 'vgg11_bn', 'classifier_width': 512, 'pool_size': 1, 'dropout': 0.5})
  c.optimizer.name = 'momentum'
  c.optimizer.schedule.name = 'cosine'
  if arg in (None, ''):
    c.data.name = 'fashion_mnist'
    c.data.pad_to = 32  # Five 2x2 pools need 32x32; LeCun padded MNIST the same way.
    c.data.augment = ''
    c.data.batch_size = 64
    c.data.train_eval_examples = 1000
    c.data.test_curve_examples = 1000
    c.optimizer.lr = 0.02
    c.optimizer.weight_decay = 5e-4
    c.optimizer.schedule.warmup_steps = 40
    # 300 steps took 14 min 23 s here with the faster step (about 9.5 training, the rest evaluating).
    default.train_for(c, steps=300, log_every=25, eval_every=100)
  elif arg == 'cifar10':
    c.model.name = 'vgg16_bn'
    c.data.name = 'cifar10'
    c.data.augment = 'crop,flip'
    c.data.batch_size = 128
    c.optimizer.lr = 0.05
    c.optimizer.weight_decay = 5e-4
    default.train_for(c, steps=62500, log_every=100, eval_every=2500)  # 160 epochs of 50,000 images.
  else:
    raise ValueError(f"unknown variant {arg!r} of vgg_cifar; valid choices: '' (default), 'cifar10'")
  return c
