"""Layer building blocks against their formulas: activations, maxout, initializer variances, dropout
statistics, batch norm, and the MLP that combines them (counts by hand)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import models
from jaxnets.nn import activations, initializers
from jaxnets.nn.batch_norm import BatchNorm
from jaxnets.nn.dropout import AlphaDropout, make_dropout
from jaxnets.registry import UnknownNameError

# Klambauer et al. (2017), Eq. 14 / Sec. 3 (lambda_01, alpha_01), written out independently of the code.
PAPER_LAMBDA = 1.0507009873554805
PAPER_ALPHA = 1.6732632423543772

X = np.linspace(-4.0, 4.0, 81, dtype=np.float32).reshape(9, 9)


def _sigmoid(x):
  return 1 / (1 + np.exp(-x))


def _elu(x, alpha):
  return np.where(x > 0, x, alpha * (np.exp(x) - 1))


FORMULAS = {
    'sigmoid': _sigmoid,
    'logistic': _sigmoid,
    'tanh': np.tanh,
    'relu': lambda x: np.maximum(x, 0),
    'leaky_relu': lambda x: np.where(x > 0, x, 0.01 * x),
    'leaky_relu:0.2': lambda x: np.where(x > 0, x, 0.2 * x),
    'elu': lambda x: _elu(x, 1.0),
    'elu:0.5': lambda x: _elu(x, 0.5),
    'selu': lambda x: PAPER_LAMBDA * _elu(x, PAPER_ALPHA),
    'linear': lambda x: x,
    'softmax': lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True),
}


@pytest.mark.parametrize('spec', sorted(FORMULAS))
def test_activation_matches_its_formula(spec):
  np.testing.assert_allclose(activations.get(spec)(jnp.asarray(X)), FORMULAS[spec](X.astype(np.float64)),
                             rtol=1e-5, atol=1e-6)


def test_output_heads():
  probs = np.asarray(activations.get('softmax')(jnp.asarray(X)))
  np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
  assert np.all(np.diff(probs, axis=-1) > 0)  # Each row of X increases, so do its probabilities.
  np.testing.assert_allclose(activations.get('logistic')(jnp.asarray([0.0, np.log(3.0)])), [0.5, 0.75],
                             rtol=1e-6)


@pytest.mark.parametrize('k', [2, 3, 4])
def test_maxout_takes_the_max_of_consecutive_groups(k):
  x = np.random.default_rng(k).normal(size=(5, 6 * k)).astype(np.float32)
  expected = x.reshape(5, 6, k).max(-1)
  np.testing.assert_array_equal(activations.get(f'maxout:{k}')(jnp.asarray(x)), expected)
  assert activations.pieces(f'maxout:{k}') == k


def test_maxout_default_and_pieces():
  x = jnp.asarray([[1.0, 5.0, -2.0, -3.0]])
  np.testing.assert_array_equal(activations.get('maxout')(x), [[5.0, -2.0]])
  assert activations.pieces('maxout') == 2
  assert activations.pieces('relu') == activations.pieces('leaky_relu:0.3') == 1
  with pytest.raises(ValueError, match=r'maxout:3 needs a feature count divisible by 3, got 4'):
    activations.get('maxout:3')(x)


@pytest.mark.parametrize('spec, message', [
    ('relu:0.5', r"activation 'relu:0.5': 'relu' takes no parameter"),
    ('leaky_relu:abc', r"activation 'leaky_relu:abc': parameter 'abc' is not a number"),
    ('elu:nan', r"activation 'elu:nan': parameter 'nan' is not a finite number"),
    ('maxout:2.5', r"activation 'maxout:2.5': .*positive integer, got 2.5"),
    ('maxout:0', r"activation 'maxout:0': .*positive integer, got 0"),
])
def test_bad_activation_params_name_the_spec(spec, message):
  with pytest.raises(ValueError, match=message):
    activations.get(spec)


def test_unknown_names_list_the_choices():
  with pytest.raises(UnknownNameError, match=r"unknown activation 'swish'; valid choices: elu, leaky_relu"):
    activations.get('swish')
  with pytest.raises(UnknownNameError, match=r"unknown initializer 'kaiming'; valid choices: he_normal"):
    initializers.get('kaiming')
  with pytest.raises(UnknownNameError, match=r"dropout kind 'gaussian'; valid choices: alpha, standard"):
    make_dropout('gaussian', 0.1)
  with pytest.raises(ValueError, match=r"initializer 'he_normal:2': 'he_normal' takes no parameter"):
    initializers.get('he_normal:2')
  with pytest.raises(ValueError, match=r"initializer 'normal:-1': sigma must be positive"):
    initializers.get('normal:-1')


DENSE = (1000, 400)  # fan_in 1000, fan_out 400.
CONV = (3, 3, 64, 128)  # fan_in 3*3*64 = 576, fan_out 3*3*128 = 1152.
VARIANCES = {  # spec -> (variance for DENSE, variance for CONV), the fan formulas by hand.
    'lecun_normal': (1 / 1000, 1 / 576),
    'he_normal': (2 / 1000, 2 / 576),
    'he_uniform': (2 / 1000, 2 / 576),
    'he_normal_fan_out': (2 / 400, 2 / 1152),
    'xavier_normal': (2 / 1400, 2 / 1728),
    'xavier_uniform': (2 / 1400, 2 / 1728),
    'normal': (0.01 ** 2, 0.01 ** 2),
    'normal:0.3': (0.09, 0.09),
    'uniform': (0.05 ** 2 / 3, 0.05 ** 2 / 3),
    'uniform:0.2': (0.04 / 3, 0.04 / 3),
}


@pytest.mark.parametrize('spec', sorted(VARIANCES))
def test_initializer_variance_matches_the_fan_formula(spec):
  for shape, variance in zip((DENSE, CONV), VARIANCES[spec]):
    w = np.asarray(initializers.get(spec)(jax.random.key(0), shape, jnp.float32), np.float64)
    assert w.shape == shape
    assert abs(w.mean()) < 0.02 * np.sqrt(variance)
    np.testing.assert_allclose(w.var(), variance, rtol=0.02)


UNIFORM_LIMITS = [('he_uniform', np.sqrt(6 / 1000)), ('xavier_uniform', np.sqrt(6 / 1400)), ('uniform', 0.05),
                  ('uniform:0.2', 0.2)]


@pytest.mark.parametrize('spec, limit', UNIFORM_LIMITS)
def test_uniform_initializers_respect_their_bounds(spec, limit):
  w = np.asarray(initializers.get(spec)(jax.random.key(1), DENSE, jnp.float32))
  assert np.abs(w).max() <= limit * (1 + 1e-6)
  assert w.min() < -0.99 * limit and w.max() > 0.99 * limit


def test_normal_initializers_are_not_truncated():
  w = np.asarray(initializers.get('he_normal')(jax.random.key(2), DENSE, jnp.float32))
  # A plain normal puts 4.55% of its mass beyond two standard deviations; a truncated one puts none.
  beyond = np.mean(np.abs(w) > 2 * np.sqrt(2 / 1000))
  assert 0.043 < beyond < 0.048


def test_alpha_dropout_keeps_zero_mean_unit_variance():
  q = 0.15
  x = jax.random.normal(jax.random.key(3), (1_000_000,))
  y = np.asarray(AlphaDropout(q).apply({}, x, deterministic=False, rngs={'dropout': jax.random.key(4)}),
                 np.float64)
  saturation = -PAPER_LAMBDA * PAPER_ALPHA
  a = ((1 - q) * (1 + q * saturation ** 2)) ** -0.5
  b = -a * saturation * q
  assert abs(y.mean()) < 0.01
  assert abs(y.var() - 1) < 0.02
  dropped = np.isclose(y, a * saturation + b, rtol=0, atol=1e-6)
  assert abs(dropped.mean() - q) < 0.003
  np.testing.assert_allclose(y[~dropped], a * np.asarray(x, np.float64)[~dropped] + b, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(AlphaDropout(q).apply({}, x, deterministic=True), x)


def test_standard_dropout_zeroes_rate_and_rescales_the_rest():
  rate = 0.3
  x = 1.0 + jax.random.uniform(jax.random.key(5), (200_000,))
  y = np.asarray(make_dropout('standard', rate).apply({}, x, deterministic=False,
                                                      rngs={'dropout': jax.random.key(6)}))
  kept = y != 0
  assert abs((1 - kept.mean()) - rate) < 0.005
  np.testing.assert_allclose(y[kept], np.asarray(x)[kept] / (1 - rate), rtol=1e-6)
  np.testing.assert_array_equal(make_dropout('standard', rate).apply({}, x, deterministic=True), x)


def test_dropout_rates_out_of_range_are_rejected():
  with pytest.raises(ValueError, match=r'alpha dropout rate must be in \[0, 1\), got 1.0'):
    AlphaDropout(1.0).apply({}, jnp.ones(3), deterministic=False, rngs={'dropout': jax.random.key(0)})
  with pytest.raises(ValueError, match=r'MLP dropout must be in \[0, 1\), got 1.5'):
    models.create('mlp', dropout=1.5).init(jax.random.key(0), jnp.ones((1, 4)))


def test_batch_norm_matches_the_course_formula():
  x = np.asarray(3.0 + 2.0 * jax.random.normal(jax.random.key(7), (32, 6)), np.float64)
  bn = BatchNorm(use_running_average=False, epsilon=1e-3)  # The one jaxnets' models use.
  variables = bn.init(jax.random.key(0), jnp.asarray(x, jnp.float32))
  scale = np.linspace(0.5, 2.0, 6)
  bias = np.linspace(-1.0, 1.0, 6)
  variables = {'params': {'scale': jnp.asarray(scale, jnp.float32), 'bias': jnp.asarray(bias, jnp.float32)},
               'batch_stats': variables['batch_stats']}
  y, _ = bn.apply(variables, jnp.asarray(x, jnp.float32), mutable=['batch_stats'])
  expected = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3) * scale + bias
  np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def _params(module, shape):
  variables = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros(shape), train=False))
  return sum(x.size for x in jax.tree.leaves(variables['params']))


def test_mlp_maxout_widens_each_hidden_dense():
  mlp = models.create('mlp', widths=(32, 16), activation='maxout:3', dropout=0.5)
  # 784 -> 32*3 pieces -> 32 units -> 16*3 -> 16 -> 10; dropout has no parameters.
  assert _params(mlp, (1, 28, 28, 1)) == (784 * 96 + 96) + (32 * 48 + 48) + (16 * 10 + 10)
  x = jnp.ones((2, 28, 28, 1))
  assert mlp.apply(mlp.init(jax.random.key(0), x), x).shape == (2, 10)


@pytest.mark.parametrize('activation, kind', [('relu', 'standard'), ('selu', 'alpha')])
def test_mlp_dropout_acts_in_training_only(activation, kind):
  x = jax.random.normal(jax.random.key(8), (4, 20))
  mlp = models.create('mlp', widths=(64, 64), activation=activation, dropout=0.2, dropout_kind=kind)
  plain = models.create('mlp', widths=(64, 64), activation=activation)
  variables = mlp.init(jax.random.key(0), x)
  evaluation = mlp.apply(variables, x, train=False)
  np.testing.assert_array_equal(evaluation, plain.apply(variables, x, train=False))
  train = lambda seed: mlp.apply(variables, x, train=True, rngs={'dropout': jax.random.key(seed)})
  assert np.abs(train(1) - evaluation).max() > 1e-3
  assert np.abs(train(1) - train(2)).max() > 1e-3
  np.testing.assert_array_equal(plain.apply(variables, x, train=True), evaluation)


def test_mlp_kernel_init_reaches_every_layer():
  mlp = models.create('mlp', widths=(300,), kernel_init='uniform:0.2')
  params = mlp.init(jax.random.key(0), jnp.zeros((1, 500)))['params']
  for name in ('layer0', 'head'):
    kernel = np.asarray(params[name]['kernel'])
    assert np.abs(kernel).max() <= 0.2 and np.abs(kernel).max() > 0.19


@pytest.mark.parametrize('shape,dtype', [((16, 6, 6, 5), jnp.float32), ((32, 7), jnp.float32),
                                         ((16, 6, 6, 5), jnp.bfloat16)])
def test_batch_norm_equals_flax_and_its_gradient_equals_autodiff_of_flax(shape, dtype):
  """jaxnets' BatchNorm against Flax's nn.BatchNorm: same variables, same outputs and running averages bit for
  bit, and its written-out gradient equals autodiff through Flax's forward pass."""
  keys = jax.random.split(jax.random.key(0), 4)
  x = (3 * jax.random.normal(keys[0], shape) + 1).astype(dtype)
  weights = jax.random.normal(keys[1], shape)
  for train in (True, False):
    ours, theirs = (BatchNorm(use_running_average=not train, momentum=0.9),
                    nn.BatchNorm(use_running_average=not train, momentum=0.9))
    variables = theirs.init(keys[2], x)
    jax.tree.map(np.testing.assert_array_equal, ours.init(keys[2], x), variables)
    variables = jax.tree.map(lambda v: v + 0.3 * jax.random.normal(keys[3], v.shape), variables)
    params = variables['params']
    if dtype == jnp.bfloat16:  # As the mixed-precision policy hands them over.
      params = jax.tree.map(lambda p: p.astype(dtype), params)

    def loss(module, params, x):
      y, updates = module.apply({'params': params, 'batch_stats': variables['batch_stats']}, x,
                                mutable=['batch_stats'])
      return (jnp.sin(y.astype(jnp.float32)) * weights).sum(), (y, updates)

    grad = jax.jit(jax.grad(loss, argnums=(1, 2), has_aux=True), static_argnums=0)
    (ours_grads, (ours_y, ours_stats)), (flax_grads, (flax_y, flax_stats)) = (grad(ours, params, x),
                                                                             grad(theirs, params, x))
    assert ours_y.dtype == flax_y.dtype == dtype
    np.testing.assert_array_equal(np.asarray(ours_y, np.float32), np.asarray(flax_y, np.float32))
    jax.tree.map(np.testing.assert_array_equal, ours_stats, flax_stats)
    tolerance = 1e-5 if dtype == jnp.float32 else 1e-2  # Sums reassociated; bf16 keeps 8 bits of mantissa.
    for a, b in zip(jax.tree.leaves(ours_grads), jax.tree.leaves(flax_grads)):
      a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
      np.testing.assert_allclose(a, b, atol=tolerance * np.abs(b).max())
    if train and dtype == jnp.float32:  # A second derivative (the residuals' own) follows autodiff too.
      def input_grad_norm(module, params):
        return (jax.grad(lambda x: loss(module, params, x)[0])(x) ** 2).sum()
      ours_second, flax_second = (jax.grad(input_grad_norm, argnums=1)(ours, params),
                                  jax.grad(input_grad_norm, argnums=1)(theirs, params))
      for a, b in zip(jax.tree.leaves(ours_second), jax.tree.leaves(flax_second)):
        np.testing.assert_allclose(a, b, atol=1e-4 * np.abs(b).max())
