"""Gradient-flow diagnostics: per-group norms add up to the global norm; groups follow the network."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnets import models
from jaxnets.train import diagnostics


def _grads(model, x):
  variables = model.init(jax.random.key(0), x, train=False)
  loss = lambda p: jnp.sum(model.apply({**variables, 'params': p}, x, train=False) ** 2)
  return variables['params'], jax.grad(loss)(variables['params'])


def test_groups_follow_the_network_and_add_up_to_the_global_norm():
  model = models.create('cifar_resnet', depth=14)
  x = jax.random.normal(jax.random.key(1), (4, 16, 16, 1))
  params, grads = _grads(model, x)
  layers = diagnostics.layers(model, x)
  assert layers.order == ('stem', 'stage1_block0', 'stage1_block1', 'stage2_block0', 'stage2_block1',
                          'stage3_block0', 'stage3_block1', 'head')
  norms = jax.jit(lambda g, p: diagnostics.norms(g, p, g, layers))(grads, params)
  groups = ['stem', 'stage1', 'stage2', 'stage3', 'head']
  assert set(norms) == {f'grad_norm/{g}' for g in groups + ['global', 'first_layer']} | {
      'param_norm', 'update_norm'}
  np.testing.assert_allclose(sum(norms[f'grad_norm/{g}'] ** 2 for g in groups),
                             norms['grad_norm/global'] ** 2, rtol=1e-5)
  stage2 = [grads[k] for k in ('stage2_block0', 'stage2_block1')]
  np.testing.assert_allclose(norms['grad_norm/stage2'], optax.global_norm(stage2), rtol=1e-6)
  # The first layer is the stem's convolution kernel alone (not its BatchNorm parameters).
  np.testing.assert_allclose(norms['grad_norm/first_layer'],
                             np.linalg.norm(grads['stem']['conv']['kernel']), rtol=1e-6)


def test_mlp_layers_are_their_own_groups():
  model = models.create('mlp', widths=(8, 8, 8))
  x = jnp.ones((2, 4, 4, 1))
  params, grads = _grads(model, x)
  layers = diagnostics.layers(model, x)
  assert layers.order == ('layer0', 'layer1', 'layer2', 'head')
  norms = diagnostics.norms(grads, params, grads, layers)
  np.testing.assert_allclose(norms['grad_norm/first_layer'],
                             np.linalg.norm(grads['layer0']['kernel']), rtol=1e-6)


def test_first_layer_of_a_detector_is_its_backbones_stem():
  """The first kernel the model created, even nested and with names that sort after others."""
  model = models.create('centernet', num_classes=3, backbone_depth=8, backbone_widths=(4, 8, 16))
  layers = diagnostics.layers(model, jnp.zeros((1, 16, 16, 1)))
  assert layers.order[0] == 'backbone' and layers.first_kernel == ('backbone', 'stem', 'conv', 'kernel')
