"""Every registered image model builds a training step; one cheap member of each family takes a real one
(sequence models take theirs through the whole loop in tests/test_sequence_train.py).

Classifiers train on labels, segmentation models (U-Net, FCN) on masks, the detector on boxes, autoencoders and
the GAN on the images themselves.

The step is the loop's own (make_train_step: loss, gradients, optax update, diagnostics). For every
name it is traced abstractly (jax.eval_shape: the whole forward, backward and update are built, no XLA
compilation); the real step, with a finite loss and a non-zero update (or, for GRADIENT_OVERFLOWS, the
overflow measured there), runs for the names in REAL and, with `python3 -m pytest -m slow
tests/test_zoo_train.py`, for every name (deep nets take minutes of compilation each on a CPU). Small inputs: 32x32 (64x64 for AlexNet, 32x32x1 for LeNet), 10 classes.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import models, optim, tasks
from jaxnets.models import conv1d, recurrent, seq2seq
from jaxnets.data.preprocess import Preprocess
from jaxnets.train import diagnostics
from jaxnets.train.state import init_state
from jaxnets.train.step import make_train_step
from tests.tiny import tiny_config

INPUT_SHAPES = {'alexnet': (64, 64, 3), 'lenet5': (32, 32, 1), 'lenet5_modern': (32, 32, 1),
                'unet_paper': (188, 188, 1),  # The smallest tile the paper's unpadded U-Net takes.
                'dcgan': (28, 28, 1)}
# Models that are no classifiers, with the task they serve.
TASKS = {'unet': 'segmentation', 'unet_paper': 'segmentation', 'fcn32s': 'segmentation', 'fcn16s': 'segmentation',
         'fcn8s': 'segmentation', 'centernet': 'detection', 'dcgan': 'gan',
         **{name: 'reconstruction' for name in ('autoencoder', 'conv_autoencoder', 'vae', 'conv_vae')}}
TASK_ARGS = {'gan': {'dataset': 'fashion_mnist'}}
# Measured at init (one step, 2 images): the loss is finite (2.59) and the head's gradient norm 2.30, but
# the gradient grows layer by layer down the 1202-layer plain stack until it overflows float32 (inf in
# stage3, NaN below): BatchNorm's gradient explosion in deep nets without shortcuts (Yang et al. 2019).
# Its residual twin trains; He et al. (2016) never trained a plain net that deep.
GRADIENT_OVERFLOWS = {'cifar_plain1202'}
REAL = {'mlp', 'simple_cnn', 'lenet5', 'lenet5_modern', 'googlenet', 'resnet18', 'plain18', 'cifar_resnet20',
        'cifar_plain20', 'wrn40_1', 'highway_mlp', 'highway_cnn', 'unet', 'centernet'}


def _targets(task: str, shape: tuple) -> dict:
  """Targets of two examples for `task`: labels, masks, or one box each (none where the image is the target)."""
  if task in ('reconstruction', 'gan'):
    return {}
  if task == 'segmentation':
    return {'mask': jax.random.randint(jax.random.key(1), (2,) + shape[:2], 0, 10).astype(jnp.uint8)}
  if task == 'detection':
    return {'boxes': jnp.array([[[2.0, 3.0, 20.0, 15.0]], [[8.0, 8.0, 30.0, 31.0]]]),
            'classes': jnp.array([[3], [7]]), 'box_mask': jnp.ones((2, 1), bool)}
  return {'label': jnp.array([3, 7])}


def _step_and_batch(name):
  """(jitted train step, initial state, a batch of two images) for registry entry `name`."""
  task = TASKS.get(name, 'classification')
  model = models.create(name, **({} if task in ('reconstruction', 'gan') else {'num_classes': 10}))
  shape = INPUT_SHAPES.get(name, (32, 32, 3))
  images = jax.random.randint(jax.random.key(0), (2,) + shape, 0, 256).astype(jnp.uint8)
  cfg = tiny_config().optimizer
  tx, schedule = optim.create(cfg, 10)
  sample = np.zeros((1,) + shape, np.float32)
  preprocess = Preprocess(np.full(shape[-1], 127.0, np.float32), np.full(shape[-1], 64.0, np.float32))
  task_ = tasks.create(task, tuple('abcdefghij'), **TASK_ARGS.get(task, {}))
  step = jax.jit(make_train_step(model, task_, tx, schedule, cfg, preprocess, diagnostics.layers(model, sample),
                                 aux_loss_weight=0.3))
  return step, lambda: init_state(model, tx, 0, sample, task_.networks), {'image': images, **_targets(task, shape)}


SEQUENCE_MODELS = {*recurrent.ENTRIES, *conv1d.ENTRIES, *seq2seq.ENTRIES}
IMAGE_MODELS = [n for n in models.names() if n not in SEQUENCE_MODELS]


@pytest.mark.parametrize('name', IMAGE_MODELS)
def test_every_model_builds_a_training_step(name):
  step, init, batch = _step_and_batch(name)
  state = jax.eval_shape(init)
  new_state, metrics = jax.eval_shape(step, state, batch)
  assert jax.tree.structure(new_state.params) == jax.tree.structure(state.params)
  diagnostics_ = metrics['diagnostics']
  assert diagnostics_['total_loss'].shape == () and diagnostics_['grad_norm/global'].shape == ()


@pytest.mark.parametrize('name', [n if n in REAL else pytest.param(n, marks=pytest.mark.slow)
                                  for n in IMAGE_MODELS])
def test_model_takes_a_training_step(name):
  step, init, batch = _step_and_batch(name)
  new_state, metrics = step(init(), batch)
  norms = metrics['diagnostics']
  assert np.isfinite(float(norms['total_loss'])) and int(new_state.step) == 1
  if name in GRADIENT_OVERFLOWS:
    assert np.isfinite(float(norms['grad_norm/head'])) and not np.isfinite(float(norms['grad_norm/global']))
  else:
    assert float(norms['update_norm']) > 0
