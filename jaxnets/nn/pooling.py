"""Pooling over NHWC feature maps: max, average and L2 windows, global and adaptive averages.

`pool` takes TensorFlow's 'VALID' / 'SAME' padding, and PyTorch's ceil_mode for VALID (a last, partial
window where the stride leaves input over), which torchvision's GoogLeNet needs. Padded positions never
count: max ignores them, avg and l2 average over the window's positions inside the input (TensorFlow's
rule; PyTorch's AvgPool2d counts zero padding by default). `adaptive_avg_pool` uses PyTorch's
AdaptiveAvgPool2d bins, so torchvision's heads (AlexNet's 6x6, VGG's 7x7) work at any input size.
"""

import jax
import jax.numpy as jnp
import numpy as np

KINDS = ('max', 'avg', 'l2')
PADDINGS = ('VALID', 'SAME')


def _pair(value) -> tuple:
  """(v, v) for an int, the pair itself otherwise."""
  return (value, value) if isinstance(value, int) else tuple(value)


def _output_and_pads(size: int, window: int, stride: int, padding: str, ceil_mode: bool):
  """Output length of one spatial axis and its (low, high) padding."""
  if padding == 'SAME':
    out = -(-size // stride)
  else:
    out = (size - window + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size:  # PyTorch: the last window must start inside the input.
      out -= 1
  total = max((out - 1) * stride + window - size, 0)
  low = total // 2 if padding == 'SAME' else 0
  return out, (low, total - low)


def pool(kind: str, x, window, strides=None, padding: str = 'VALID', ceil_mode: bool = False):
  """`kind` ('max', 'avg', or 'l2': root mean square) pooling of NHWC `x`; strides default to the window."""
  if kind not in KINDS:
    raise ValueError(f'unknown pooling kind {kind!r}; valid choices: {", ".join(KINDS)}')
  if padding not in PADDINGS:
    raise ValueError(f'unknown padding {padding!r}; valid choices: {", ".join(PADDINGS)}')
  if ceil_mode and padding != 'VALID':
    raise ValueError(f'ceil_mode applies to VALID padding only, got padding {padding!r}')
  window = _pair(window)
  strides = window if strides is None else _pair(strides)
  sizes = x.shape[1:3]
  outs, pads = zip(*(_output_and_pads(*args, padding, ceil_mode) for args in zip(sizes, window, strides)))
  if min(outs) < 1:
    raise ValueError(f'a {window[0]}x{window[1]} window does not fit the {sizes[0]}x{sizes[1]} input '
                     f'with VALID padding')
  dims, steps, pads = (1, *window, 1), (1, *strides, 1), ((0, 0), *pads, (0, 0))
  if kind == 'max':
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, dims, steps, pads)
  window_sum = lambda v: jax.lax.reduce_window(v, 0.0, jax.lax.add, dims, steps, pads)
  count = window_sum(jnp.ones((1, *sizes, 1), x.dtype))
  if kind == 'avg':
    return window_sum(x) / count
  mean_square = window_sum(jnp.square(x)) / count
  positive = mean_square > 0  # sqrt has an infinite slope at 0: all-zero windows get value and gradient 0.
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, mean_square, 1)), 0)


def global_avg_pool(x):
  """The mean over the spatial axes: [B, H, W, C] -> [B, C]."""
  return jnp.mean(x, axis=(1, 2))


def _bins(size: int, out: int) -> np.ndarray:
  """[out, size] averaging weights over PyTorch's bins [floor(i size / out), ceil((i + 1) size / out))."""
  weights = np.zeros((out, size), np.float32)
  for i in range(out):
    start, end = i * size // out, -(-(i + 1) * size // out)
    weights[i, start:end] = 1 / (end - start)
  return weights


def adaptive_avg_pool(x, output_size):
  """NHWC `x` averaged over PyTorch's AdaptiveAvgPool2d bins to [B, out_h, out_w, C] (an int is square)."""
  out_h, out_w = _pair(output_size)
  rows, cols = _bins(x.shape[1], out_h), _bins(x.shape[2], out_w)
  y = jnp.einsum('ih,bhwc,jw->bijc', rows, x, cols, precision=jax.lax.Precision.HIGHEST)
  return y.astype(x.dtype)
