"""Tiny but complete experiment configs for tests: a depth-8 ResNet on mock CIFAR-10, a small U-Net on
mock-data scenes, a small CenterNet on the same scenes; a few steps each.

Also runnable as a script, `python -m tests.tiny WORKDIR [TASK] [--distributed --coordinator_address=A
--num_processes=N --process_id=I]` (the flags launch/multihost.py appends; TASK: classification,
segmentation or detection), so sharding and multi-host tests can run the real training loop in fresh
processes with their own XLA device counts.
"""

import json
import sys

import ml_collections
import tensorflow_datasets as tfds

from experiments.configs import default
from jaxnets import xla_env

MOCK_EXAMPLES = 64


def tiny_config(steps: int = 4, **data_overrides) -> ml_collections.ConfigDict:
  """The default config shrunk to seconds: ResNet-8, batch 16, `steps` steps; data fields overridable."""
  c = default.get_config()
  c.model.depth = 8
  c.data.name = 'cifar10'
  c.data.batch_size = 16
  c.data.eval_batch_size = 16
  c.data.train_eval_examples = 32
  c.data.test_curve_examples = 16
  c.data.update(data_overrides)
  c.optimizer.schedule.warmup_steps = 0
  c.train.steps = steps
  c.train.log_every = 1
  c.train.eval_every = 2
  c.train.checkpoint_every = 2
  return c


def tiny_dense_config(task: str, steps: int = 4) -> ml_collections.ConfigDict:
  """tiny_config for 'segmentation' (a U-Net of depth 2, width 4) or 'detection' (a CenterNet on a
  ResNet-8 of widths 4-16) on the Fashion-MNIST scenes, composed from mock Fashion-MNIST items."""
  c = tiny_config(steps, name='fashion_scenes', train_split='train[:64]', test_split='test[:32]', augment='flip')
  c.task = ml_collections.ConfigDict({'name': task})
  c.model = ml_collections.ConfigDict(
      {'name': 'unet', 'depth': 2, 'width': 4} if task == 'segmentation' else
      {'name': 'centernet', 'backbone_depth': 8, 'backbone_widths': (4, 8, 16), 'head_width': 8})
  c.optimizer.name = 'adam'
  c.optimizer.lr = 1e-3
  return c


def mock_data():
  """Deterministic fake TFDS data (the same in every process), no files or network needed."""
  return tfds.testing.mock_data(num_examples=MOCK_EXAMPLES)


def main(argv):
  """Train the tiny config in argv[1] (optionally as one process of a multi-host job); print the summary."""
  xla_env.configure()  # Before JAX starts: forced host devices need their threads.
  if '--distributed' in argv:
    import jax  # noqa: PLC0415
    flags = dict(a[2:].split('=', 1) for a in argv if a.startswith('--') and '=' in a)
    jax.distributed.initialize(flags['coordinator_address'], int(flags['num_processes']),
                               int(flags['process_id']))
  from jaxnets.train.loop import train_and_evaluate  # noqa: PLC0415
  task = argv[2] if len(argv) > 2 and not argv[2].startswith('--') else 'classification'
  config = tiny_config() if task == 'classification' else tiny_dense_config(task)
  with mock_data():
    summary = train_and_evaluate(config, argv[1])
  print(json.dumps(summary))


if __name__ == '__main__':
  main(sys.argv)
