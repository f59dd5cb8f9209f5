"""Activation functions by spec ('relu', 'leaky_relu:0.2', 'maxout:3'), so models take them from config.

All are elementwise except the output head 'softmax' (over the last axis) and maxout, which maps
[..., units * k] features to [..., units]; `pieces(spec)` tells a layer how many features to produce per unit.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp

from jaxnets.nn import specs
from jaxnets.registry import Registry

# Klambauer et al. (2017), self-normalizing networks: the fixed point of mean 0, variance 1.
SELU_LAMBDA = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772


@dataclasses.dataclass(frozen=True)
class Maxout:
  """Maxout (Goodfellow et al. 2013): unit j is the max of the consecutive features j*k ... j*k + k - 1."""
  k: int

  def __call__(self, x):
    """[..., units * k] -> [..., units]."""
    if x.shape[-1] % self.k:
      raise ValueError(f'maxout:{self.k} needs a feature count divisible by {self.k}, got {x.shape[-1]}')
    return x.reshape(*x.shape[:-1], x.shape[-1] // self.k, self.k).max(axis=-1)


def _maxout(k: float) -> Maxout:
  """Maxout with k pieces, k a positive integer."""
  if k < 1 or k != int(k):
    raise ValueError(f'the number of pieces must be a positive integer, got {k:g}')
  return Maxout(int(k))


def _selu(x):
  """lambda * x for x > 0, lambda * alpha * (exp(x) - 1) otherwise."""
  return SELU_LAMBDA * jax.nn.elu(x, SELU_ALPHA)


ACTIVATIONS = Registry('activation')
ACTIVATIONS.register('sigmoid', jax.nn.sigmoid)
ACTIVATIONS.register('tanh', jnp.tanh)
ACTIVATIONS.register('relu', jax.nn.relu)
ACTIVATIONS.register('leaky_relu', specs.Parameterized(
    lambda alpha: functools.partial(jax.nn.leaky_relu, negative_slope=alpha), 0.01))
ACTIVATIONS.register('elu', specs.Parameterized(
    lambda alpha: functools.partial(jax.nn.elu, alpha=alpha), 1.0))
ACTIVATIONS.register('selu', _selu)
# LeCun et al. (1998), Appendix A: f(a) = 1.7159 tanh(2a / 3), so that f(1) = 1 and f(-1) = -1.
ACTIVATIONS.register('scaled_tanh', lambda x: 1.7159 * jnp.tanh(2 / 3 * x))
ACTIVATIONS.register('linear', lambda x: x)
ACTIVATIONS.register('maxout', specs.Parameterized(_maxout, 2))
ACTIVATIONS.register('softmax', functools.partial(jax.nn.softmax, axis=-1))
ACTIVATIONS.register('logistic', jax.nn.sigmoid)


def get(spec: str):
  """The activation `spec` names: 'name' or 'name:param' (leaky_relu and elu take alpha, maxout k)."""
  return specs.build(ACTIVATIONS, spec)


def pieces(spec: str) -> int:
  """Features a layer must produce per output unit for this activation: k for maxout, 1 otherwise."""
  fn = get(spec)
  return fn.k if isinstance(fn, Maxout) else 1
