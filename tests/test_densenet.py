"""DenseNet tests: torchvision's parameter counts, the paper's Table 1 shapes, a hand-counted tiny net."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import models

# torchvision.models.densenet*(num_classes=1000): sum(p.numel() for p in model.parameters()).
TORCHVISION_COUNTS = {'densenet121': 7_978_856, 'densenet169': 14_149_480, 'densenet201': 20_013_928,
                      'densenet161': 28_681_000}
TORCHVISION_CONFIGS = {'densenet121': ((6, 12, 24, 16), 32, 64), 'densenet169': ((6, 12, 32, 32), 32, 64),
                       'densenet201': ((6, 12, 48, 32), 32, 64), 'densenet161': ((6, 12, 36, 24), 48, 96)}


def _variables(model, shape):
  return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape), train=False))


def _params(model, shape):
  return sum(x.size for x in jax.tree.leaves(_variables(model, shape)['params']))


def _hand_count(block_config, growth_rate, num_init_features, bn_size=4, num_classes=1000, in_channels=3):
  """Bias-free convs, BN scale+shift (2 per channel), a dense head with bias, following the layer recipe."""
  c = num_init_features
  total = 7 * 7 * in_channels * c + 2 * c
  for i, num_layers in enumerate(block_config):
    for _ in range(num_layers):
      width = bn_size * growth_rate
      total += 2 * c + c * width + 2 * width + 9 * width * growth_rate
      c += growth_rate
    if i < len(block_config) - 1:
      total += 2 * c + c * (c // 2)
      c //= 2
  return total + 2 * c + c * num_classes + num_classes


@pytest.mark.parametrize('name', sorted(TORCHVISION_COUNTS))
def test_torchvision_parameter_counts(name):
  assert _params(models.create(name), (1, 224, 224, 3)) == TORCHVISION_COUNTS[name]


@pytest.mark.parametrize('name', sorted(TORCHVISION_COUNTS))
def test_hand_count_agrees_with_torchvision(name):
  assert _hand_count(*TORCHVISION_CONFIGS[name]) == TORCHVISION_COUNTS[name]


def test_tiny_config_by_hand():
  model = models.create('densenet', block_config=(2, 1), growth_rate=4, num_init_features=8, bn_size=2,
                        num_classes=5)
  stem = 7 * 7 * 3 * 8 + 2 * 8
  layer_from_8 = 2 * 8 + 8 * 8 + 2 * 8 + 9 * 8 * 4  # BN(8), 1x1 8->8, BN(8), 3x3 8->4.
  layer_from_12 = 2 * 12 + 12 * 8 + 2 * 8 + 9 * 8 * 4
  transition = 2 * 16 + 16 * 8  # BN(16), 1x1 16->8.
  final_norm, head = 2 * 12, 12 * 5 + 5
  expected = stem + layer_from_8 + layer_from_12 + transition + layer_from_8 + final_norm + head
  assert expected == 2633
  assert _params(model, (1, 32, 32, 3)) == expected
  variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False)
  logits, state = model.apply(variables, jnp.ones((3, 32, 32, 3)), train=True, mutable=['batch_stats'])
  assert logits.shape == (3, 5) and np.all(np.isfinite(logits))
  assert set(state['batch_stats']) == {'stem', 'denseblock1', 'transition1', 'denseblock2', 'final_norm'}


def test_table1_output_sizes_and_channels():
  # Huang et al. (2017), Table 1 (DenseNet-121 at 224x224): 56x56 after the pooled stem, then 28, 14, 7;
  # channels 64 + 6 * 32 = 256 -> 128, 128 + 12 * 32 = 512 -> 256, 256 + 24 * 32 = 1024 -> 512, 512 + 16 * 32.
  model = models.create('densenet121')
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 224, 224, 3)), train=False,
                                                capture_intermediates=True))
  shape = lambda name: variables['intermediates'][name]['__call__'][0].shape[1:]
  assert shape('stem') == (112, 112, 64)
  assert [shape(f'denseblock{i}') for i in range(1, 5)] == [(56, 56, 256), (28, 28, 512), (14, 14, 1024),
                                                             (7, 7, 1024)]
  assert [shape(f'transition{i}') for i in range(1, 4)] == [(28, 28, 128), (14, 14, 256), (7, 7, 512)]
  assert len(variables['params']['denseblock3']) == 24
  assert set(variables['params']['denseblock1']['layer1']['conv2']) == {'bn', 'conv'}


def test_output_shape_at_small_input():
  model = models.create('densenet121', num_classes=10)
  variables = _variables(model, (1, 64, 64, 3))
  logits = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, jnp.zeros((2, 64, 64, 3)))
  assert logits.shape == (2, 10)


def test_dropout_after_each_layer_in_training_only():
  model = models.create('densenet', block_config=(1,), growth_rate=4, num_init_features=8, drop_rate=0.5,
                        num_classes=3)
  x = jax.random.normal(jax.random.key(1), (2, 16, 16, 3))
  variables = model.init(jax.random.key(0), x, train=False)
  train = lambda key: model.apply(variables, x, train=True, mutable=['batch_stats'], rngs={'dropout': key})[0]
  assert not np.allclose(train(jax.random.key(2)), train(jax.random.key(3)))
  evaluate = lambda: model.apply(variables, x, train=False)
  np.testing.assert_array_equal(evaluate(), evaluate())


def test_named_depths_fix_their_block_config():
  assert {'densenet', 'densenet121', 'densenet169'} <= set(models.names())
  with pytest.raises(ValueError, match=r"'densenet121' fixes block_config"):
    models.create('densenet121', block_config=(1, 1))
