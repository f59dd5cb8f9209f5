"""Dropout variants by kind: standard (Srivastava et al. 2014) and alpha dropout for self-normalizing nets.

Standard dropout zeroes units, which would shift a SELU network's activations off their mean-0,
variance-1 fixed point; alpha dropout (Klambauer et al. 2017) sets dropped units to SELU's negative
saturation value and restores mean and variance with an affine map.
"""

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxnets.nn.activations import SELU_ALPHA, SELU_LAMBDA
from jaxnets.registry import Registry


class AlphaDropout(nn.Module):
  """Drop units with probability `rate` to alpha' = -lambda * alpha, then a * x + b keeps mean 0, variance 1.

  a = ((1 - q)(1 + q alpha'^2))^(-1/2) and b = -a alpha' q for drop rate q; the mask draws from the
  'dropout' rng. Identity when deterministic.
  """
  rate: float
  deterministic: Optional[bool] = None

  @nn.compact
  def __call__(self, x, deterministic: Optional[bool] = None):
    """x with alpha dropout applied (unless deterministic)."""
    deterministic = nn.merge_param('deterministic', self.deterministic, deterministic)
    if not 0 <= self.rate < 1:
      raise ValueError(f'alpha dropout rate must be in [0, 1), got {self.rate}')
    if deterministic or self.rate == 0:
      return x
    q = self.rate
    saturation = -SELU_LAMBDA * SELU_ALPHA
    a = ((1 - q) * (1 + q * saturation ** 2)) ** -0.5
    b = -a * saturation * q
    keep = jax.random.bernoulli(self.make_rng('dropout'), 1 - q, x.shape)
    return a * jnp.where(keep, x, saturation) + b


DROPOUTS = Registry('dropout kind')
DROPOUTS.register('standard', nn.Dropout)
DROPOUTS.register('alpha', AlphaDropout)


def make_dropout(kind: str, rate: float, **kwargs) -> nn.Module:
  """A dropout module of `kind` ('standard' or 'alpha') with drop `rate`; kwargs go to the module."""
  return DROPOUTS.create(kind, rate=rate, **kwargs)
