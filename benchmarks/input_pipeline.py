"""Input-side throughput on this host in images/s: batch gathering and transfer, then on-device augmentation.

Run from the repository root: python -m benchmarks.input_pipeline
"""

import time

import jax
import numpy as np

from jaxnets import data
from jaxnets.data import augment, batching

BATCH = 128
STEPS = 300


def images_per_second(fn, steps: int = STEPS) -> float:
  """Calls fn(step) `steps` times after one warm-up call; fn returns something to block on."""
  jax.block_until_ready(fn(0))
  start = time.perf_counter()
  for step in range(1, steps + 1):
    out = fn(step)
  jax.block_until_ready(out)
  return BATCH * steps / (time.perf_counter() - start)


@jax.jit
def augment_batch(key, step, images, mean, std):
  """The training augmentation: normalize, pad-4 random crop, random horizontal flip."""
  crop_key, flip_key = jax.random.split(jax.random.fold_in(key, step))
  return augment.random_flip(flip_key, augment.random_crop(crop_key, augment.normalize(images, mean, std)))


def main():
  train = data.load('fashion_mnist', 'train')
  n = len(train.labels)
  indices = lambda step: batching.train_indices(n, BATCH, seed=0, step=step)

  def gather(step):
    batch = indices(step)
    return train.images[batch], train.labels[batch]

  print(f'host, Fashion-MNIST train ({n} x 28x28x1 uint8 in memory), batch {BATCH}, {jax.devices()[0]}:')
  print(f'  train_indices             {images_per_second(indices):12,.0f} img/s')
  print(f'  + gather images, labels   {images_per_second(gather):12,.0f} img/s')
  print(f'  + jax.device_put          {images_per_second(lambda s: jax.device_put(gather(s))):12,.0f} img/s')

  key = jax.random.key(0)
  print('device, jitted normalize + random_crop(pad=4) + random_flip, uint8 batch already on device:')
  mean, std = augment.channel_stats(train.images)
  batch = jax.device_put(train.images[:BATCH])
  rate = images_per_second(lambda s: augment_batch(key, s, batch, mean, std))
  print(f'  {BATCH}x28x28x1 (Fashion-MNIST)  {rate:12,.0f} img/s')
  batch = jax.device_put(np.random.default_rng(0).integers(0, 256, (BATCH, 32, 32, 3), np.uint8))
  mean, std = augment.channel_stats(np.asarray(batch))
  rate = images_per_second(lambda s: augment_batch(key, s, batch, mean, std))
  print(f'  {BATCH}x32x32x3 (CIFAR-shaped)   {rate:12,.0f} img/s')


if __name__ == '__main__':
  main()
