"""Kernel initializers by spec ('he_normal', 'xavier_uniform', 'normal:0.01'), the course's formulas exactly.

Normals are plain (untruncated), so a kernel's variance is the formula's: jax's own lecun_normal and
he_normal truncate at two standard deviations. Fans are jax's: for a conv kernel of shape
(kh, kw, in, out), fan_in = kh * kw * in and fan_out = kh * kw * out.
"""

import math

import jax
import jax.numpy as jnp

from jaxnets.nn import specs
from jaxnets.registry import Registry


def _normal(sigma: float):
  """N(0, sigma^2)."""
  if sigma <= 0:
    raise ValueError(f'sigma must be positive, got {sigma:g}')
  return jax.nn.initializers.normal(sigma)


def _uniform(limit: float):
  """U(-limit, limit)."""
  if limit <= 0:
    raise ValueError(f'limit must be positive, got {limit:g}')

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -limit, limit)

  return init


def _lecun98_uniform(key, shape, dtype=jnp.float32):
  """LeCun et al. (1998), Appendix A: U(-2.4 / F, 2.4 / F), F the fan-in (all axes but the last)."""
  limit = 2.4 / math.prod(shape[:-1])
  return jax.random.uniform(key, shape, dtype, -limit, limit)


def orthogonal(key, shape, dtype=jnp.float32):
  """A random orthogonal matrix (Saxe et al. 2014), as jax.nn.initializers.orthogonal draws it: the Q of a
  Gaussian matrix's QR, signs fixed by R's diagonal; rows x cols with rows = prod(shape[:-1]).

  The Gaussian is sampled as its transpose: the QR reads a column-major matrix, and XLA CPU's fused
  build (jaxnets.xla_env) cannot run the sampling with that layout (jax's own fails to compile there;
  python -m benchmarks.ynn_layout shows it).
  """
  rows, cols = math.prod(shape[:-1]), shape[-1]
  q, r = jnp.linalg.qr(jax.random.normal(key, (min(rows, cols), max(rows, cols)), dtype).T)
  q = q * jnp.sign(jnp.diag(r))
  return (q.T if rows < cols else q).reshape(shape)


INITIALIZERS = Registry('initializer')
INITIALIZERS.register('normal', specs.Parameterized(_normal, 0.01))
INITIALIZERS.register('uniform', specs.Parameterized(_uniform, 0.05))
# Glorot & Bengio (2010): variance 2 / (fan_in + fan_out); the uniform of that variance has limit
# sqrt(6 / (fan_in + fan_out)).
INITIALIZERS.register('xavier_normal', jax.nn.initializers.variance_scaling(1.0, 'fan_avg', 'normal'))
INITIALIZERS.register('xavier_uniform', jax.nn.initializers.variance_scaling(1.0, 'fan_avg', 'uniform'))
# He et al. (2015): variance 2 / fan_in; LeCun et al. (1998): variance 1 / fan_in.
INITIALIZERS.register('he_normal', jax.nn.initializers.variance_scaling(2.0, 'fan_in', 'normal'))
INITIALIZERS.register('he_uniform', jax.nn.initializers.variance_scaling(2.0, 'fan_in', 'uniform'))
# torchvision's conv init for VGG and ResNet (kaiming_normal_, mode='fan_out'): variance 2 / fan_out.
INITIALIZERS.register('he_normal_fan_out', jax.nn.initializers.variance_scaling(2.0, 'fan_out', 'normal'))
INITIALIZERS.register('lecun98_uniform', _lecun98_uniform)
INITIALIZERS.register('lecun_normal', jax.nn.initializers.variance_scaling(1.0, 'fan_in', 'normal'))
INITIALIZERS.register('orthogonal', orthogonal)


def get(spec: str):
  """The kernel initializer (key, shape, dtype) `spec` names: 'name' or 'normal:sigma' / 'uniform:limit'."""
  return specs.build(INITIALIZERS, spec)
