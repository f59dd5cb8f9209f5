"""Model tests: the ResNet paper's parameter counts, shortcut options, plain twins, the registry."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import models
from jaxnets.models.resnet import BasicBlock, BottleneckBlock, Shortcut
from jaxnets.registry import UnknownNameError


def _params(module, shape):
  variables = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros(shape), train=False))
  return sum(x.size for x in jax.tree.leaves(variables['params']))


# He et al. (2016), Table 6: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M, 19.4M; the exact counts with option A
# shortcuts, bias-free convolutions, BN scale+shift, a 64x10 dense head with bias.
PAPER_COUNTS = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962, 1202: 19_421_274}


@pytest.mark.parametrize('depth', sorted(PAPER_COUNTS))
def test_cifar_resnet_parameter_counts(depth):
  assert _params(models.create('cifar_resnet', depth=depth), (1, 32, 32, 3)) == PAPER_COUNTS[depth]


def _hand_count_cifar(n, projections):
  """Conv/BN/dense parameters of a 6n+2 CIFAR ResNet, plus the 1x1 projections listed as (cin, cout)."""
  conv = lambda cin, cout, k=3: k * k * cin * cout + 2 * cout  # Bias-free conv, then BN scale+shift.
  total = conv(3, 16) + 64 * 10 + 10
  cin = 16
  for width in (16, 32, 64):
    for _ in range(n):
      total += conv(cin, width) + conv(width, width)
      cin = width
  return total + sum(conv(a, b, 1) for a, b in projections)


@pytest.mark.parametrize('depth', sorted(PAPER_COUNTS))
def test_hand_count_agrees_with_the_paper_for_option_a(depth):
  assert _hand_count_cifar((depth - 2) // 6, []) == PAPER_COUNTS[depth]


def test_option_b_projects_only_where_the_shape_changes():
  count = _params(models.create('cifar_resnet', depth=20, shortcut='B'), (1, 32, 32, 3))
  assert count == _hand_count_cifar(3, [(16, 32), (32, 64)])


def test_option_c_projects_every_block():
  count = _params(models.create('cifar_resnet', depth=20, shortcut='C'), (1, 32, 32, 3))
  projections = [(16, 16)] * 3 + [(16, 32)] + [(32, 32)] * 2 + [(32, 64)] + [(64, 64)] * 2
  assert count == _hand_count_cifar(3, projections)


@pytest.mark.parametrize('shortcut', ['A', 'B', 'C'])
def test_output_shapes(shortcut):
  model = models.create('cifar_resnet', depth=8, shortcut=shortcut, num_classes=7)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)), train=False)
  assert model.apply(variables, jnp.ones((3, 28, 28, 1)), train=False).shape == (3, 7)
  block = BasicBlock(32, strides=2, shortcut=shortcut)
  variables = block.init(jax.random.key(0), jnp.zeros((1, 8, 8, 16)), train=False)
  assert block.apply(variables, jnp.ones((2, 8, 8, 16)), train=False).shape == (2, 4, 4, 32)


@pytest.mark.parametrize('depth', [20, 56])
def test_plain_twin_has_the_same_parameters_under_option_a(depth):
  shape = (1, 32, 32, 3)
  residual = models.create(f'cifar_resnet{depth}')
  plain = models.create(f'cifar_plain{depth}')
  assert _params(plain, shape) == _params(residual, shape) == PAPER_COUNTS[depth]
  tree = lambda m: jax.tree.structure(jax.eval_shape(
      lambda: m.init(jax.random.key(0), jnp.zeros(shape), train=False)))
  assert tree(plain) == tree(residual)


def test_option_a_shortcut_subsamples_and_zero_pads():
  x = jax.random.normal(jax.random.key(1), (2, 8, 8, 16))
  y = Shortcut(32, 2, 'A').apply({}, x, train=False)
  expected = np.zeros((2, 4, 4, 32), np.float32)
  expected[..., 8:24] = np.asarray(x)[:, ::2, ::2, :]
  np.testing.assert_array_equal(y, expected)


def test_bottleneck_block_count_and_shape():
  block = BottleneckBlock(16)  # 64 -> 16 -> 16 -> 64 channels, identity shortcut.
  variables = block.init(jax.random.key(0), jnp.zeros((1, 8, 8, 64)), train=False)
  count = sum(x.size for x in jax.tree.leaves(variables['params']))
  assert count == (64 * 16 + 32) + (9 * 16 * 16 + 32) + (16 * 64 + 128)
  strided = BottleneckBlock(32, strides=2)
  variables = strided.init(jax.random.key(0), jnp.zeros((1, 8, 8, 64)), train=False)
  assert strided.apply(variables, jnp.ones((2, 8, 8, 64)), train=False).shape == (2, 4, 4, 128)
  assert 'proj' in variables['params']['shortcut']  # Option B projects where the shape changes.


def test_batchnorm_uses_batch_statistics_in_training_and_running_averages_in_eval():
  model = models.create('cifar_resnet', depth=8)
  x = 5.0 + 3.0 * jax.random.normal(jax.random.key(2), (16, 8, 8, 1))
  variables = model.init(jax.random.key(0), x, train=False)
  stem = functools.partial(model.apply, variables, capture_intermediates=True)
  conv_out = lambda out: out[1]['intermediates']['stem']['conv']['__call__'][0]
  bn_out = lambda out: out[1]['intermediates']['stem']['bn']['__call__'][0]
  train = stem(x, train=True, mutable=['batch_stats', 'intermediates'])
  np.testing.assert_allclose(jnp.mean(bn_out(train), (0, 1, 2)), 0.0, atol=1e-4)
  np.testing.assert_allclose(jnp.var(bn_out(train), (0, 1, 2)), 1.0, rtol=1e-2)
  # Fresh running averages are mean 0, variance 1: eval mode leaves the conv output unnormalized.
  evaluation = stem(x, train=False, mutable=['intermediates'])
  np.testing.assert_allclose(bn_out(evaluation), conv_out(evaluation) / np.sqrt(1 + 1e-5), rtol=1e-5)
  running = train[1]['batch_stats']['stem']['bn']['mean']
  np.testing.assert_allclose(running, 0.1 * jnp.mean(conv_out(train), (0, 1, 2)), rtol=1e-4, atol=1e-6)


def test_registry_lists_the_family_and_rejects_unknown_names():
  assert {'mlp', 'cifar_resnet', 'cifar_resnet56', 'cifar_plain56'} <= set(models.names())
  with pytest.raises(UnknownNameError, match=r"unknown model 'resnet_57'.*cifar_resnet"):
    models.create('resnet_57')


def test_bad_depth_and_shortcut_name_the_value_and_the_choices():
  with pytest.raises(ValueError, match=r'6n\+2.*got 21.*20, 32, 44, 56, 110, 1202'):
    _params(models.create('cifar_resnet', depth=21), (1, 8, 8, 1))
  with pytest.raises(ValueError, match=r"shortcut option 'D'.*A, B, C"):
    _params(models.create('cifar_resnet', depth=8, shortcut='D'), (1, 8, 8, 1))
  with pytest.raises(ValueError, match=r"model 'mlp' takes no field 'depth'; its fields: activation, dropout"):
    models.create('mlp', depth=3)


def test_mlp_shapes_and_count():
  mlp = models.create('mlp', widths=(32, 16), num_classes=10, activation='tanh')
  assert _params(mlp, (1, 28, 28, 1)) == (784 * 32 + 32) + (32 * 16 + 16) + (16 * 10 + 10)
