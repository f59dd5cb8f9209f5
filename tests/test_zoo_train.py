"""Every registered model builds and takes one real training step (loss finite, parameters updated).

Small inputs keep this cheap: 32x32 (64x64 where a net's strides need more, 32x32x1 for LeNet), 10
classes; the full-size counts are in the family tests.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import models, optim, tasks
from jaxnets.data.preprocess import Preprocess
from jaxnets.train import diagnostics
from jaxnets.train.state import init_state
from jaxnets.train.step import make_train_step
from tests.tiny import tiny_config

# Nets whose stride-32 stems and 3x3/2 pools need more than 32x32; LeNet's single channel.
INPUT_SHAPES = {'alexnet': (64, 64, 3), 'lenet5': (32, 32, 1), 'lenet5_modern': (32, 32, 1)}


@pytest.mark.parametrize('name', models.names())
def test_every_model_takes_a_training_step(name):
  model = models.create(name, num_classes=10)
  shape = INPUT_SHAPES.get(name, (32, 32, 3))
  images = jax.random.randint(jax.random.key(0), (2,) + shape, 0, 256).astype(jnp.uint8)
  labels = jnp.array([3, 7])
  cfg = tiny_config().optimizer
  tx, schedule = optim.create(cfg, 10)
  sample = np.zeros((1,) + shape, np.float32)
  state = init_state(model, tx, 0, sample)
  order = diagnostics.layer_order(model, sample)
  preprocess = Preprocess(np.full(shape[-1], 127.0, np.float32), np.full(shape[-1], 64.0, np.float32))
  step = jax.jit(make_train_step(model, tasks.create('classification'), tx, schedule, cfg, preprocess,
                                 order, aux_loss_weight=0.3))
  new_state, metrics = step(state, images, labels)
  assert np.isfinite(float(metrics['total_loss'])) and float(metrics['update_norm']) > 0
  assert int(new_state.step) == 1
