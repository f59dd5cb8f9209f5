"""Train-step and eval-step throughput (img/s) of the CIFAR ResNets on this machine.

  python -m benchmarks.train_step [--depths=20,56] [--batch=128] [--dataset=fashion_mnist|cifar10] [--compile_only]

Times the real jitted steps of the training loop, built by the loop's own builder (device-side
augmentation, loss, optax chain, gradient diagnostics; eval in BatchNorm inference mode) on random
data of the dataset's shapes, after compilation.
"""

import argparse
import time

from jaxnets import xla_env

xla_env.configure()  # jaxnets' XLA settings, as every entry point has them (before JAX starts).

import jax  # noqa: E402
import ml_collections
import numpy as np

from benchmarks.timing import images_per_second
from experiments.configs import default
from jaxnets.train import sharding
from jaxnets.train.builder import build

# Stand-in channel statistics (mean, std) of the uniformly random uint8 images.
IMAGE_MEAN, IMAGE_STD = 128.0, 64.0


def random_batch(rng, spec, size: int) -> dict:
  """`size` random uint8 images of the dataset's shape and random labels of its 10 classes."""
  return {'image': rng.integers(0, 256, (size,) + spec.image_shape, dtype=np.uint8),
          'label': rng.integers(0, spec.num_classes('label'), size).astype(np.int32)}


class StepBench:
  """A config's jitted train and eval steps as the loop builds them, a live state and fixed random batches."""

  def __init__(self, config, batch: int, eval_batch: int):
    setup = build(config)
    channels = setup.spec.image_shape[-1]
    preprocess = setup.preprocess((np.full(channels, IMAGE_MEAN, np.float32), np.full(channels, IMAGE_STD, np.float32)))
    mesh = sharding.data_mesh()
    self.train_step, self.eval_step = setup.jit_steps(preprocess, mesh)
    rng = np.random.default_rng(0)
    self.batch, self.eval_batch = batch, eval_batch
    self.train_batch = sharding.put_batch(mesh, random_batch(rng, setup.spec, batch))
    self.eval_batch_and_mask = sharding.put_batch(mesh, (random_batch(rng, setup.spec, eval_batch),
                                                         np.ones(eval_batch, np.float32)))
    self.state = setup.init_state(mesh)

  def compile_train(self) -> tuple[jax.stages.Compiled, float]:
    """The train step compiled ahead of time, and the seconds its tracing, lowering and compiling took."""
    start = time.perf_counter()
    compiled = self.train_step.lower(self.state, self.train_batch).compile()
    return compiled, time.perf_counter() - start

  def train_images_per_second(self, steps: int, train_step=None) -> float:
    """Training img/s over `steps` steps of `train_step` (default: the jitted step) after a warm-up step."""
    step = train_step or self.train_step

    def call(_):
      self.state, metrics = step(self.state, self.train_batch)  # The state is donated: feed it back.
      return metrics

    return images_per_second(call, self.batch, steps)

  def eval_images_per_second(self, calls: int) -> float:
    """Eval img/s over `calls` eval steps after a warm-up (compiling) one."""
    return images_per_second(lambda _: self.eval_step(self.state, *self.eval_batch_and_mask), self.eval_batch, calls)


def resnet_config(depth: int, dataset: str):
  """The default recipe (momentum SGD, weight decay, crop + flip) for CIFAR ResNet-`depth` on `dataset`'s shapes."""
  config = default.get_config()
  config.model = ml_collections.ConfigDict({'name': 'cifar_resnet', 'depth': depth})
  config.data.name = dataset
  config.train.steps = 1000
  return config


def measure(depth: int, batch: int, eval_batch: int, dataset: str, steps: int) -> tuple[float, float]:
  """(train img/s, eval img/s) for CIFAR ResNet-`depth`, through the loop's own jitted steps."""
  bench = StepBench(resnet_config(depth, dataset), batch, eval_batch)
  return bench.train_images_per_second(steps), bench.eval_images_per_second(max(1, steps // 4))


def main():
  """Print train and eval img/s for each depth."""
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--depths', default='20,56')
  parser.add_argument('--batch', type=int, default=128)
  parser.add_argument('--eval_batch', type=int, default=1000)
  parser.add_argument('--dataset', default='fashion_mnist', help='whose image shape: fashion_mnist, cifar10...')
  parser.add_argument('--steps', type=int, default=10)
  parser.add_argument('--compile_only', action='store_true',
                      help='print the seconds to trace, lower and compile the train step (no cache), not img/s')
  args = parser.parse_args()
  if args.compile_only:
    jax.config.update('jax_enable_compilation_cache', False)  # A cold compile.
    for depth in args.depths.split(','):
      _, seconds = StepBench(resnet_config(int(depth), args.dataset), args.batch, args.eval_batch).compile_train()
      print(f'ResNet-{depth:>4}: train step compiled in {seconds:.1f} s')
    return
  print(f'{jax.device_count()} x {jax.devices()[0].platform}; {args.dataset} images; train batch {args.batch}, '
        f'eval batch {args.eval_batch}; {args.steps} timed train steps after compilation')
  for depth in args.depths.split(','):
    train, evaluation = measure(int(depth), args.batch, args.eval_batch, args.dataset, args.steps)
    print(f'ResNet-{depth:>4}: train {train:7.1f} img/s   eval {evaluation:7.1f} img/s')


if __name__ == '__main__':
  main()
