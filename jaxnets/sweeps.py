"""Sweeps as data: the trials of a study are the base config plus dotted overrides.

A config file may declare its sweep beside `get_config`:

  def get_sweep(h):
    return h.product([h.sweep('config.optimizer.lr', [0.01, 0.1]),
                      h.random(4, [h.loguniform('config.optimizer.weight_decay', 1e-5, 1e-3)], seed=0),
                      h.seeds([0, 1])])

and `get_search(h)` may return the distributions of a Bayesian search ([h.loguniform(...), ...]).
`h` is this module. `sweep`, `fixed`, `seeds`, `variant`, `random` return lists of Trials, which
`product`, `zip` and `chain` (a union) combine; `uniform`, `loguniform`, `randint` and `choice` give the
Distributions that `random` draws from and Bayesian search explores. A
trial's name comes from its overrides (or a variant's label), so the same sweep always gives the same
run directories. The in-process `config.experiment.sweep` / `variants` strings expand through the same
functions (see jaxnets.experiment).
"""

import builtins
import dataclasses
import functools
import hashlib
import itertools
import math
import re

import numpy as np

SEED_FIELD = 'seed'
MAX_NAME = 96  # Longer trial names become a readable prefix and a hash.


@dataclasses.dataclass(frozen=True)
class Trial:
  """One run: `overrides` (field -> value, in declaration order) and the `labels` of named variants,
  which stand in the name for the fields they set (`labelled`)."""
  overrides: dict = dataclasses.field(default_factory=dict)
  labels: tuple = ()
  labelled: frozenset = frozenset()

  def merge(self, other: 'Trial') -> 'Trial':
    """Both trials' overrides; a field set to two different values is an error naming it."""
    for field in self.overrides.keys() & other.overrides.keys():
      if self.overrides[field] != other.overrides[field]:
        raise ValueError(f'sweep sets {field} twice in one trial: {self.overrides[field]!r} and '
                         f'{other.overrides[field]!r}')
    return Trial(self.overrides | other.overrides, self.labels + other.labels, self.labelled | other.labelled)


def field_path(field: str) -> str:
  """'optimizer.lr' for 'config.optimizer.lr' or 'optimizer.lr'."""
  return field[len('config.'):] if field.startswith('config.') else field


def sweep(field: str, values) -> list[Trial]:
  """One axis: a trial per value of `field`."""
  values = list(values)
  if not values:
    raise ValueError(f'sweep of {field} has no values')
  return [Trial({field_path(field): v}) for v in values]


def fixed(field: str, value) -> list[Trial]:
  """A single trial setting `field` (e.g. to cross with other axes)."""
  return sweep(field, [value])


def seeds(values) -> list[Trial]:
  """The seeds axis: trials that differ only here are repetitions of one setting (launch.report)."""
  return sweep(SEED_FIELD, values)


def variant(name: str, overrides: dict) -> list[Trial]:
  """A named trial setting several fields; its name stands for them in the trial name."""
  if not name or not re.fullmatch(r'[\w.+-]+', name):
    raise ValueError(f'bad variant name {name!r}: use letters, digits and _ . + -')
  overrides = {field_path(f): v for f, v in overrides.items()}
  return [Trial(overrides, (name,), frozenset(overrides))]


def product(axes: list[list[Trial]]) -> list[Trial]:
  """Every combination of one trial from each axis (the first axis varies slowest)."""
  trials = [Trial()]
  for axis in axes:
    trials = [t.merge(a) for t in trials for a in axis]
  return trials


def zip(axes: list[list[Trial]]) -> list[Trial]:  # noqa: A001  Named as the sweep reads: h.zip([...]).
  """The i-th trials of all axes together; the axes must have one length."""
  lengths = {len(a) for a in axes}
  if len(lengths) > 1:
    raise ValueError(f'zip needs axes of one length, got lengths {sorted(lengths)}')
  return [functools.reduce(Trial.merge, trials) for trials in builtins.zip(*axes)]


def chain(axes: list[list[Trial]]) -> list[Trial]:
  """The union: the trials of each axis in turn."""
  return list(itertools.chain.from_iterable(axes))


