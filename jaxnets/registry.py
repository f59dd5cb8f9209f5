"""Name -> object registries: the one way jaxnets picks models, datasets and optimizers by config."""


class UnknownNameError(ValueError):
  """A registry lookup for a name that is not registered."""


class Registry:
  """A plain mapping from names to objects whose errors list the valid names."""

  def __init__(self, kind: str):
    self.kind = kind
    self._entries = {}

  def register(self, name: str, value) -> None:
    if name in self._entries:
      raise ValueError(f'{self.kind} {name!r} is registered twice')
    self._entries[name] = value

  def get(self, name: str):
    if name not in self._entries:
      raise UnknownNameError(
          f'unknown {self.kind} {name!r}; valid choices: {", ".join(self.names())}')
    return self._entries[name]

  def names(self) -> list[str]:
    return sorted(self._entries)
