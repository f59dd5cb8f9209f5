"""Train-step and eval-step throughput (img/s) of the CIFAR ResNets on this machine.

  python -m benchmarks.train_step [--depths=20,56] [--batch=128] [--dataset=fashion_mnist|cifar10]

Times the real jitted steps of the training loop, built by the loop's own builder (device-side
augmentation, loss, optax chain, gradient diagnostics; eval in BatchNorm inference mode) on random
data of the dataset's shapes, after compilation.
"""

import argparse

import jax
import ml_collections
import numpy as np

from benchmarks.timing import images_per_second
from experiments.configs import default
from jaxnets.train import sharding
from jaxnets.train.builder import build


def random_batch(rng, spec, size: int) -> dict:
  """`size` random uint8 images of the dataset's shape and random labels of its 10 classes."""
  return {'image': rng.integers(0, 256, (size,) + spec.image_shape, dtype=np.uint8),
          'label': rng.integers(0, spec.num_classes('label'), size).astype(np.int32)}


def measure(depth: int, batch: int, eval_batch: int, dataset: str, steps: int) -> tuple[float, float]:
  """(train img/s, eval img/s) for CIFAR ResNet-`depth`, through the loop's own jitted steps."""
  config = default.get_config()  # Momentum SGD, weight decay, crop + flip: the default recipe.
  config.model = ml_collections.ConfigDict({'name': 'cifar_resnet', 'depth': depth})
  config.data.name = dataset
  config.train.steps = 1000
  setup = build(config)
  channels = setup.spec.image_shape[-1]
  preprocess = setup.preprocess((np.full(channels, 128.0, np.float32), np.full(channels, 64.0, np.float32)))
  mesh = sharding.data_mesh()
  train_step, eval_step = setup.jit_steps(preprocess, mesh)
  rng = np.random.default_rng(0)
  train_batch = sharding.put_batch(mesh, random_batch(rng, setup.spec, batch))
  eval_batch_and_mask = sharding.put_batch(mesh, (random_batch(rng, setup.spec, eval_batch),
                                                  np.ones(eval_batch, np.float32)))
  holder = {'state': setup.init_state(mesh)}

  def train_call(_):
    holder['state'], metrics = train_step(holder['state'], train_batch)  # The state is donated: feed it back.
    return metrics

  train = images_per_second(train_call, batch, steps)
  evaluation = images_per_second(lambda _: eval_step(holder['state'], *eval_batch_and_mask), eval_batch,
                                 max(1, steps // 4))
  return train, evaluation


def main():
  """Print train and eval img/s for each depth."""
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--depths', default='20,56')
  parser.add_argument('--batch', type=int, default=128)
  parser.add_argument('--eval_batch', type=int, default=1000)
  parser.add_argument('--dataset', default='fashion_mnist', help='whose image shape: fashion_mnist, cifar10...')
  parser.add_argument('--steps', type=int, default=10)
  args = parser.parse_args()
  print(f'{jax.device_count()} x {jax.devices()[0].platform}; {args.dataset} images; train batch {args.batch}, '
        f'eval batch {args.eval_batch}; {args.steps} timed train steps after compilation')
  for depth in args.depths.split(','):
    train, evaluation = measure(int(depth), args.batch, args.eval_batch, args.dataset, args.steps)
    print(f'ResNet-{depth:>4}: train {train:7.1f} img/s   eval {evaluation:7.1f} img/s')


if __name__ == '__main__':
  main()
