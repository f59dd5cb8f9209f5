"""He et al. (2016)'s ImageNet comparison (Table 2, Fig. 4): plain-18/34 against ResNet-18/34.

Identity shortcuts with zero-padding (option A), so plain and residual nets have the same parameters.
SGD momentum 0.9, batch 256, lr 0.1 divided by 10 twice, weight decay 1e-4, BN, no dropout; random
crops and flips. The paper's top-1 errors (10-crop): plain-18 27.94, plain-34 28.54, ResNet-18
27.88, ResNet-34 25.03. Needs TFDS's imagenet2012 prepared (manual download). Default: all four
nets; variants ':plain18', ':plain34', ':resnet18', ':resnet34' run one.

The images are 224x224 centre crops of the 256-side resize, written once to memory-mapped .npy files
under the TFDS data_dir (193 GB for the training split; see jaxnets/data/source.py), not held in RAM.
"""

import ml_collections

from experiments.configs import default

NETS = {'plain18': (18, False), 'plain34': (34, False), 'resnet18': (18, True), 'resnet34': (34, True)}


def get_config(arg: str | None = None):
  if (arg or '') not in ('', *NETS):
    raise ValueError(f"unknown variant {arg!r} of imagenet_resnet; valid choices: '' (all four), "
                     f"{', '.join(map(repr, NETS))}")
  c = default.get_config()
  c.model = ml_collections.ConfigDict({'name': 'resnet', 'shortcut': 'A'})
  c.data.name = 'imagenet2012'
  c.data.augment = 'crop,flip'
  c.data.crop_padding = 16
  c.data.batch_size = 256
  c.data.eval_batch_size = 500
  c.data.train_eval_examples = 10000
  c.data.test_curve_examples = 10000
  c.optimizer.name = 'momentum'
  c.optimizer.lr = 0.1
  c.optimizer.weight_decay = 1e-4
  c.optimizer.schedule.name = 'step'
  c.optimizer.schedule.boundaries = (1 / 3, 2 / 3)
  default.train_for(c, steps=450_000, log_every=100, eval_every=5000)  # 90 epochs of 1.28M images.
  if arg:
    c.model.depth, c.model.residual = NETS[arg]
  else:
    c.experiment.sweep = 'model.residual=False,True model.depth=18,34'
    c.experiment.columns = 'model.depth,model.residual'
    c.experiment.report = 'degradation'
  return c
