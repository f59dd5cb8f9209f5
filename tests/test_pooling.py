"""Pooling tests: kinds, paddings, strides against numpy loops; PyTorch's ceil_mode and adaptive bins."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets.nn import pooling

REDUCE = {'max': np.max, 'avg': np.mean, 'l2': lambda v: np.sqrt(np.mean(np.square(v)))}


def _reference(kind, x, window, stride, padding, ceil_mode=False):
  """Output position (i, j) reduces the in-image positions of its window (padding never counts)."""
  b, h, w, c = x.shape
  out, low = [], []
  for size in (h, w):
    if padding == 'SAME':  # TensorFlow: ceil(size / stride) outputs, the odd padded position at the end.
      n = math.ceil(size / stride)
      low.append(max((n - 1) * stride + window - size, 0) // 2)
    elif ceil_mode:  # PyTorch: ceil((size - window) / stride) + 1, less a window starting past the end.
      n = math.ceil((size - window) / stride) + 1
      n -= (n - 1) * stride >= size
      low.append(0)
    else:
      n = (size - window) // stride + 1
      low.append(0)
    out.append(n)
  y = np.zeros((b, out[0], out[1], c), np.float64)
  for i in range(out[0]):
    for j in range(out[1]):
      r0, c0 = i * stride - low[0], j * stride - low[1]
      patch = x[:, max(r0, 0):r0 + window, max(c0, 0):c0 + window, :]
      for n in range(b):
        for k in range(c):
          y[n, i, j, k] = REDUCE[kind](patch[n, :, :, k])
  return y


@pytest.mark.parametrize('kind', pooling.KINDS)
@pytest.mark.parametrize('padding', pooling.PADDINGS)
@pytest.mark.parametrize('window,stride', [(2, 2), (3, 2), (3, 1), (2, 3)])
def test_pool_matches_a_numpy_loop(kind, padding, window, stride):
  x = np.random.default_rng(0).normal(size=(2, 7, 6, 3)).astype(np.float32)
  y = pooling.pool(kind, jnp.asarray(x), window, stride, padding)
  np.testing.assert_allclose(y, _reference(kind, x, window, stride, padding), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('kind', pooling.KINDS)
@pytest.mark.parametrize('window,stride', [(3, 2), (2, 2), (1, 2)])
def test_ceil_mode_matches_a_numpy_loop(kind, window, stride):
  x = np.random.default_rng(1).normal(size=(1, 8, 7, 2)).astype(np.float32)
  y = pooling.pool(kind, jnp.asarray(x), window, stride, ceil_mode=True)
  np.testing.assert_allclose(y, _reference(kind, x, window, stride, 'VALID', ceil_mode=True), rtol=1e-5)


def test_ceil_mode_gives_googlenet_sizes():
  # Szegedy et al. (2014), Table 1: 3x3/2 max pools take 112 -> 56 -> 28 -> 14 (torchvision: ceil_mode).
  for size, expected in [(112, 56), (56, 28), (28, 14)]:
    y = pooling.pool('max', jnp.zeros((1, size, size, 1)), 3, 2, ceil_mode=True)
    assert y.shape == (1, expected, expected, 1)
  assert pooling.pool('max', jnp.zeros((1, 112, 112, 1)), 3, 2).shape == (1, 55, 55, 1)


def test_default_strides_are_the_window_and_windows_may_be_rectangular():
  x = np.arange(2 * 6 * 6 * 1, dtype=np.float32).reshape(2, 6, 6, 1)
  y = pooling.pool('avg', jnp.asarray(x), (2, 3))
  expected = x.reshape(2, 3, 2, 2, 3, 1).mean(axis=(2, 4))
  np.testing.assert_allclose(y, expected, rtol=1e-6)


def test_l2_pool_of_zeros_has_zero_value_and_finite_gradient():
  x = jnp.zeros((1, 4, 4, 1)).at[0, 0, 0, 0].set(2.0)
  y, grad = jax.value_and_grad(lambda v: pooling.pool('l2', v, 2).sum())(x)
  assert y == pytest.approx(np.sqrt(4 / 4))  # One window holds (2, 0, 0, 0): sqrt(mean of squares) = 1.
  assert np.all(np.isfinite(grad))


def test_errors_name_the_value_and_the_choices():
  x = jnp.zeros((1, 4, 4, 1))
  with pytest.raises(ValueError, match=r"pooling kind 'mean'.*max, avg, l2"):
    pooling.pool('mean', x, 2)
  with pytest.raises(ValueError, match=r"padding 'same'.*VALID, SAME"):
    pooling.pool('max', x, 2, padding='same')
  with pytest.raises(ValueError, match=r"ceil_mode.*'SAME'"):
    pooling.pool('max', x, 2, padding='SAME', ceil_mode=True)
  with pytest.raises(ValueError, match=r'5x5 window does not fit the 4x4 input'):
    pooling.pool('max', x, 5)


def test_global_avg_pool():
  x = np.random.default_rng(2).normal(size=(2, 3, 5, 4)).astype(np.float32)
  np.testing.assert_allclose(pooling.global_avg_pool(jnp.asarray(x)), x.mean(axis=(1, 2)), rtol=1e-5)


def _adaptive_reference(x, out_h, out_w):
  """PyTorch's AdaptiveAvgPool2d: bin i of n covers [floor(i * size / n), ceil((i + 1) * size / n))."""
  b, h, w, c = x.shape
  y = np.zeros((b, out_h, out_w, c))
  for i in range(out_h):
    for j in range(out_w):
      rows = slice(math.floor(i * h / out_h), math.ceil((i + 1) * h / out_h))
      cols = slice(math.floor(j * w / out_w), math.ceil((j + 1) * w / out_w))
      y[:, i, j, :] = x[:, rows, cols, :].mean(axis=(1, 2))
  return y


@pytest.mark.parametrize('size,out', [((10, 7), (4, 3)), ((5, 5), (3, 3)), ((7, 7), (7, 7)), ((1, 2), (7, 7)),
                                      ((13, 13), (6, 6))])
def test_adaptive_avg_pool_matches_pytorch_bins(size, out):
  x = np.random.default_rng(3).normal(size=(2, *size, 3)).astype(np.float32)
  y = pooling.adaptive_avg_pool(jnp.asarray(x), out)
  np.testing.assert_allclose(y, _adaptive_reference(x, *out), rtol=1e-5, atol=1e-6)


def test_adaptive_bins_overlap_on_a_non_divisible_size():
  # 5 -> 3 bins by hand: [0, 2), [1, 4), [3, 5); rows 1 and 3 fall into two bins each.
  x = np.arange(5, dtype=np.float32).reshape(1, 5, 1, 1)
  y = pooling.adaptive_avg_pool(jnp.asarray(x), (3, 1))
  np.testing.assert_allclose(y[0, :, 0, 0], [(0 + 1) / 2, (1 + 2 + 3) / 3, (3 + 4) / 2], rtol=1e-6)
  assert pooling.adaptive_avg_pool(jnp.ones((2, 9, 9, 5)), 4).shape == (2, 4, 4, 5)
