"""Jittable training diagnostics: l2 norms of gradients, parameters and updates, per layer group.

A group is a top-level module with any `_blockN` or `_blocks` (a scanned stage) suffix dropped (stem,
stage1, stage2, ..., head), so the norms show where the gradient vanishes in a deep plain net.
"""

import dataclasses
import re

import jax
import jax.numpy as jnp
import optax

_BLOCK_SUFFIX = re.compile(r'_block(\d+|s)$')


def group_of(module_name: str) -> str:
  """The diagnostics group of a top-level module name: 'stage2_block5' -> 'stage2'."""
  return _BLOCK_SUFFIX.sub('', module_name)


@dataclasses.dataclass(frozen=True)
class Layers:
  """Where the norms look: the top-level modules input to output, and the first layer's kernel path."""
  order: tuple
  first_kernel: tuple | None  # ('stem', 'conv', 'kernel'); ('backbone', 'stem', 'conv', 'kernel').


def layers_of(params) -> Layers:
  """The Layers of params still in creation order: call it while tracing `init` (jit and tree maps
  sort dict keys, losing that order)."""

  def first_kernel(tree, path):
    for key, value in tree.items():
      if key == 'kernel':
        return path + (key,)
      if isinstance(value, dict) and (found := first_kernel(value, path + (key,))):
        return found
    return None

  return Layers(tuple(params), first_kernel(params, ()))


def layers(model, sample_input) -> Layers:
  """The model's Layers, traced abstractly."""
  found = []

  def init(x):
    variables = model.init(jax.random.key(0), x, train=False)
    found.append(layers_of(variables['params']))
    return variables

  jax.eval_shape(init, sample_input)
  return found[0]


def norms(grads, params, updates, layers: Layers) -> dict:
  """Global and per-group gradient norms, the first layer's weight-gradient norm, parameter and update norms.

  The first layer is the first kernel the model created (the stem convolution of a ResNet, the first
  convolution inside a detector's backbone), without its bias or BatchNorm parameters.
  """
  out = {'grad_norm/global': optax.global_norm(grads),
         'param_norm': optax.global_norm(params),
         'update_norm': optax.global_norm(updates)}
  if layers.first_kernel:  # A model without kernels (no dense or convolution layer) has no first layer.
    first = grads
    for key in layers.first_kernel:
      first = first[key]
    out['grad_norm/first_layer'] = optax.global_norm(first)
  squares = {}
  for name in layers.order:
    group = group_of(name)
    squares[group] = squares.get(group, 0.0) + jnp.square(optax.global_norm(grads[name]))
  out.update({f'grad_norm/{g}': jnp.sqrt(s) for g, s in squares.items()})
  return out
