"""Input-side throughput on this host in images/s, measured on the training loop's own code path.

  python -m benchmarks.input_pipeline

Host side: batch indices from (seed, step), gathering from the in-memory split, sharding.put_batch.
Device side: the jitted Preprocess.train (normalize, pad-4 random crop, random flip). Compare with
benchmarks/train_step.py: the input side must run far faster than the train step it feeds.
"""

import jax
import numpy as np

from benchmarks.timing import images_per_second
from jaxnets import data
from jaxnets.data import augment, batching
from jaxnets.data.preprocess import Preprocess
from jaxnets.train import sharding

BATCH = 128
STEPS = 300


def main():
  """Print the host-side and device-side input throughput."""
  train = data.load('fashion_mnist', 'train')
  n = data.num_examples(train)
  mesh = sharding.data_mesh()
  indices = lambda step: batching.train_indices(n, BATCH, seed=0, step=step)
  gather = lambda step: batching.gather(train, indices(step))

  print(f'host: Fashion-MNIST train ({n} x 28x28x1 uint8 in memory), batch {BATCH}, '
        f'{jax.device_count()} x {jax.devices()[0].platform}')
  print(f'  train_indices              {images_per_second(indices, BATCH, STEPS):12,.0f} img/s')
  print(f'  + gather images, labels    {images_per_second(gather, BATCH, STEPS):12,.0f} img/s')
  put = images_per_second(lambda s: sharding.put_batch(mesh, gather(s)), BATCH, STEPS)
  print(f'  + sharding.put_batch       {put:12,.0f} img/s')

  print('device: jitted Preprocess.train (normalize, random crop pad 4, random flip), batch on device:')
  key = jax.random.key(0)
  for label, images in (('28x28x1 (Fashion-MNIST)', train['image'][:BATCH]),
                        ('32x32x3 (CIFAR-shaped)',
                         np.random.default_rng(0).integers(0, 256, (BATCH, 32, 32, 3), np.uint8))):
    preprocess = Preprocess.from_config(_augment_config(), augment.channel_stats(images))
    step_fn = jax.jit(lambda s, x, p=preprocess: p.train(jax.random.fold_in(key, s), x))
    batch = sharding.put_batch(mesh, {'image': images})
    print(f'  {label:<25}  {images_per_second(lambda s: step_fn(s, batch), BATCH, STEPS):12,.0f} img/s')


def _augment_config():
  """The training data config of the default experiment."""
  from experiments.configs import default  # noqa: PLC0415
  return default.get_config().data  # augment='crop,flip', crop_padding=4: the training default.


if __name__ == '__main__':
  main()
