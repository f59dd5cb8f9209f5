"""DCGAN (Radford et al. 2016) on Fashion-MNIST: Adam at 2e-4 with b1 = 0.5 for both networks, batch 128, the
discriminator then the generator stepped on every batch, the non-saturating generator loss; 6,000 steps
(12.8 epochs).

Every evaluation scores generated images with jaxnets' own Fashion-MNIST classifier (trained once into the
data_dir by the first run that needs it; `python -m jaxnets.generative.feature_net` does it alone): the
Frechet distance to the real test images' features (2,000 samples during training, 10,000 at the end),
an Inception-score-style score (at most 10) and the share of the most generated class. gan.png shows
samples at several points of training, the two losses, the scores over training and the final class
histogram.
"""

import ml_collections

from experiments.configs import default


def get_config(arg: str | None = None):
  default.no_variants(arg, 'gan')
  c = default.get_config()
  c.task = ml_collections.ConfigDict({'name': 'gan'})
  # Width 32, half DCGAN's 64 channels: 4.6x the images per second on 2 CPU cores (1,346 against 295 at batch
  # 128), which buys the steps that make recognisable clothes within the 15-minute budget.
  c.model = ml_collections.ConfigDict({'name': 'dcgan', 'latent': 100, 'width': 32})
  c.data.normalize = 'unit'
  c.data.augment = ''
  c.data.batch_size = 128
  c.data.train_eval_examples = 2000
  c.data.test_curve_examples = 2000
  c.optimizer.name = 'adam'
  c.optimizer.lr = 2e-4
  c.optimizer.b1 = 0.5
  c.optimizer.weight_decay = 0.0
  c.optimizer.schedule.name = 'constant'
  default.train_for(c, steps=6000, log_every=50, eval_every=500)
  c.experiment.report = 'gan'
  return c
