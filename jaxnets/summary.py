"""A model's size and cost per layer: parameters and multiply-adds, from an abstract trace (no real arrays).

The model is initialized under `jax.eval_shape`, so ResNet-152 at 224x224 costs seconds and no memory,
while `flax.linen.intercept_methods` records every layer call with its output shape. Multiply-adds
are counted as He et al. (2016) count FLOPs, per image in eval mode: a convolution costs
out_h * out_w * out_channels * (kh * kw * in_channels / groups), a dense layer in * out (batched over
any extra positions), a transposed convolution in_h * in_w * kh * kw * in_channels * out_channels.
BatchNorm, activations, pooling, additions and biases are not counted. Parameters are the 'params'
collection only (BatchNorm running statistics are state, not parameters).
"""

import collections.abc
import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

NOTE = ('mult-adds: multiply-accumulates of Conv, ConvTranspose and Dense layers per image, as He et al.\n'
        '(2016) count FLOPs; BatchNorm, activations, pooling, additions and biases are not counted')


@dataclasses.dataclass(frozen=True)
class Layer:
  """One call of a layer that owns parameters or costs multiply-adds."""
  path: str
  kind: str
  output_shape: str
  params: int
  mult_adds: int


@dataclasses.dataclass(frozen=True)
class Summary:
  """The layers in call order and the totals over them (params: every parameter of the model)."""
  layers: tuple
  params: int
  mult_adds: int


def parse_shape(text: str) -> tuple:
  """'224,224,3' -> (224, 224, 3): one input as H,W,C (an image) or N (a vector); errors name the value.

  Two numbers (224,224) are refused, not read as H,W: the zoo's layers take their input channels from
  the data when Flax initializes them (ResNet-20 is the same code on 1-channel Fashion-MNIST and
  3-channel CIFAR-10), so no model declares the channels it expects, and filling in a guess would print
  another first layer's parameters and mult-adds without a word. Taken as given, a convolution read
  224,224 as one row of 224 pixels of 224 channels and printed that net's totals.
  """
  try:
    shape = tuple(int(part) for part in text.split(','))
  except ValueError:
    shape = ()
  if not shape or min(shape) < 1:
    raise ValueError(f'input shape {text!r} is not a comma-separated list of positive integers '
                     f'(e.g. 224,224,3)')
  if len(shape) not in (1, 3):
    raise ValueError(f'input shape {text!r} has {len(shape)} numbers; give H,W,C for an image (e.g. '
                     f'224,224,3 for RGB, 28,28,1 for grayscale) or N for a vector (e.g. 784)')
  return shape


def _name(path: tuple) -> str:
  """'stage1_block0/branch/conv1' for a module path; '(root)' for the model itself."""
  return '/'.join(path) or '(root)'


def _node(params, path: tuple):
  """The subtree of `params` at module `path`, or {} for a module without parameters."""
  for name in path:
    params = params.get(name, {})
  return params


def _own_params(node) -> int:
  """The number of parameters held directly by a module (not by its submodules), given its subtree."""
  return sum(v.size for v in node.values() if not isinstance(v, collections.abc.Mapping))


def _owners(node, path: tuple = ()):
  """Every module path under `node` that holds parameters directly, in tree order."""
  if _own_params(node):
    yield path
  for name, value in node.items():
    if isinstance(value, collections.abc.Mapping):
      yield from _owners(value, path + (name,))


def _mult_adds(module, kernel, input_shape: tuple, output_shape: tuple) -> int:
  """Multiply-adds of one call of a Conv, ConvTranspose or Dense layer; 0 for any other layer."""
  if isinstance(module, (nn.Conv, nn.Dense)):
    return math.prod(output_shape[1:-1]) * kernel.size
  if isinstance(module, nn.ConvTranspose):
    return math.prod(input_shape[1:-1]) * kernel.size
  return 0


def summarize(model: nn.Module, input_shape) -> Summary:
  """Trace `model` on one image of `input_shape` (no batch axis) abstractly; per-layer and total cost.

  A model that can scan its blocks is summarized unrolled (same parameters), since a scanned body is traced
  once and would count one layer's cost for the whole stage.
  """
  if 'scan' in {f.name for f in dataclasses.fields(model)}:
    model = model.clone(scan=False)
  calls = []

  def record(next_fun, args, kwargs, context):
    output = next_fun(*args, **kwargs)
    if context.method_name == '__call__':
      in_shape = jnp.shape(args[0]) if args and hasattr(args[0], 'shape') else ()
      out_shapes = [jnp.shape(leaf) for leaf in jax.tree.leaves(output)]
      calls.append((context.module, context.module.path, in_shape, out_shapes))
    return output

  def init():
    with nn.intercept_methods(record):
      return model.init(jax.random.key(0), jnp.zeros((1, *input_shape)), train=False)

  params = jax.eval_shape(init).get('params', {})
  layers, seen = [], set()
  for module, path, in_shape, out_shapes in calls:
    node = _node(params, path)
    own = _own_params(node)
    cost = _mult_adds(module, node.get('kernel'), in_shape, out_shapes[0]) if out_shapes else 0
    if own or cost:
      shown = ' '.join('x'.join(map(str, shape[1:])) for shape in out_shapes)
      shared = path in seen  # A module called again: its parameters are in its first row.
      layers.append(Layer(_name(path), type(module).__name__, shown, 0 if shared else own, cost))
      seen.add(path)
  layers += [Layer(_name(p), '(not called)', '-', _own_params(_node(params, p)), 0)
             for p in _owners(params) if p not in seen]
  total = sum(leaf.size for leaf in jax.tree.leaves(params))
  return Summary(tuple(layers), total, sum(layer.mult_adds for layer in layers))


def _human(n: int) -> str:
  """1814073856 -> '1.81G'."""
  for unit, scale in (('G', 1e9), ('M', 1e6), ('K', 1e3)):
    if n >= scale:
      return f'{n / scale:.2f}{unit}'
  return str(n)


def format_table(summary: Summary) -> str:
  """The per-layer table, the note on what is counted, and a last line `total params: N  mult-adds: M`."""
  header = ('layer', 'type', 'output', 'params', 'mult-adds')
  rows = [header] + [(l.path, l.kind, l.output_shape, f'{l.params:,}', f'{l.mult_adds:,}')
                     for l in summary.layers]
  widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
  line = lambda row: '  '.join(cell.ljust(w) if i < 3 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
  rule = '-' * len(line(header))
  return '\n'.join([line(header), rule, *map(line, rows[1:]), rule, NOTE,
                    f'params {_human(summary.params)}, mult-adds {_human(summary.mult_adds)}',
                    f'total params: {summary.params}  mult-adds: {summary.mult_adds}'])
