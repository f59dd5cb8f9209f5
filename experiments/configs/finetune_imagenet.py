"""An ImageNet-pretrained ResNet-50 (torchvision's weights) fine-tuned on CIFAR-10, for users with network access.

    python -m experiments.main --config=configs/finetune_imagenet.py:/path/to/resnet50-11ad3fa6.pth

The argument is torchvision's ResNet-50 state dict (`.pth`, or the same tensors as `.safetensors`), e.g.
https://download.pytorch.org/models/resnet50-11ad3fa6.pth (IMAGENET1K_V2). Every layer but the head is
loaded (init.skip='head/.*': a new 10-class head); the model is built as torchvision's (version 'v1.5',
stride on the 3x3). The backbone trains at a tenth of the head's learning rate (SGD with momentum, cosine
decay), on CIFAR-10 at its own 32x32 (the nets' 32x downsampling leaves a 1x1 map: fast, not the best
accuracy) normalized by CIFAR-10's channel statistics, which lie close to ImageNet's.
"""

import ml_collections

from experiments.configs import default

WEIGHTS_URL = 'https://download.pytorch.org/models/resnet50-11ad3fa6.pth'


def get_config(arg: str | None = None):
  if not arg:
    raise ValueError('configs/finetune_imagenet.py needs torchvision\'s ResNet-50 weights: '
                     f'--config=configs/finetune_imagenet.py:/path/to/resnet50.pth (from {WEIGHTS_URL})')
  c = default.get_config()
  c.model = ml_collections.ConfigDict({'name': 'resnet50', 'version': 'v1.5'})
  c.data.name = 'cifar10'
  c.data.augment = 'crop,flip'
  c.data.batch_size = 128
  c.init.checkpoint = arg
  c.init.skip = 'head/.*'
  c.optimizer.name = 'momentum'
  c.optimizer.lr = 0.01
  c.optimizer.weight_decay = 1e-4
  c.optimizer.param_groups = '(?!head/).*=0.1'  # The loaded backbone at a tenth of the new head's rate.
  c.optimizer.schedule.name = 'cosine'
  default.train_for(c, steps=3900, log_every=100, eval_every=1000)  # 10 epochs of 50,000 images.
  return c
