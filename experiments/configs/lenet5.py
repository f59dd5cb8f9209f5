"""LeNet-5 (LeCun et al. 1998) as in the paper, and its common modern variant, on Fashion-MNIST.

'lenet5': scaled tanh, trainable subsampling, C3's partial connection table, 28x28 images zero-padded
to 32x32 as the paper did for MNIST. 'lenet5_modern': ReLU, max pooling, full connections. Both with
the same SGD-with-momentum recipe and no augmentation; results.md compares them.
"""

import ml_collections

from experiments.configs import default


def get_config(arg: str | None = None):
  default.no_variants(arg, 'lenet5')
  c = default.get_config()
  c.model = ml_collections.ConfigDict({'name': 'lenet5'})
  c.data.augment = ''
  c.data.batch_size = 64
  c.optimizer.lr = 0.02
  c.optimizer.weight_decay = 0.0
  c.optimizer.schedule.name = 'cosine'
  default.train_for(c, steps=2000, log_every=50, eval_every=500)
  c.experiment.variants = 'lenet5: model.name=lenet5; lenet5_modern: model.name=lenet5_modern'
  c.experiment.columns = 'model.name'
  return c
