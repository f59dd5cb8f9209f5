"""Residual family tests: ImageNet ResNets against torchvision's counts, pre-activation and wide ResNets
against their papers' tables, highway layers against numpy and their carry / transform limits."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import models
from jaxnets.models.highway import HighwayConv, HighwayDense
from jaxnets.models.resnet import PreActBasicBlock, PreActBasicBranch
from jaxnets.train import diagnostics

IMAGENET = (1, 64, 64, 3)
CIFAR = (1, 32, 32, 3)


def _variables(module, shape):
  return jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros(shape), train=False))


def _random_variables(module, x, **kwargs):
  """Variables shaped as `module.init`'s, drawn by numpy (no init to compile); BN variances positive."""
  rng = np.random.default_rng(0)

  def draw(path, leaf):
    value = 0.5 * rng.standard_normal(leaf.shape).astype(np.float32)
    return np.abs(value) + 0.5 if path[-1].key == 'var' else value

  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), x, **kwargs))
  return jax.tree_util.tree_map_with_path(draw, shapes)


def _params(module, shape):
  return sum(x.size for x in jax.tree.leaves(_variables(module, shape)['params']))


def _weights(params):
  """Parameters without BatchNorm's scale and shift: the convolution kernels and the dense head."""
  leaves = jax.tree_util.tree_leaves_with_path(params)
  return sum(leaf.size for path, leaf in leaves if path[-1].key == 'kernel') + params['head']['bias'].size


def _conv(cin, cout, k=3):
  """A bias-free conv's weights plus its BatchNorm's scale and shift."""
  return k * k * cin * cout + 2 * cout


# torchvision.models.resnetN(): sum(p.numel() for p in model.parameters()), 1000 classes.
TORCHVISION_COUNTS = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160, 152: 60_192_808}
# Option B projects at the first block of stages 2-4 (basic blocks: 64->128, 128->256, 256->512).
BASIC_PROJECTIONS = _conv(64, 128, 1) + _conv(128, 256, 1) + _conv(256, 512, 1)


@pytest.mark.parametrize('depth', sorted(TORCHVISION_COUNTS))
def test_imagenet_resnet_counts_match_torchvision(depth):
  assert _params(models.create(f'resnet{depth}'), IMAGENET) == TORCHVISION_COUNTS[depth]


@pytest.mark.parametrize('depth', [50, 101, 152])
def test_v1_and_v1_5_have_the_same_parameters(depth):
  assert _params(models.create(f'resnet{depth}', version='v1.5'), IMAGENET) == TORCHVISION_COUNTS[depth]


@pytest.mark.parametrize('depth', [18, 34])
def test_plain_twins_drop_only_the_projections(depth):
  expected = TORCHVISION_COUNTS[depth] - BASIC_PROJECTIONS
  assert BASIC_PROJECTIONS == 173_824
  assert _params(models.create(f'plain{depth}'), IMAGENET) == expected
  # Option A (the paper's Table 2 comparison): parameter-free shortcuts, so the twins have equal counts.
  residual_a = models.create(f'resnet{depth}', shortcut='A')
  plain_a = models.create(f'plain{depth}', shortcut='A')
  assert _params(residual_a, IMAGENET) == _params(plain_a, IMAGENET) == expected
  tree = lambda m: jax.tree.structure(_variables(m, IMAGENET))
  assert tree(residual_a) == tree(plain_a)


def test_bottleneck_plain_twin_drops_four_projections():
  # ResNet-50 projects at every stage's first block: 64->256, 256->512, 512->1024, 1024->2048.
  projections = _conv(64, 256, 1) + _conv(256, 512, 1) + _conv(512, 1024, 1) + _conv(1024, 2048, 1)
  expected = TORCHVISION_COUNTS[50] - projections
  assert _params(models.create('resnet', depth=50, residual=False), IMAGENET) == expected
  assert _params(models.create('resnet50', shortcut='A'), IMAGENET) == expected


