"""Transfer learning, the course's own example (Geron, ch. 11): a network trained on 8 Fashion-MNIST classes is
reused for the other 2 (sandal against shirt) with a few hundred labelled images.

Two source runs come first:
  - `source_8`: the classifier (an `encoder_classifier`: two stride-2 convolutions and a dense code, then
    a head) trained on all training images of the 8 other classes;
  - `autoencoder`: a convolutional autoencoder with the same encoder, trained on all 12,000 training images
    of the pair without their labels (unsupervised pretraining).
Then four ways to learn sandal against shirt from the 200-odd labelled images among the first 1,000 of the
training split, each for the same steps (':hard' does the same for T-shirt/top against shirt, the pair
Fashion-MNIST classifiers confuse most, the source runs on the other 8 classes):
  - `scratch`: a fresh network;
  - `frozen`: source_8's encoder loaded and frozen, a new head trained;
  - `finetune`: source_8's encoder loaded and trained at a tenth of the head's learning rate;
  - `pretrained_ae`: the autoencoder's encoder loaded, trained likewise at a tenth.
Every run is repeated for seeds 0, 1 and 2, the sources included ('finetune-seed=1' starts from
'source_8-seed=1'): the seed changes the initialization, the batch order and the source network, not the
labelled images. Test error is on all 2,000 test images of the pair; results.md adds the mean and spread
over seeds.
All runs see pixels in [0, 1] (data.normalize='unit'), as the autoencoder needs.
"""

import ml_collections

from experiments.configs import default

CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
# The target pair of each variant: Geron's (sandal against shirt), and ':hard', the pair Fashion-MNIST
# classifiers confuse most (T-shirt/top against shirt).
TARGETS = {'': ('Sandal', 'Shirt'), 'hard': ('T-shirt/top', 'Shirt')}
SEEDS = '0,1,2'
ENCODER = 'encoder/.*'


def _variants(target: tuple) -> dict:
  """The source runs on the other 8 classes (and on the target's unlabelled images), then the 4 methods."""
  source = ','.join(c for c in CLASSES if c not in target)
  return {
      'source_8': f'"data.classes={source}" data.train_split=train data.batch_size=128 train.steps=1000',
      'autoencoder': 'task.name=reconstruction model.name=conv_autoencoder data.train_split=train '
                     'data.batch_size=128 train.steps=1000',
      'scratch': '',
      'frozen': f'init.checkpoint=run:source_8 init.load={ENCODER} optimizer.param_groups={ENCODER}=frozen',
      'finetune': f'init.checkpoint=run:source_8 init.load={ENCODER} optimizer.param_groups={ENCODER}=0.1',
      'pretrained_ae': f'init.checkpoint=run:autoencoder init.load={ENCODER} '
                       f'optimizer.param_groups={ENCODER}=0.1',
  }


def get_config(arg: str | None = None):
  if (arg or '') not in TARGETS:
    raise ValueError(f"unknown variant {arg!r} of transfer; valid choices: '' (sandal against shirt), 'hard'")
  target = TARGETS[arg or '']
  c = default.get_config()
  c.model = ml_collections.ConfigDict({'name': 'encoder_classifier', 'widths': (32, 64), 'code': 64})
  c.data.classes = ','.join(target)
  c.data.normalize = 'unit'
  c.data.augment = ''
  c.data.batch_size = 32
  c.data.train_split = 'train[:1000]'
  c.data.train_eval_examples = 0
  c.data.test_curve_examples = 0
  c.optimizer.name = 'adam'
  c.optimizer.lr = 1e-3
  c.optimizer.weight_decay = 0.0
  c.optimizer.schedule.name = 'cosine'
  default.train_for(c, steps=300, log_every=20, eval_every=100)
  c.experiment.variants = '; '.join(f'{name}: {fields}'.strip() for name, fields in _variants(target).items())
  c.experiment.sweep = f'seed={SEEDS}'
  c.experiment.columns = 'data.classes,data.train_split,init.checkpoint,optimizer.param_groups'
  c.experiment.report = 'curves'
  return c
