"""'name' or 'name:number' strings: how a config field picks a registered layer piece and its one parameter.

A registry entry is either the finished object (it takes no parameter) or a `Parameterized` recipe
with a default, so 'leaky_relu', 'leaky_relu:0.2' and 'normal:0.01' all resolve the same way.
"""

import math
from typing import Callable, NamedTuple

from jaxnets.registry import Registry


class Parameterized(NamedTuple):
  """A registry entry built from one number: `make(value)`, with `default` when the spec gives none."""
  make: Callable
  default: float


def build(registry: Registry, spec: str):
  """The object `spec` names in `registry`; errors name the spec (unknown names also list the choices)."""
  name, sep, text = spec.partition(':')
  entry = registry.get(name)
  if not isinstance(entry, Parameterized):
    if sep:
      raise ValueError(f'{registry.kind} {spec!r}: {name!r} takes no parameter')
    return entry
  if not sep:
    return entry.make(entry.default)
  try:
    value = float(text)
  except ValueError:
    raise ValueError(f'{registry.kind} {spec!r}: parameter {text!r} is not a number') from None
  if not math.isfinite(value):
    raise ValueError(f'{registry.kind} {spec!r}: parameter {text!r} is not a finite number')
  try:
    return entry.make(value)
  except ValueError as e:
    raise ValueError(f'{registry.kind} {spec!r}: {e}') from None