def _stage2_convs(version):
  """Output shapes of the first stage-2 bottleneck's 1x1 and 3x3 convs in ResNet-50 on 64x64 input."""
  model = models.create('resnet50', version=version)

  def run():
    variables = model.init(jax.random.key(0), jnp.zeros(IMAGENET), train=False)
    return model.apply(variables, jnp.zeros(IMAGENET), train=False, capture_intermediates=True,
                       mutable=['intermediates'])[1]['intermediates']

  inter = jax.eval_shape(run)
  branch = inter['stage2_block0']['branch']
  shape = lambda name: branch[name]['conv']['__call__'][0].shape
  return inter['stage1_block2']['__call__'][0].shape, shape('conv1'), shape('conv2')


def test_v1_strides_the_first_1x1_and_v1_5_the_3x3():
  # 64x64 -> 7x7/2 stem 32x32 -> 3x3/2 max pool 16x16: stage 1 runs at 16x16 with 4 x 64 channels.
  stage1, conv1, conv2 = _stage2_convs('v1')
  assert stage1 == (1, 16, 16, 256)
  assert conv1 == (1, 8, 8, 128) and conv2 == (1, 8, 8, 128)
  _, conv1, conv2 = _stage2_convs('v1.5')
  assert conv1 == (1, 16, 16, 128) and conv2 == (1, 8, 8, 128)


def test_imagenet_output_shapes_and_module_names():
  model = models.create('resnet18', num_classes=5)
  variables = _variables(model, IMAGENET)
  assert jax.eval_shape(model.apply, variables, jnp.zeros((2, 64, 64, 3))).shape == (2, 5)
  blocks = [f'stage{i + 1}_block{j}' for i in range(4) for j in range(2)]
  assert diagnostics.layers(model, jnp.zeros(IMAGENET)).order == ('stem', *blocks, 'head')
  big = models.create('resnet152', version='v1.5')
  assert jax.eval_shape(big.apply, _variables(big, IMAGENET), jnp.zeros((2, 64, 64, 3))).shape == (2, 1000)


def test_bad_imagenet_depth_and_version_name_the_choices():
  with pytest.raises(ValueError, match=r'one of 18, 34, 50, 101, 152, got 20'):
    _params(models.create('resnet', depth=20), IMAGENET)
  with pytest.raises(ValueError, match=r"version 'v2'.*v1, v1.5"):
    _params(models.create('resnet50', version='v2'), IMAGENET)


# imgclsmob (osmr)'s pre-activation CIFAR-10 nets, an independent implementation: exact counts.
PREACT_COUNTS = {110: 1_730_522, 164: 1_703_258, 1001: 10_327_706}
# He et al. (2016b), CIFAR-10 (Tables 2 and 3), millions. ResNet-1001's 10.2M is its count without
# BatchNorm's scale and shift (10.18M); with them it is 10.33M, as imgclsmob's count says too.
PREACT_PAPER = {110: 1.7, 164: 1.7, 1001: 10.2}


@pytest.mark.parametrize('depth', sorted(PREACT_COUNTS))
def test_preact_counts(depth):
  params = _variables(models.create(f'cifar_preact_resnet{depth}'), CIFAR)['params']
  assert sum(x.size for x in jax.tree.leaves(params)) == PREACT_COUNTS[depth]
  assert round(_weights(params) / 1e6, 1) == PREACT_PAPER[depth]


def _hand_count_preact(n, bottleneck):
  """A pre-activation CIFAR ResNet with n blocks per stage: every conv bias-free and preceded by its BN."""
  bn = lambda c: 2 * c
  total = 27 * 16
  cin = 16
  for width in (16, 32, 64):
    out = 4 * width if bottleneck else width
    for _ in range(n):
      if bottleneck:
        total += bn(cin) + cin * width + bn(width) + 9 * width * width + bn(width) + width * out
      else:
        total += bn(cin) + 9 * cin * width + bn(width) + 9 * width * width
      total += cin * out if cin != out else 0  # 1x1 conv shortcut, no BN.
      cin = out
  return total + bn(cin) + cin * 10 + 10


