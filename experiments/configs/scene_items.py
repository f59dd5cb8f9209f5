"""The upper reference for the scene studies: how well a classifier tells the scenes' items apart.

Every item of the Fashion-MNIST scenes (configs/segmentation.py, configs/detection.py), cut out by its
box and resized to 28x28, is one example (about 50,000 train items from the train scenes, 4,900 test
items from the test scenes). A segmenter or detector must also classify each item at the scene's scale,
so this classifier's accuracy bounds theirs: with perfect shapes and this per-item accuracy a, a class's
IoU is about a / (2 - a) when the mistakes spread evenly over the other classes (each wrong item is a
false positive of one class and a false negative of another), and AP@.5 about a.
"""

import ml_collections

from experiments.configs import default


def get_config(arg: str | None = None):
  default.no_variants(arg, 'scene_items')
  c = default.get_config()
  c.model = ml_collections.ConfigDict({
      'name': 'simple_cnn', 'widths': (32, 64), 'convs_per_stage': 2, 'hidden': 256, 'batch_norm': True,
      'dropout': 0.3})
  c.data.name = 'fashion_scene_items'
  c.data.augment = 'flip'
  c.data.batch_size = 64
  c.data.train_eval_examples = 5000
  c.data.test_curve_examples = 0  # All 4,900 test items.
  c.optimizer.name = 'adam'
  c.optimizer.lr = 1e-3
  c.optimizer.weight_decay = 0.0
  c.optimizer.schedule.name = 'cosine'
  c.optimizer.schedule.warmup_steps = 50
  default.train_for(c, steps=2000, log_every=50, eval_every=500)
  return c
