"""Train-step and eval-step throughput (img/s) of the CIFAR ResNets on this machine.

  python -m benchmarks.train_step [--depths=20,56] [--batch=128] [--image=28,28,1]

Times the real jitted steps of the training loop (device-side augmentation, loss, optax chain,
gradient diagnostics; eval in BatchNorm inference mode) on random data, after compilation.
"""

import argparse

import jax
import numpy as np

from benchmarks.timing import images_per_second
from experiments.configs import default
from jaxnets import models, optim, tasks
from jaxnets.data.preprocess import Preprocess
from jaxnets.train import diagnostics, sharding
from jaxnets.train.state import init_state
from jaxnets.train.step import jit_steps


def measure(depth: int, batch: int, eval_batch: int, image: tuple, steps: int) -> tuple[float, float]:
  """(train img/s, eval img/s) for CIFAR ResNet-`depth`, through the loop's own jitted steps."""
  config = default.get_config()
  model = models.create('cifar_resnet', depth=depth, num_classes=10)
  tx, schedule = optim.create(config.optimizer, 1000)
  rng = np.random.default_rng(0)
  channels = image[-1]
  preprocess = Preprocess(np.full(channels, 128.0, np.float32), np.full(channels, 64.0, np.float32),
                          ('crop', 'flip'))
  sample = np.zeros((1,) + image, np.float32)
  mesh = sharding.data_mesh()
  state = jax.jit(lambda: init_state(model, tx, 0, sample), out_shardings=sharding.replicated(mesh))()
  train_step, eval_step = jit_steps(model, tasks.create('classification'), tx, schedule, config.optimizer,
                                    preprocess, diagnostics.layer_order(model, sample), mesh)
  x, y = sharding.put_batch(mesh, rng.integers(0, 256, (batch,) + image, dtype=np.uint8),
                            rng.integers(0, 10, batch).astype(np.int32))
  ex, ey, mask = sharding.put_batch(
      mesh, rng.integers(0, 256, (eval_batch,) + image, dtype=np.uint8),
      rng.integers(0, 10, eval_batch).astype(np.int32), np.ones(eval_batch, np.float32))
  holder = {'state': state}

  def train_call(_):
    holder['state'], metrics = train_step(holder['state'], x, y)  # The state is donated: feed it back.
    return metrics

  train = images_per_second(train_call, batch, steps)
  evaluation = images_per_second(lambda _: eval_step(holder['state'], ex, ey, mask), eval_batch,
                                 max(1, steps // 4))
  return train, evaluation


def main():
  """Print train and eval img/s for each depth."""
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--depths', default='20,56')
  parser.add_argument('--batch', type=int, default=128)
  parser.add_argument('--eval_batch', type=int, default=1000)
  parser.add_argument('--image', default='28,28,1')
  parser.add_argument('--steps', type=int, default=10)
  args = parser.parse_args()
  image = tuple(int(v) for v in args.image.split(','))
  print(f'{jax.device_count()} x {jax.devices()[0].platform}; image {image}; train batch {args.batch}, '
        f'eval batch {args.eval_batch}; {args.steps} timed train steps after compilation')
  for depth in args.depths.split(','):
    train, evaluation = measure(int(depth), args.batch, args.eval_batch, image, args.steps)
    print(f'ResNet-{depth:>4}: train {train:7.1f} img/s   eval {evaluation:7.1f} img/s')


if __name__ == '__main__':
  main()