@pytest.mark.parametrize('depth, block, n', [(8, 'basic', 1), (14, 'basic', 2), (11, 'bottleneck', 1)])
def test_preact_hand_counts(depth, block, n):
  model = models.create('cifar_preact_resnet', depth=depth, block=block)
  assert _params(model, CIFAR) == _hand_count_preact(n, block == 'bottleneck')


def test_hand_count_agrees_with_imgclsmob():
  assert _hand_count_preact(18, False) == PREACT_COUNTS[110]
  assert _hand_count_preact(18, True) == PREACT_COUNTS[164]
  assert _hand_count_preact(111, True) == PREACT_COUNTS[1001]


def test_bad_preact_depth_and_block_name_the_rule():
  with pytest.raises(ValueError, match=r'9n\+2.*bottleneck blocks, got 100.*164, 1001'):
    _params(models.create('cifar_preact_resnet', depth=100), CIFAR)
  with pytest.raises(ValueError, match=r"unknown block 'wide'.*basic, bottleneck"):
    _params(models.create('cifar_preact_resnet', block='wide'), CIFAR)


def test_preact_identity_path_is_untouched():
  x = jax.random.normal(jax.random.key(0), (2, 6, 6, 8))
  block = PreActBasicBlock(8)
  variables = _random_variables(block, x, train=False)
  params = variables['params']
  last_kernel = ['branch', 'conv2', 'conv', 'kernel']
  zeroed = jax.tree_util.tree_map_with_path(
      lambda path, v: jnp.zeros_like(v) if [p.key for p in path] == last_kernel else v, params)
  # F = 0 leaves y = x exactly, negative entries included: no activation after the addition.
  np.testing.assert_array_equal(block.apply({**variables, 'params': zeroed}, x, train=False), x)

  # And dL/dx = dL/dy + vjp of the branch (with its BN-relu) at dL/dy.
  weights = jax.random.normal(jax.random.key(2), x.shape)
  loss = lambda y: jnp.sum(weights * jnp.tanh(y))
  grad_x = jax.grad(lambda x: loss(block.apply(variables, x, train=False)))(x)

  part = lambda name: {'params': params[name], 'batch_stats': variables['batch_stats'][name]}

  def branch(x):
    pre = jax.nn.relu(nn.BatchNorm(use_running_average=True).apply(part('bn'), x))
    return PreActBasicBranch(8).apply(part('branch'), pre, train=False)

  f_x, f_vjp = jax.vjp(branch, x)
  dl_dy = jax.grad(loss)(x + f_x)
  (branch_term,) = f_vjp(dl_dy)
  np.testing.assert_allclose(grad_x, dl_dy + branch_term, rtol=1e-5, atol=1e-6)
  assert not np.allclose(branch_term, 0)


# Zagoruyko & Komodakis (2016), Tables 1, 4 and 5 (CIFAR-10), millions.
WRN_PAPER = {(40, 4): 8.9, (16, 8): 11.0, (28, 10): 36.5, (40, 1): 0.6, (40, 2): 2.2, (22, 8): 17.2}
# imgclsmob (osmr)'s WRNs, exact.
WRN_COUNTS = {(28, 10): 36_479_194, (16, 10): 17_116_634, (40, 8): 35_748_314}


@pytest.mark.parametrize('depth, k', sorted(WRN_PAPER))
def test_wide_resnet_counts_match_the_paper(depth, k):
  count = _params(models.create(f'wrn{depth}_{k}'), CIFAR)
  assert abs(count / 1e6 - WRN_PAPER[depth, k]) < 0.05


@pytest.mark.parametrize('depth, k', sorted(WRN_COUNTS))
def test_wide_resnet_exact_counts(depth, k):
  model = models.create('wide_resnet', depth=depth, widen_factor=k)
  assert _params(model, CIFAR) == WRN_COUNTS[depth, k]


