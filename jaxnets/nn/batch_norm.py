"""BatchNorm over (batch, spatial) axes with its backward pass written out: Flax's nn.BatchNorm, same variables.

The forward pass is Flax's, operation for operation (statistics in float32 with the fast variance
E[x^2] - E[x]^2 clipped at 0; y = (x - mean) * (rsqrt(var + eps) * scale) + bias; running averages
m <- momentum m + (1 - momentum) batch). In training the gradient is the textbook one (Ioffe & Szegedy 2015),
with x_hat = (x - mean) * rsqrt(var + eps) over N values per feature:

  d_bias = sum(dy),  d_scale = sum(dy * x_hat),  dx = scale * rsqrt(var + eps) / N * (N dy - d_bias - x_hat d_scale)

two reductions and one elementwise pass, where autodiff of the forward pass runs separate passes for the
mean, the variance and their broadcasts. On XLA CPU those passes are memory traffic, and BatchNorm's share of
a ResNet step is most of it (benchmarks/profile_step.py).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp


class BatchNorm(nn.Module):
  """Flax's nn.BatchNorm for features on the last axis (params 'scale', 'bias'; batch_stats 'mean', 'var')."""
  use_running_average: bool
  momentum: float = 0.99
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x):
    features = (x.shape[-1],)
    running_mean = self.variable('batch_stats', 'mean', lambda: jnp.zeros(features, jnp.float32))
    running_var = self.variable('batch_stats', 'var', lambda: jnp.ones(features, jnp.float32))
    scale = self.param('scale', nn.initializers.ones, features, jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, features, jnp.float32)
    if self.use_running_average:
      y = _affine(_float32(x), running_mean.value, running_var.value, scale, bias, self.epsilon)
    else:
      y, mean, var = _normalize_batch(x, scale, bias, self.epsilon)
      if not self.is_initializing():
        running_mean.value = self.momentum * running_mean.value + (1 - self.momentum) * mean
        running_var.value = self.momentum * running_var.value + (1 - self.momentum) * var
    return y.astype(jnp.result_type(x, scale, bias))


def _float32(x):
  """x in at least float32 (statistics and normalization are never computed in half precision)."""
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _affine(xf, mean, var, scale, bias, epsilon):
  """(x - mean) * (rsqrt(var + eps) * scale) + bias, in Flax's order of operations."""
  return (xf - mean) * (jax.lax.rsqrt(var + epsilon) * scale) + bias


def _stats(xf):
  """Per-feature mean and fast variance of float32 x over every axis but the last."""
  axes = tuple(range(xf.ndim - 1))
  mean = xf.mean(axes)
  return mean, jnp.maximum(0.0, (xf * xf).mean(axes) - mean * mean)


def _batch_forward(x, scale, bias, epsilon):
  """(y in float32, batch mean, batch variance) by plain autodiff-able operations."""
  xf = _float32(x)
  mean, var = _stats(xf)
  return _affine(xf, mean, var, scale, bias, epsilon), mean, var


# The statistics it returns carry no gradient (they only feed the running averages); the residuals are
# computed by _batch_forward, so a second derivative differentiates them as autodiff would.
_normalize_batch = jax.custom_vjp(_batch_forward, nondiff_argnums=(3,))


def _normalize_batch_fwd(x, scale, bias, epsilon):
  y, mean, var = _batch_forward(x, scale, bias, epsilon)
  return (y, mean, var), (x, mean, var, scale, bias)


def _normalize_batch_bwd(epsilon, residuals, cotangents):
  x, mean, var, scale, bias = residuals
  dy = _float32(cotangents[0])  # The statistics' cotangents are zero: they only feed running averages.
  axes = tuple(range(x.ndim - 1))
  count = x.size // x.shape[-1]
  inv = jax.lax.rsqrt(var + epsilon)
  x_hat = (_float32(x) - mean) * inv
  d_bias = dy.sum(axes)
  d_scale = (dy * x_hat).sum(axes)
  dx = (scale * inv / count) * (count * dy - d_bias - x_hat * d_scale)
  return dx.astype(x.dtype), d_scale.astype(scale.dtype), d_bias.astype(bias.dtype)


_normalize_batch.defvjp(_normalize_batch_fwd, _normalize_batch_bwd)
