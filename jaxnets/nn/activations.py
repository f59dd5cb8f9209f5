"""Activation functions by name, so every model can take its nonlinearity from config."""

import functools

import jax

from jaxnets.registry import Registry

ACTIVATIONS = Registry('activation')
ACTIVATIONS.register('relu', jax.nn.relu)
ACTIVATIONS.register('tanh', jax.numpy.tanh)
ACTIVATIONS.register('sigmoid', jax.nn.sigmoid)
ACTIVATIONS.register('leaky_relu', functools.partial(jax.nn.leaky_relu, negative_slope=0.01))
ACTIVATIONS.register('elu', jax.nn.elu)
ACTIVATIONS.register('selu', jax.nn.selu)
ACTIVATIONS.register('linear', lambda x: x)


def get(name: str):
  """The activation function registered under `name`."""
  return ACTIVATIONS.get(name)
