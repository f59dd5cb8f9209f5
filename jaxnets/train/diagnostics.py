"""Jittable training diagnostics: l2 norms of gradients, parameters and updates, per layer group.

A group is a top-level module with any `_blockN` suffix dropped (stem, stage1, stage2, ..., head), so
the norms show where the gradient vanishes in a deep plain net.
"""

import re

import jax
import jax.numpy as jnp
import optax

_BLOCK_SUFFIX = re.compile(r'_block\d+$')


def group_of(module_name: str) -> str:
  """The diagnostics group of a top-level module name: 'stage2_block5' -> 'stage2'."""
  return _BLOCK_SUFFIX.sub('', module_name)


def layer_order(model, sample_input) -> tuple:
  """The model's top-level module names in creation order (input to output).

  jit and tree maps sort dict keys, so the order is recorded once while tracing `init`.
  """
  order = []

  def init(x):
    variables = model.init(jax.random.key(0), x, train=False)
    order.extend(variables['params'])
    return variables

  jax.eval_shape(init, sample_input)
  return tuple(order)


def _kernels(tree) -> list:
  """The weight matrices / filters in `tree` (leaves named `kernel`), without biases or BN parameters."""
  return [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(tree) if path[-1].key == 'kernel']


def norms(grads, params, updates, order) -> dict:
  """Global and per-group gradient norms, the first layer's weight-gradient norm, parameter and update norms.

  `order` is `layer_order(...)`; the first layer is order[0] (e.g. the stem conv of a ResNet).
  """
  out = {'grad_norm/global': optax.global_norm(grads),
         'grad_norm/first_layer': optax.global_norm(_kernels(grads[order[0]])),
         'param_norm': optax.global_norm(params),
         'update_norm': optax.global_norm(updates)}
  squares = {}
  for name in order:
    group = group_of(name)
    squares[group] = squares.get(group, 0.0) + jnp.square(optax.global_norm(grads[name]))
  out.update({f'grad_norm/{g}': jnp.sqrt(s) for g, s in squares.items()})
  return out
