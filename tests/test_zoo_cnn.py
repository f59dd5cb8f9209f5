"""Classic CNNs: LeNet-5 against the paper's per-layer counts; AlexNet, VGG, GoogLeNet against torchvision."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import models
from jaxnets.models import lenet, vgg
from jaxnets.nn import activations, initializers


def _variables(module, shape, **kwargs):
  return jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros(shape), train=False, **kwargs))


def _params(module, shape):
  return sum(x.size for x in jax.tree.leaves(_variables(module, shape)['params']))


def _forward(module, shape, train=False, abstract=True):
  """Init, then apply to a batch of ones: (logits, mutated collections); only shapes when abstract."""
  def run():
    variables = module.init(jax.random.key(0), jnp.zeros(shape), train=False)
    return module.apply(variables, jnp.ones(shape), train=train, rngs={'dropout': jax.random.key(1)},
                        mutable=['batch_stats', 'aux_outputs'])
  return jax.eval_shape(run) if abstract else jax.jit(run)()


# torchvision.models, 1000 classes: sum(p.numel() for p in model.parameters()).
TORCHVISION_COUNTS = {
    'alexnet': 61_100_840,
    'vgg11': 132_863_336, 'vgg11_bn': 132_868_840, 'vgg13': 133_047_848, 'vgg13_bn': 133_053_736,
    'vgg16': 138_357_544, 'vgg16_bn': 138_365_992, 'vgg19': 143_667_240, 'vgg19_bn': 143_678_248,
}
GOOGLENET_TORCHVISION = {False: 6_624_904, True: 13_004_888}  # aux_logits=False / True.


@pytest.mark.parametrize('name', sorted(TORCHVISION_COUNTS))
def test_torchvision_parameter_counts(name):
  assert _params(models.create(name, num_classes=1000), (1, 224, 224, 3)) == TORCHVISION_COUNTS[name]


@pytest.mark.parametrize('aux', [False, True])
def test_googlenet_with_torchvision_3x3_branch_has_torchvision_counts(aux):
  model = models.create('googlenet', num_classes=1000, aux_logits=aux, branch_kernel=3)
  assert _params(model, (1, 224, 224, 3)) == GOOGLENET_TORCHVISION[aux]


@pytest.mark.parametrize('aux', [False, True])
def test_googlenet_with_the_papers_5x5_branch(aux):
  # Szegedy et al. (2014), Table 1, (#5x5 reduce, #5x5) of 3a ... 5b. The branch conv is bias-free and
  # its BN does not depend on the kernel, so 5x5 instead of 3x3 adds (25 - 9) * reduce * out per block:
  # 16 * (512 + 3072 + 768 + 1536 + 1536 + 2048 + 4096 + 4096 + 6144) = 16 * 23,808 = 380,928.
  table = [(16, 32), (32, 96), (16, 48), (24, 64), (24, 64), (32, 64), (32, 128), (32, 128), (48, 128)]
  extra = sum((25 - 9) * reduce * out for reduce, out in table)
  assert extra == 380_928
  model = models.create('googlenet', num_classes=1000, aux_logits=aux)
  assert _params(model, (1, 224, 224, 3)) == GOOGLENET_TORCHVISION[aux] + extra


def test_googlenet_feature_map_sizes_follow_the_paper():
  # Table 1 of the paper, output sizes at 224x224: conv 112x112x64, conv 56x56x192, inception (3b)
  # 28x28x480, (4e) 14x14x832, (5b) 7x7x1024.
  model = models.create('googlenet', num_classes=1000)
  out = _variables(model, (1, 224, 224, 3), capture_intermediates=True)['intermediates']
  shape = lambda name: out[name]['__call__'][0].shape[1:]
  assert shape('conv1') == (112, 112, 64)
  assert shape('conv3') == (56, 56, 192)
  assert shape('inception3b') == (28, 28, 480)
  assert shape('inception4e') == (14, 14, 832)
  assert shape('inception5b') == (7, 7, 1024)


def test_googlenet_sows_auxiliary_logits_in_training_only():
  model = models.create('googlenet', num_classes=7, aux_logits=True)
  logits, state = _forward(model, (2, 32, 32, 3), train=True)
  assert logits.shape == (2, 7)
  assert sorted(state['aux_outputs']) == ['aux1', 'aux2']
  assert all(v[0].shape == (2, 7) for v in state['aux_outputs'].values())
  logits, state = _forward(model, (2, 32, 32, 3), train=False)
  assert logits.shape == (2, 7) and 'aux_outputs' not in state
  plain = models.create('googlenet', num_classes=7, branch_kernel=3)
  logits, state = _forward(plain, (2, 32, 32, 3), train=True)
  assert logits.shape == (2, 7) and 'aux_outputs' not in state
  assert 'aux1_head' not in _variables(plain, (1, 32, 32, 3))['params']


# LeCun et al. (1998), Sec. II-B: trainable parameters of each layer.
LENET_PAPER = {'c1': 156, 's2': 12, 'c3': 1516, 's4': 32, 'c5': 48120, 'f6': 10164}


def test_lenet5_per_layer_counts_match_the_paper():
  variables = _variables(models.create('lenet5'), (1, 32, 32, 1))['params']
  counts = {name: sum(x.size for x in jax.tree.leaves(tree)) for name, tree in variables.items()}
  assert counts == {**LENET_PAPER, 'head': 84 * 10 + 10}


def test_lenet5_modern_count():
  # C1 6 * (25 + 1), C3 16 * (6 * 25 + 1) fully connected, C5 120 * (400 + 1), F6 84 * 121, head 10 * 85.
  assert 156 + 2416 + 48120 + 10164 + 850 == 61_706
  assert _params(models.create('lenet5_modern'), (1, 32, 32, 1)) == 61_706


def test_c3_table_is_the_papers_table_one():
  # Table I, rows = S2 maps, columns = C3 maps 0 ... 15, X = connected.
  rows = ['X   XXX  XXXX XX',
          'XX   XXX  XXXX X',
          'XXX   XXX  X XXX',
          ' XXX  XXXX  X XX',
          '  XXX  XXXX XX X',
          '   XXX  XXXX XXX']
  table = {(s, c) for s, row in enumerate(rows) for c, mark in enumerate(row) if mark == 'X'}
  assert table == {(s, c) for c, inputs in enumerate(lenet.C3_TABLE) for s in inputs}


def test_c3_convolves_only_the_connected_maps():
  x = np.random.default_rng(0).normal(size=(2, 7, 7, 6)).astype(np.float32)
  conv = lenet.TableConv()
  params = jax.jit(conv.init)(jax.random.key(0), jnp.asarray(x))
  kernel, bias = (np.asarray(params['params'][k]) for k in ('kernel', 'bias'))
  expected = np.zeros((2, 3, 3, 16)) + bias
  connection = 0
  for out, inputs in enumerate(lenet.C3_TABLE):
    for source in inputs:
      for i in range(3):
        for j in range(3):
          patch = x[:, i:i + 5, j:j + 5, source]
          expected[:, i, j, out] += np.sum(patch * kernel[:, :, connection], axis=(1, 2))
      connection += 1
  np.testing.assert_allclose(jax.jit(conv.apply)(params, jnp.asarray(x)), expected, rtol=1e-4, atol=1e-5)


def test_subsampling_is_a_scaled_sum_plus_bias():
  x = np.random.default_rng(1).normal(size=(1, 4, 4, 2)).astype(np.float32)
  params = {'params': {'coefficient': jnp.array([0.5, -2.0]), 'bias': jnp.array([1.0, 0.25])}}
  y = lenet.Subsampling().apply(params, jnp.asarray(x))
  expected = x.reshape(1, 2, 2, 2, 2, 2).sum(axis=(2, 4)) * np.array([0.5, -2.0]) + np.array([1.0, 0.25])
  np.testing.assert_allclose(y, expected, rtol=1e-5)


def test_paper_squashing_function_and_initialization():
  assert float(activations.get('scaled_tanh')(1.0)) == pytest.approx(1.0, abs=1e-3)  # Appendix A: f(1) = 1, f(-1) = -1.
  assert float(activations.get('scaled_tanh')(-1.0)) == pytest.approx(-1.0, abs=1e-3)
  kernel = initializers.get('lecun98_uniform')(jax.random.key(0), (5, 5, 6, 16))  # Fan-in 150: U(-2.4 / 150, 2.4 / 150).
  assert float(jnp.max(jnp.abs(kernel))) <= 2.4 / 150
  assert float(jnp.max(jnp.abs(kernel))) > 0.95 * 2.4 / 150


@pytest.mark.parametrize('name', ['lenet5', 'lenet5_modern'])
def test_lenet_pads_mnist_digits_to_32x32(name):
  model = models.create(name, num_classes=10)
  logits, _ = _forward(model, (3, 28, 28, 1), abstract=False)
  assert logits.shape == (3, 10) and bool(jnp.all(jnp.isfinite(logits)))
  out = _variables(model, (1, 28, 28, 1), capture_intermediates=True)['intermediates']
  assert out['c1']['__call__'][0].shape == (1, 28, 28, 6)  # The paper's C1: 28x28 maps from 32x32 input.
  assert out['c5']['__call__'][0].shape == (1, 1, 1, 120)


def test_lenet_options_and_errors():
  model = models.create('lenet5', pooling='max', activation='relu', kernel_init='he_normal')
  assert _params(model, (1, 32, 32, 1)) == sum(LENET_PAPER.values()) - 12 - 32 + 850
  with pytest.raises(ValueError, match=r"pooling 'mean'.*subsample, max, avg, l2"):
    _params(models.create('lenet5', pooling='mean'), (1, 32, 32, 1))
  with pytest.raises(ValueError, match=r'up to 32x32, got 40x32'):
    _params(models.create('lenet5'), (1, 40, 32, 1))


@pytest.mark.parametrize('name', sorted(TORCHVISION_COUNTS))
def test_output_shapes_at_a_small_input(name):
  size = 64 if name == 'alexnet' else 32  # torchvision's AlexNet needs at least 63x63.
  model = models.create(name, num_classes=10)
  out = jax.eval_shape(lambda: model.init_with_output(jax.random.key(0), jnp.zeros((2, size, size, 3)))[0])
  assert out.shape == (2, 10)


def test_alexnet_smallest_input_and_too_small_input():
  logits, _ = _forward(models.create('alexnet', num_classes=5), (2, 63, 63, 3), train=True)
  assert logits.shape == (2, 5)
  with pytest.raises(ValueError, match=r'3x3 window does not fit the 1x1 input'):
    _params(models.create('alexnet'), (1, 32, 32, 3))


def test_cifar_style_vgg():
  # Convolutions of VGG-16 (9 * cin * cout + cout each; 14,714,688 as in Keras's VGG16 without its top),
  # then 512-wide fc6 and fc7 on globally pooled 512 features and a 10-way head.
  widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
  convs = sum(9 * cin * cout + cout for cin, cout in zip([3] + widths, widths))
  assert convs == 14_714_688
  classifier = 2 * (512 * 512 + 512) + 512 * 10 + 10
  for pool_size in (1, None):
    model = models.create('vgg16', num_classes=10, classifier_width=512, pool_size=pool_size)
    assert _params(model, (1, 32, 32, 3)) == convs + classifier
  model = models.create('vgg11_bn', num_classes=10, classifier_width=16, pool_size=1)
  logits, state = _forward(model, (2, 32, 32, 3), train=True)
  assert logits.shape == (2, 10) and 'bn' in state['batch_stats']['stage5_block1']


def test_registry_names_and_errors():
  expected = {'lenet5', 'lenet5_modern', 'alexnet', 'vgg11', 'vgg11_bn', 'vgg13', 'vgg13_bn', 'vgg16',
              'vgg16_bn', 'vgg19', 'vgg19_bn', 'googlenet'}
  assert expected <= set(models.names())
  with pytest.raises(ValueError, match=r"'vgg16' fixes depth=16 \(asked: 19\)"):
    models.create('vgg16', depth=19)
  with pytest.raises(ValueError, match=r'VGG depth 15; valid choices: 11, 13, 16, 19'):
    _params(vgg.VGG(depth=15), (1, 32, 32, 3))