def test_wide_resnet_hand_params():
  # WRN-10-2: N = 1 block per group, widths 32, 64, 128; every group opens with a 1x1 conv shortcut.
  bn = lambda c: 2 * c
  stem = 27 * 16
  group1 = bn(16) + 9 * 16 * 32 + bn(32) + 9 * 32 * 32 + 16 * 32
  group2 = bn(32) + 9 * 32 * 64 + bn(64) + 9 * 64 * 64 + 32 * 64
  group3 = bn(64) + 9 * 64 * 128 + bn(128) + 9 * 128 * 128 + 64 * 128
  head = bn(128) + 128 * 10 + 10
  model = models.create('wide_resnet', depth=10, widen_factor=2)
  assert _params(model, CIFAR) == stem + group1 + group2 + group3 + head


def test_wide_resnet_dropout_acts_only_in_training():
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
  model = models.create('wide_resnet', depth=10, widen_factor=1, dropout=0.5, num_classes=4)
  variables = _random_variables(model, x, train=False)
  train = jax.jit(lambda key: model.apply(variables, x, train=True, rngs={'dropout': key},
                                          mutable=['batch_stats'])[0])
  assert train(jax.random.key(2)).shape == (2, 4)
  assert not np.allclose(train(jax.random.key(2)), train(jax.random.key(3)))
  evaluate = lambda: model.apply(variables, x, train=False)
  np.testing.assert_array_equal(evaluate(), evaluate())
  still = models.create('wide_resnet', depth=10, widen_factor=1, num_classes=4)
  train = jax.jit(lambda key: still.apply(variables, x, train=True, rngs={'dropout': key},
                                          mutable=['batch_stats'])[0])
  np.testing.assert_array_equal(train(jax.random.key(2)), train(jax.random.key(3)))


def test_bad_wide_resnet_depth_names_the_rule():
  with pytest.raises(ValueError, match=r'6N\+4.*got 26.*16, 22, 28, 40'):
    _params(models.create('wide_resnet', depth=26), CIFAR)


def _random_params(module, x, gate_bias=None):
  """`module`'s parameters, all drawn at random (bias too), optionally with a constant gate bias."""
  params = _random_variables(module, x)['params']
  if gate_bias is not None:
    params['t']['bias'] = jnp.full_like(params['t']['bias'], gate_bias)
  return params


def _sigmoid(z):
  return 1 / (1 + np.exp(-z))


