"""A convolution whose gradients XLA's CPU backend runs fast inside loops (nn.scan), for flax's nn.Conv.

Why: XLA CPU has a fast path for convolutions laid out as input NHWC, kernel HWIO, output NHWC. Autodiff
writes the input and weight gradients of a convolution with other dimension orders, which XLA rewrites
into that layout in a program's top level but not inside a while loop's body: there they fall to a naive
loop, and a scanned ResNet's backward pass ran 40x slower than the unrolled one (benchmarks/conv_in_loop.py
reproduces it). Here both gradients of a stride-1 convolution are written as NHWC/HWIO/NHWC convolutions
with explicit transposes, the form XLA itself produces at the top level, so scanned and unrolled nets run
at the same speed. Other convolutions (strided, dilated, grouped) are passed to lax unchanged.
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax

_LAYOUT = ('NHWC', 'HWIO', 'NHWC')


def _conv(x, kernel, padding, precision):
  return lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=_LAYOUT, precision=precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _stride1_conv(x, kernel, padding, precision):
  return _conv(x, kernel, padding, precision)


def _forward(x, kernel, padding, precision):
  return _conv(x, kernel, padding, precision), (x, kernel)


def _backward(padding, precision, residuals, dy):
  """dx: dy convolved with the flipped, in/out-swapped kernel; dkernel: x and dy correlated with the channel
  axis as the batch and the batch as the channels (the kernel's spatial extent becomes the output's)."""
  x, kernel = residuals
  (kh, kw), ((top, bottom), (left, right)) = kernel.shape[:2], padding
  dx = _conv(dy, jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2),
             ((kh - 1 - top, kh - 1 - bottom), (kw - 1 - left, kw - 1 - right)), precision)
  dkernel = lax.conv_general_dilated(x.transpose(3, 1, 2, 0), dy.transpose(1, 2, 0, 3), (1, 1), padding,
                                     dimension_numbers=_LAYOUT, precision=precision).transpose(1, 2, 0, 3)
  return dx.astype(x.dtype), dkernel.astype(kernel.dtype)


_stride1_conv.defvjp(_forward, _backward)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, batch_group_count=1, precision=None,
                         preferred_element_type=None):
  """lax.conv_general_dilated's signature (what nn.Conv calls); the canonical-gradient path where it applies."""
  plain = (lhs.ndim == 4 and tuple(window_strides) == (1, 1) and not isinstance(padding, str)
           and lhs_dilation in (None, (1, 1)) and rhs_dilation in (None, (1, 1)) and feature_group_count == 1
           and batch_group_count == 1 and preferred_element_type is None
           and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
           == lax.conv_dimension_numbers(lhs.shape, rhs.shape, _LAYOUT))
  if not plain:
    return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                                    feature_group_count, batch_group_count, precision, preferred_element_type)
  return _stride1_conv(lhs, rhs, tuple(tuple(p) for p in padding), precision)
