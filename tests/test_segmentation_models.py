"""U-Net and FCN: the papers' sizes and parameter counts by hand, upsampling at init, weight reuse from VGG.

Counts and shapes come from jax.eval_shape (nothing allocated); real passes use narrow nets on tiny inputs.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets.models import fcn, unet, vgg

NARROW = dict(widths=(8, 16, 32, 64, 64), fc_width=16)
VGG16_CONVS = (2, 2, 3, 3, 3)  # Convolutions per stage of VGG-16 (configuration D).


def _variables(model, shape, **kwargs):
  return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape), **kwargs))


def _params(model, shape):
  return sum(x.size for x in jax.tree.leaves(_variables(model, shape)['params']))


def _conv(k, cin, cout, bias=True):
  return k * k * cin * cout + (cout if bias else 0)


def _unet_hand_count(in_channels, classes, depth, width, batch_norm=False):
  """Double 3x3 convs (bias, or bias-free + BN scale and shift), 2x2 up-convs with bias, a 1x1 head."""
  block = lambda cin, cout: _conv(3, cin, cout, not batch_norm) + (2 * cout if batch_norm else 0)
  double = lambda cin, cout: block(cin, cout) + block(cout, cout)
  widths = [width * 2 ** i for i in range(depth + 1)]
  total = double(in_channels, widths[0])
  total += sum(double(widths[i], widths[i + 1]) for i in range(depth))  # down2 ... bottom.
  total += sum(_conv(2, widths[i + 1], widths[i]) + double(2 * widths[i], widths[i]) for i in range(depth))
  return total + _conv(1, widths[0], classes)


def _fcn_hand_count(stride, in_channels=3, classes=21, widths=vgg.STAGE_WIDTHS, fc_width=4096):
  """VGG-16 convs, fc6 7x7, fc7 1x1, score layers 1x1 (all with bias), bias-free 4x4 up-convs."""
  channels = [w for w, n in zip(widths, VGG16_CONVS) for _ in range(n)]
  total = sum(_conv(3, cin, cout) for cin, cout in zip([in_channels] + channels, channels))
  total += _conv(7, widths[4], fc_width) + _conv(1, fc_width, fc_width) + _conv(1, fc_width, classes)
  if stride <= 16:
    total += _conv(4, classes, classes, bias=False) + _conv(1, widths[3], classes)
  if stride <= 8:
    total += _conv(4, classes, classes, bias=False) + _conv(1, widths[2], classes)
  return total


def _randomized_scores(params, scale=0.1):
  """`params` with the zero-initialized score layers drawn at random, so that every path carries signal."""
  params = dict(params)
  for i, name in enumerate(n for n in params if n.startswith('score')):
    keys = jax.random.split(jax.random.key(i + 10))
    params[name] = {k: scale * jax.random.normal(key, v.shape)
                    for key, (k, v) in zip(keys, params[name].items())}
  return params


def _gradients(model, variables, x, **apply_kwargs):
  """A jitted params -> gradients of a per-pixel cross-entropy against random labels, in training mode."""
  def loss(params):
    out = model.apply({**variables, 'params': params}, x, train=True, rngs={'dropout': jax.random.key(1)},
                      **apply_kwargs)
    logits = out[0] if isinstance(out, tuple) else out
    labels = jax.random.randint(jax.random.key(2), logits.shape[:-1], 0, logits.shape[-1])
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[..., None], axis=-1))
  return jax.jit(jax.grad(loss))


def _finite_and_zero(grads):
  """(every gradient finite, the names of the top-level groups holding an all-zero gradient)."""
  flat = jax.tree_util.tree_leaves_with_path(grads)
  finite = all(bool(jnp.all(jnp.isfinite(g))) for _, g in flat)
  return finite, {path[0].key for path, g in flat if not bool(jnp.any(g != 0))}


# U-Net.

def test_unet_paper_tile_gives_the_papers_feature_map_sizes():
  # Ronneberger et al. (2015), Fig. 1: 572x572 -> 568x568x64 after the first level, 28x28x1024 at the
  # bottom, 388x388 at the top of the expanding path.
  model = unet.ENTRIES['unet_paper'](num_classes=2)
  variables = _variables(model, (1, 572, 572, 1), capture_intermediates=True)
  out = variables['intermediates']
  assert out['down1']['__call__'][0].shape == (1, 568, 568, 64)
  assert out['bottom']['__call__'][0].shape == (1, 28, 28, 1024)
  assert out['up1']['__call__'][0].shape == (1, 388, 388, 64)
  assert out['__call__'][0].shape == (1, 388, 388, 2)
  assert unet.output_size(572, 4, 'VALID') == 388


def test_unet_paper_parameter_count():
  count = _unet_hand_count(1, 2, depth=4, width=64)
  assert count == 31_030_658  # The count the module docstring states.
  assert _params(unet.ENTRIES['unet_paper'](num_classes=2), (1, 572, 572, 1)) == count


@pytest.mark.parametrize('batch_norm', [False, True])
@pytest.mark.parametrize('padding', ['SAME', 'VALID'])
def test_unet_parameter_counts_follow_the_hand_formula(padding, batch_norm):
  model = unet.UNet(num_classes=11, depth=3, width=16, padding=padding, batch_norm=batch_norm)
  size = 64 if padding == 'SAME' else 92  # 92: the smallest VALID tile of depth 3 is 92 (output 4).
  assert _params(model, (1, size, size, 1)) == _unet_hand_count(1, 11, 3, 16, batch_norm)


def test_unet_same_padding_keeps_the_input_size():
  model = unet.UNet(num_classes=5, depth=2, width=4, batch_norm=True)
  x = jax.random.normal(jax.random.key(0), (2, 32, 48, 3))
  variables = jax.jit(model.init)(jax.random.key(0), x)
  logits, state = jax.jit(functools.partial(model.apply, train=True, mutable=['batch_stats']))(variables, x)
  assert logits.shape == (2, 32, 48, 5) and bool(jnp.all(jnp.isfinite(logits)))
  assert 'bn2' in state['batch_stats']['up1']
  out = jax.eval_shape(lambda: unet.UNet(num_classes=11, width=16).init_with_output(
      jax.random.key(0), jnp.zeros((1, 64, 64, 1)))[0])
  assert out.shape == (1, 64, 64, 11)


def test_unet_valid_padding_crops_the_skips():
  # Depth 2: 44 -> 40 -> 20 -> 16 -> 8 -> 4 (bottom) -> 8 -> 4 -> 8 -> 4, the skips cropped from 40 and 16.
  model = unet.UNet(num_classes=3, depth=2, width=4, padding='VALID')
  x = jax.random.normal(jax.random.key(0), (1, 44, 44, 1))
  logits = model.apply(model.init(jax.random.key(0), x), x)
  assert logits.shape == (1, 4, 4, 3) and unet.output_size(44, 2, 'VALID') == 4
  y = jnp.arange(6 * 8, dtype=jnp.float32).reshape(1, 6, 8, 1)
  np.testing.assert_array_equal(unet.center_crop(y, 2, 4), y[:, 2:4, 2:6])


def test_unet_forward_and_backward_give_finite_gradients():
  model = unet.UNet(num_classes=11, depth=2, width=4, batch_norm=True)
  x = jax.random.normal(jax.random.key(0), (2, 16, 16, 1))
  variables = model.init(jax.random.key(0), x)
  gradients = _gradients(model, variables, x, mutable=['batch_stats'])
  finite, zero = _finite_and_zero(gradients(variables['params']))
  assert finite and not zero


def test_unet_rejects_sizes_and_options_that_do_not_work():
  with pytest.raises(ValueError, match=r'VALID padding and depth 4 cannot take input side 570.*556, 572'):
    _params(unet.UNet(padding='VALID'), (1, 570, 572, 1))
  with pytest.raises(ValueError, match=r'input side 64.*nearest sides that work: 188$'):
    unet.output_size(64, 4, 'VALID')  # Too small: the smallest tile of depth 4 is 188.
  with pytest.raises(ValueError, match=r'SAME padding and depth 4 needs input sides divisible by 16, got 72'):
    _params(unet.UNet(width=4), (1, 64, 72, 1))
  with pytest.raises(ValueError, match=r"unknown U-Net padding 'FULL'; valid choices: SAME, VALID"):
    _params(unet.UNet(width=4, padding='FULL'), (1, 64, 64, 1))
  with pytest.raises(ValueError, match=r'depth must be at least 1, got 0'):
    _params(unet.UNet(width=4, depth=0), (1, 64, 64, 1))


# VGG as a backbone.

def test_vgg_endpoints_are_the_pooled_stages_and_a_subset_of_the_classifier():
  backbone = vgg.VGG(depth=16, widths=NARROW['widths'])
  endpoints = jax.eval_shape(lambda: backbone.init_with_output(
      jax.random.key(0), jnp.zeros((2, 64, 96, 1)), endpoints=True))[0]
  assert {k: v.shape for k, v in endpoints.items()} == {
      f'pool{i + 1}': (2, 64 // 2 ** (i + 1), 96 // 2 ** (i + 1), w) for i, w in enumerate(NARROW['widths'])}
  features = _variables(backbone, (1, 64, 64, 1), endpoints=True)['params']
  classifier = vgg.VGG(depth=16, widths=NARROW['widths'], num_classes=10)
  classifier = _variables(classifier, (1, 64, 64, 1))['params']
  shapes = lambda tree: {jax.tree_util.keystr(p): v.shape
                         for p, v in jax.tree_util.tree_leaves_with_path(tree)}
  assert shapes(features).items() <= shapes(classifier).items()
  assert set(classifier) - set(features) == {'fc6', 'fc7', 'head'}
  with pytest.raises(ValueError, match=r'5 stage widths, got 4'):
    _params(vgg.VGG(widths=(8, 16, 32, 64)), (1, 32, 32, 3))


def test_a_vgg_classifier_fc6_is_the_fcn_fc6_reshaped():
  # At a 224x224 input, pool5 is 7x7: the SAME-padded 7x7 fc6 at the centre sees the whole map, as the dense
  # fc6 of the classifier does; the dense kernel (7 * 7 * C, F) in NHWC flatten order is the (7, 7, C, F) one.
  classifier = vgg.VGG(depth=16, widths=NARROW['widths'], classifier_width=NARROW['fc_width'], num_classes=3)
  model = fcn.FCN(stride=32, num_classes=3, **NARROW)
  x = jax.random.normal(jax.random.key(0), (1, 224, 224, 1))
  source = classifier.init(jax.random.key(1), x)['params']
  params = model.init(jax.random.key(2), x)['params']
  params = {**params, 'backbone': {k: source[k] for k in params['backbone']},
            'fc6': {'kernel': source['fc6']['kernel'].reshape(7, 7, 64, 16), 'bias': source['fc6']['bias']}}
  take_fc6 = dict(capture_intermediates=lambda module, _: module.name == 'fc6', mutable=['intermediates'])
  dense = classifier.apply({'params': source}, x, **take_fc6)[1]['intermediates']['fc6']['__call__'][0]
  conv = model.apply({'params': params}, x, **take_fc6)[1]['intermediates']['fc6']['__call__'][0]
  np.testing.assert_allclose(conv[:, 3, 3], dense, rtol=1e-4, atol=1e-5)


# FCN.

@pytest.mark.parametrize('stride', [32, 16, 8])
def test_fcn_paper_parameter_counts(stride):
  # Long et al. (2015), Table 1: 134M parameters for FCN-VGG16 (PASCAL VOC, 21 classes).
  expected = {32: 134_346_581, 16: 134_364_410, 8: 134_376_863}[stride]  # As the module docstring says.
  assert _fcn_hand_count(stride) == expected and round(expected / 1e6) == 134
  model = fcn.ENTRIES[f'fcn{stride}s'](num_classes=21)
  assert _params(model, (1, 64, 64, 3)) == expected
  assert _params(model, (1, 500, 375, 3)) == expected  # The count does not depend on the input size.


@pytest.mark.parametrize('batch_norm', [False, True])
def test_fcn_narrow_parameter_counts(batch_norm):
  model = fcn.FCN(stride=8, num_classes=11, batch_norm=batch_norm, **NARROW)
  bn = 2 * sum(w * n for w, n in zip(NARROW['widths'], VGG16_CONVS)) if batch_norm else 0
  assert _params(model, (1, 64, 64, 1)) == _fcn_hand_count(8, 1, 11, **NARROW) + bn


def test_bilinear_upconvolution_is_bilinear_upsampling_inside_the_border():
  kernel = fcn.bilinear_kernel(None, (4, 4, 2, 2))
  np.testing.assert_allclose(kernel[:, 0, 0, 0], [0.25 * 0.25, 0.75 * 0.25, 0.75 * 0.25, 0.25 * 0.25])
  assert float(jnp.abs(kernel[:, :, 0, 1]).max()) == 0  # Each channel maps to itself only.
  up = nn.ConvTranspose(2, (4, 4), (2, 2), padding='SAME', use_bias=False, kernel_init=fcn.bilinear_kernel)
  x = jax.random.normal(jax.random.key(0), (1, 5, 6, 2))
  y = up.apply(up.init(jax.random.key(0), x), x)
  expected = jax.image.resize(x, (1, 10, 12, 2), 'bilinear')
  np.testing.assert_allclose(y[:, 1:-1, 1:-1], expected[:, 1:-1, 1:-1], rtol=1e-5, atol=1e-6)
  ones = up.apply(up.init(jax.random.key(0), x), jnp.ones_like(x))[0, :, :, 0]
  np.testing.assert_allclose(ones[1:-1, 1:-1], 1.0)
  np.testing.assert_allclose(ones[0, 1:-1], 0.75)  # The outer ring sees the zero padding.


def _upsample2x(scores):
  """The bilinear 2x up-convolution another way: zero-pad by one, resize 2x, drop two rows and columns."""
  b, h, w, c = scores.shape
  padded = jnp.pad(scores, [(0, 0), (1, 1), (1, 1), (0, 0)])
  return jax.image.resize(padded, (b, 2 * h + 4, 2 * w + 4, c), 'bilinear')[:, 2:-2, 2:-2]


def test_fcn16s_and_8s_start_as_fcn32s_scores_upsampled_in_steps():
  size = 128
  x = jax.random.normal(jax.random.key(0), (1, size, size, 1))
  models = {s: fcn.FCN(stride=s, num_classes=3, **NARROW) for s in (32, 16, 8)}
  params = models[8].init(jax.random.key(0), x)['params']
  params = {**params, **_randomized_scores({'score_fr': params['score_fr']})}  # score_pool3/4 stay zero.
  fcn32s = ('backbone', 'fc6', 'fc7', 'score_fr')  # FCN-32s's parameters are a subset of FCN-16s's and 8s's.
  subset = {32: fcn32s, 16: fcn32s + ('upscore2', 'score_pool4'), 8: tuple(params)}
  variables = {s: {'params': {k: params[k] for k in names}} for s, names in subset.items()}
  take = dict(capture_intermediates=lambda module, _: module.name == 'score_fr', mutable=['intermediates'])
  out32, state = models[32].apply(variables[32], x, **take)
  scores = state['intermediates']['score_fr']['__call__'][0]
  resize = lambda s: jax.image.resize(s, (1, size, size, 3), 'bilinear')
  out = {s: models[s].apply(variables[s], x) for s in (16, 8)}
  np.testing.assert_allclose(out32, resize(scores), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out[16], resize(_upsample2x(scores)), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out[8], resize(_upsample2x(_upsample2x(scores))), rtol=1e-5, atol=1e-6)
  assert float(jnp.abs(out[16] - out32).max()) > 1e-3  # Two bilinear steps are not one.
  # Constant stride-32 scores (score_fr's kernel zero, its bias b): FCN-32s gives b everywhere, FCN-16s and
  # FCN-8s b away from the border, which the learned 2x layers' zero padding reaches (24 and 28 pixels here).
  bias = jnp.array([0.5, -1.0, 2.0])
  for v in variables.values():
    v['params']['score_fr'] = {'kernel': jnp.zeros_like(params['score_fr']['kernel']), 'bias': bias}
  constant = models[32].apply(variables[32], x)
  np.testing.assert_allclose(constant, jnp.broadcast_to(bias, constant.shape), rtol=1e-6)
  for s in (16, 8):
    centre = models[s].apply(variables[s], x)[:, 32:96, 32:96]
    np.testing.assert_allclose(centre, jnp.broadcast_to(bias, centre.shape), rtol=1e-6)


def test_fcn_takes_sizes_that_are_not_multiples_of_32():
  # The input is zero-padded to 96x64 and the logits cropped back: the same numbers as padding by hand.
  model = fcn.FCN(stride=8, num_classes=4, **NARROW)
  x = jax.random.normal(jax.random.key(0), (1, 70, 45, 1))
  params = _randomized_scores(model.init(jax.random.key(0), x)['params'])
  logits = model.apply({'params': params}, x)
  padded = model.apply({'params': params}, jnp.pad(x, [(0, 0), (0, 26), (0, 19), (0, 0)]))
  assert logits.shape == (1, 70, 45, 4)
  np.testing.assert_allclose(logits, padded[:, :70, :45], rtol=1e-5, atol=1e-6)
  assert model.apply({'params': params}, x[:, :20, :9]).shape == (1, 20, 9, 4)  # Smaller than one stride.


@pytest.mark.parametrize('stride, batch_norm', [(32, False), (8, False), (8, True)])
def test_fcn_forward_and_backward_give_finite_gradients(stride, batch_norm):
  model = fcn.FCN(stride=stride, num_classes=11, batch_norm=batch_norm, **NARROW)
  x = jax.random.normal(jax.random.key(0), (2, 64, 64, 1))
  variables = model.init(jax.random.key(0), x)
  mutable = dict(mutable=['batch_stats']) if batch_norm else {}
  gradients = _gradients(model, variables, x, **mutable)
  finite, zero = _finite_and_zero(gradients(variables['params']))
  assert finite
  # The score layers start at zero (as in the paper), so at the first step only they get a gradient ...
  assert zero == {name for name in variables['params'] if not name.startswith('score')}
  # ... and once they are non-zero every parameter does.
  finite, zero = _finite_and_zero(gradients(_randomized_scores(variables['params'])))
  assert finite and not zero


def test_fcn_registry_entries_and_errors():
  assert sorted(fcn.ENTRIES) == ['fcn16s', 'fcn32s', 'fcn8s']
  assert sorted(unet.ENTRIES) == ['unet', 'unet_paper']
  assert all(fcn.ENTRIES[f'fcn{s}s'].keywords == {'stride': s} for s in (32, 16, 8))
  with pytest.raises(ValueError, match=r'unknown FCN stride 4; valid choices: 32, 16, 8'):
    _params(fcn.FCN(stride=4, **NARROW), (1, 64, 64, 1))
  with pytest.raises(ValueError, match=r'maps each channel to itself'):
    fcn.bilinear_kernel(None, (4, 4, 2, 3))