def _relu_h(params, x):
  """H(x) = relu(W_H x + b_H), dense or 3x3 same-padded conv, outside Flax."""
  kernel, bias = params['h']['kernel'], params['h']['bias']
  if x.ndim == 2:
    return jax.nn.relu(x @ kernel + bias)
  z = jax.lax.conv_general_dilated(x, kernel, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return jax.nn.relu(z + bias)


def test_highway_dense_layer_against_numpy():
  x = np.asarray(jax.random.normal(jax.random.key(2), (3, 6)))
  layer = HighwayDense('tanh')
  params = _random_params(layer, x)
  p = jax.tree.map(np.asarray, params)
  h = np.tanh(x @ p['h']['kernel'] + p['h']['bias'])
  t = _sigmoid(x @ p['t']['kernel'] + p['t']['bias'])
  np.testing.assert_allclose(layer.apply({'params': params}, x), h * t + x * (1 - t), rtol=1e-5, atol=1e-6)
  fresh = layer.init(jax.random.key(0), x)['params']
  np.testing.assert_array_equal(fresh['t']['bias'], np.full(6, -2.0))  # The paper's negative start.


@pytest.mark.parametrize('layer, shape', [(HighwayDense(), (3, 6)), (HighwayConv(), (2, 5, 5, 4))])
def test_highway_gate_limits_carry_and_transform(layer, shape):
  x = jax.random.normal(jax.random.key(2), shape)
  carry = _random_params(layer, x, gate_bias=-1e4)
  np.testing.assert_allclose(layer.apply({'params': carry}, x), x, atol=1e-6)  # T -> 0: y = x.
  transform = _random_params(layer, x, gate_bias=1e4)
  np.testing.assert_allclose(layer.apply({'params': transform}, x), _relu_h(transform, x),
                             rtol=1e-5, atol=1e-6)  # T -> 1: y = H(x).


def test_highway_mlp_hand_count_and_shape():
  mlp = models.create('highway_mlp', width=8, depth=3, num_classes=10)
  layer = 2 * (8 * 8 + 8)  # H and T: dense 8 -> 8 with bias each.
  assert _params(mlp, (1, 28, 28, 1)) == (784 * 8 + 8) + 3 * layer + (8 * 10 + 10)
  maxout = models.create('highway_mlp', width=8, depth=3, activation='maxout:2')
  layer = (8 * 16 + 16) + (8 * 8 + 8)  # H produces 2 pieces per unit.
  assert _params(maxout, (1, 28, 28, 1)) == (784 * 16 + 16) + 3 * layer + (8 * 10 + 10)
  x = jnp.ones((4, 28, 28, 1))
  assert diagnostics.layers(mlp, x).order == ('stem', 'layer0', 'layer1', 'layer2', 'head')
  assert mlp.apply(_random_variables(mlp, x), x).shape == (4, 10)


def test_highway_cnn_hand_count_and_shape():
  cnn = models.create('highway_cnn', width=4, stage_sizes=(1, 2), num_classes=10)
  layer = 2 * (9 * 4 * 4 + 4)  # H and T: 3x3 conv 4 -> 4 with bias each.
  assert _params(cnn, (1, 16, 16, 3)) == (27 * 4 + 4) + 3 * layer + (4 * 10 + 10)

  def run():
    variables = cnn.init(jax.random.key(0), jnp.zeros((2, 16, 16, 3)))
    return cnn.apply(variables, jnp.zeros((2, 16, 16, 3)), capture_intermediates=True,
                     mutable=['intermediates'])

  logits, state = jax.eval_shape(run)
  assert logits.shape == (2, 10)
  assert state['intermediates']['stage2_block1']['__call__'][0].shape == (2, 8, 8, 4)  # One 2x2 pool.


def test_registry_lists_the_family():
  expected = {'resnet', 'resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152', 'plain18', 'plain34',
              'cifar_preact_resnet', 'cifar_preact_resnet110', 'cifar_preact_resnet164',
              'cifar_preact_resnet1001', 'wide_resnet', 'wrn16_8', 'wrn22_8', 'wrn28_10', 'wrn40_1',
              'wrn40_2', 'wrn40_4', 'highway_mlp', 'highway_cnn'}
  assert expected <= set(models.names())


def test_cifar_stem_keeps_the_resolution_and_changes_only_the_first_conv():
  net = models.create('resnet18', num_classes=10, stem='cifar')
  # torchvision's 11,689,512 at 1000 classes, less the 7x7 stem (7*7*3*64) and 990 classes of head
  # (512*990 + 990), plus a 3x3 stem (3*3*3*64): the common CIFAR ResNet-18's 11,173,962.
  expected = 11_689_512 - 7 * 7 * 3 * 64 + 3 * 3 * 3 * 64 - 513 * 990
  assert _params(net, (1, 32, 32, 3)) == expected == 11_173_962
  features = jax.eval_shape(lambda: net.init_with_output(
      jax.random.key(0), jnp.zeros((1, 32, 32, 3)), capture_intermediates=True))[1]
  assert features['intermediates']['stage4_block1']['__call__'][0].shape == (1, 4, 4, 512)
  with pytest.raises(ValueError, match="unknown ResNet stem 'tiny'; valid choices: imagenet, cifar"):
    _params(models.create('resnet18', stem='tiny'), (1, 32, 32, 3))