@dataclasses.dataclass(frozen=True)
class Distribution:
  """A hyperparameter's range for random and Bayesian search: uniform or log-uniform in [low, high]
  (integers when `integer`), or a choice among `values`."""
  field: str
  low: float = 0.0
  high: float = 1.0
  log: bool = False
  integer: bool = False
  values: tuple = ()

  def sample(self, rng: np.random.Generator):
    """One draw from `rng`."""
    if self.values:
      return self.values[int(rng.integers(len(self.values)))]
    if self.integer:
      return int(rng.integers(int(self.low), int(self.high) + 1))
    if self.log:
      return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
    return float(rng.uniform(self.low, self.high))

  def suggest(self, trial):
    """The value an optuna trial suggests for this field."""
    if self.values:
      return trial.suggest_categorical(self.field, list(self.values))
    if self.integer:
      return trial.suggest_int(self.field, int(self.low), int(self.high), log=self.log)
    return trial.suggest_float(self.field, self.low, self.high, log=self.log)


def _range(field: str, low: float, high: float, **kind) -> Distribution:
  """A checked Distribution over [low, high]."""
  if not low < high or kind.get('log') and low <= 0:
    raise ValueError(f'bad range for {field}: [{low}, {high}] (need low < high, and low > 0 for log)')
  return Distribution(field_path(field), low, high, **kind)


def uniform(field: str, low: float, high: float) -> Distribution:
  """Uniform in [low, high]."""
  return _range(field, low, high)


def loguniform(field: str, low: float, high: float) -> Distribution:
  """Uniform in log space (learning rates, weight decays)."""
  return _range(field, low, high, log=True)


def randint(field: str, low: int, high: int) -> Distribution:
  """An integer in [low, high]."""
  return _range(field, low, high, integer=True)


def choice(field: str, values) -> Distribution:
  """One of `values`."""
  if not values:
    raise ValueError(f'choice of {field} has no values')
  return Distribution(field_path(field), values=tuple(values))


def random(n: int, distributions: list[Distribution], seed: int = 0) -> list[Trial]:
  """`n` trials drawn from `distributions` with a fixed `seed`: the same draws every time."""
  rng = np.random.default_rng(seed)
  return [Trial({d.field: d.sample(rng) for d in distributions}) for _ in range(n)]


def short_names(fields) -> dict[str, str]:
  """Each field's short name in trial names and tables: its last part ('lr'), or the whole path where
  that would be ambiguous ('model.name' would read as the run's name; two groups' 'dropout')."""
  fields = list(dict.fromkeys(fields))
  last = [f.rpartition('.')[2] for f in fields]
  return {f: f if s == 'name' or last.count(s) > 1 else s for f, s in builtins.zip(fields, last)}


def _value_text(value) -> str:
  """A value as it appears in a trial name."""
  return repr(value) if isinstance(value, str) and not value else str(value).replace(', ', ',')


def name(trial: Trial, short: dict[str, str]) -> str:
  """The trial's directory name: its labels, then short=value for its other overrides."""
  parts = list(trial.labels) + [f'{short[f]}={_value_text(v)}' for f, v in trial.overrides.items()
                                if f not in trial.labelled]
  text = re.sub(r'[^\w.,=+:()\[\]-]', '_', '-'.join(parts))  # No '/' or spaces in a directory name.
  if len(text) > MAX_NAME:
    digest = hashlib.sha1(repr(sorted(trial.overrides.items())).encode()).hexdigest()[:10]
    text = f'{text[:MAX_NAME - 11]}-{digest}'
  return text


def names(trials: list[Trial]) -> list[str]:
  """Every trial's name; two trials of one name, or of the same overrides in another order, are an
  error (the sweep repeats a trial)."""
  short = short_names(f for t in trials for f in t.overrides if f not in t.labelled)
  result = [name(t, short) for t in trials]
  same = [repr(sorted(t.overrides.items())) for t in trials]
  repeated = sorted({n for n, s in builtins.zip(result, same) if result.count(n) > 1 or same.count(s) > 1})
  if repeated:
    raise ValueError(f'the sweep repeats trials: {", ".join(repeated)}')
  return result


def seed_group(name: str) -> str:
  """A run's name (as `name` writes it) with its seed part removed: the name its runs of other seeds share."""
  return re.sub(rf'(^|-){SEED_FIELD}=[^-]*', '', name).strip('-') or 'all'


def mean_and_std(values: list[float]) -> tuple[float, float]:
  """(mean, sample standard deviation; NaN for a single value): the spread of a setting over its seeds."""
  mean = float(np.mean(values))
  return mean, float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
