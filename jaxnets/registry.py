"""Name -> object registries: the one way jaxnets picks models, datasets and optimizers by config."""

import dataclasses
import functools
import inspect


class UnknownNameError(ValueError):
  """A registry lookup for a name that is not registered."""


class Registry:
  """A plain mapping from names to objects whose errors list the valid names."""

  def __init__(self, kind: str):
    self.kind = kind
    self._entries = {}

  def register(self, name: str, value) -> None:
    """Add `value` under `name`; a name can be registered once."""
    if name in self._entries:
      raise ValueError(f'{self.kind} {name!r} is registered twice')
    self._entries[name] = value

  def get(self, name: str):
    """The object registered under `name`, or an error listing the valid names."""
    if name not in self._entries:
      raise UnknownNameError(
          f'unknown {self.kind} {name!r}; valid choices: {", ".join(self.names())}')
    return self._entries[name]

  def fields(self, name: str) -> list[str]:
    """The arguments the entry `name` takes (a Flax module's fields, a function's parameters), sorted."""
    constructor = self.get(name)
    target = constructor.func if isinstance(constructor, functools.partial) else constructor
    if dataclasses.is_dataclass(target):
      names = [f.name for f in dataclasses.fields(target) if f.init and f.name not in ('parent', 'name')]
    else:
      names = [p for p in inspect.signature(target).parameters if p != 'self']
    return sorted(names)

  def create(self, name: str, **kwargs):
    """Call the constructor registered under `name` with `kwargs`; errors name the entry.

    A field the entry does not take is an error naming its valid fields. An entry that is a
    functools.partial fixes some arguments (e.g. 'cifar_plain56' fixes depth and residual): asking it
    for a different value is an error rather than a silent override.
    """
    constructor = self.get(name)
    valid = self.fields(name)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
      raise ValueError(f'{self.kind} {name!r} takes no field {", ".join(map(repr, unknown))}; '
                       f'its fields: {", ".join(valid)}')
    fixed = constructor.keywords if isinstance(constructor, functools.partial) else {}
    clashes = [f'{k}={fixed[k]!r} (asked: {v!r})' for k, v in kwargs.items() if k in fixed and fixed[k] != v]
    if clashes:
      raise ValueError(f'{self.kind} {name!r} fixes {", ".join(clashes)}; drop those fields or '
                       f'choose the general entry')
    try:
      return constructor(**kwargs)
    except TypeError as e:
      raise TypeError(f'{self.kind} {name!r}: {e}') from e

  def names(self) -> list[str]:
    """Every registered name, sorted."""
    return sorted(self._entries)
