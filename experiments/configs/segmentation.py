"""Semantic segmentation: U-Net (Ronneberger et al. 2015) vs FCN-32s vs FCN-8s (Long et al. 2015).

Default: Fashion-MNIST scenes (offline): 64x64 canvases holding 1-4 items; every pixel is labelled
background or its item's class (11 classes). Each net trains from scratch under one recipe (Adam,
cosine schedule, flips) and the same batches; results.md gives pixel accuracy, mIoU and per-class IoU on
the 2,000 test scenes, segmentation.png inputs, true and predicted masks side by side. The nets are
narrowed for a 2-core CPU (U-Net base width 16; FCNs on a VGG-16 of widths 16-128 with fc6/fc7 256 wide);
the papers' configurations are the registry's 'unet_paper' and 'fcn*' defaults.

Variant ':pets': the same comparison on TFDS oxford_iiit_pet (pet vs background at 128x128; needs
network access once to prepare).
"""

import ml_collections

from experiments.configs import default

FCN_WIDTHS = 'model.widths=(16,32,64,128,128) model.fc_width=256 model.batch_norm=True'


def get_config(arg: str | None = None):
  c = default.get_config()
  c.task = ml_collections.ConfigDict({'name': 'segmentation'})
  c.model = ml_collections.ConfigDict({'name': 'unet'})
  c.optimizer.name = 'adam'
  c.optimizer.lr = 3e-3
  c.optimizer.weight_decay = 0.0
  c.optimizer.schedule.name = 'cosine'
  c.data.augment = 'flip'
  c.experiment.columns = 'model.name'
  c.experiment.report = 'segmentation'
  if arg in (None, ''):
    c.data.name = 'fashion_scenes'
    c.data.batch_size = 32
    c.data.eval_batch_size = 200
    c.data.train_eval_examples = 1000
    c.data.test_curve_examples = 400
    c.optimizer.schedule.warmup_steps = 20
    default.train_for(c, steps=800, log_every=20, eval_every=100)
    c.experiment.variants = '; '.join([
        'unet: model.name=unet model.depth=4 model.width=16 model.batch_norm=True',
        f'fcn32s: model.name=fcn32s {FCN_WIDTHS}',
        f'fcn8s: model.name=fcn8s {FCN_WIDTHS}',
    ])
  elif arg == 'pets':
    c.data.name = 'oxford_iiit_pet'
    c.data.batch_size = 32
    c.data.eval_batch_size = 100
    c.data.train_eval_examples = 1000
    c.data.test_curve_examples = 500
    c.optimizer.schedule.warmup_steps = 200
    default.train_for(c, steps=10000, log_every=100, eval_every=1000)
    c.experiment.variants = '; '.join([
        'unet: model.name=unet model.depth=4 model.width=32 model.batch_norm=True',
        'fcn32s: model.name=fcn32s model.widths=(32,64,128,256,256) model.fc_width=1024 model.batch_norm=True',
        'fcn8s: model.name=fcn8s model.widths=(32,64,128,256,256) model.fc_width=1024 model.batch_norm=True',
    ])
  else:
    raise ValueError(f"unknown variant {arg!r} of segmentation; valid choices: '' (default), 'pets'")
  return c
