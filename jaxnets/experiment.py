"""Multi-run experiments: one config declares several runs that share a recipe, runs them, compares them.

`config.experiment.sweep` names the axes, e.g. 'model.residual=False,True model.depth=20,56': the
product of the axes gives the runs (here four), each a copy of the config with those fields set, run
in `workdir/<run name>`. `config.experiment.variants` names runs that each set several fields, for
ablations and comparisons that are no product: 'sgd: optimizer.name=sgd optimizer.lr=0.1; adam:
optimizer.name=adam optimizer.lr=0.001' (a value is taken whole, commas included). Variants and
sweep axes are crossed. The experiment then writes results.json, results.md and the plot named by
`config.experiment.report` into `workdir`. An empty sweep is a single run in `workdir` itself.
Re-running the same command resumes: finished runs are read back, unfinished ones resume.
"""

import difflib
import json
import math
import os

import jax
from absl import logging

from jaxnets import assignments, data, plots, sweeps, tasks
from jaxnets.train import builder, preemption, warm_start
from jaxnets.train.loop import DivergedError, train_and_evaluate, validate
from jaxnets.train.lock import workdir_lock
from jaxnets.train.record import claim_config, strict_json
from jaxnets.train.writer import read_metrics


class ConfigError(ValueError):
  """A config (or one run of its sweep) names something unknown or sets a bad value; nothing was trained."""


# Groups whose fields are the arguments of the registry entry they name (checked when the run is built),
# so a sweep or variant may set a field the config file left at the entry's default.
OPEN_GROUPS = ('model', 'task', 'optimizer')


def _field(config, path: str, allow_new: bool = False):
  """config['a']['b'] for 'a.b', with an error naming the bad part and the valid fields.

  With `allow_new`, a field missing directly under an open group is allowed (and None returned).
  """
  node = config
  parts = path.split('.')
  for i, part in enumerate(parts):
    if allow_new and i == 1 and len(parts) == 2 and parts[0] in OPEN_GROUPS and part not in node:
      return None
    if not hasattr(node, 'keys') or part not in node:
      valid = ', '.join(sorted(node.keys())) if hasattr(node, 'keys') else '(not a group)'
      raise KeyError(f'unknown config field {path!r} (at {part!r}); valid fields there: {valid}')
    node = node[part]
  return node


def check_fields(config, schema, prefix: str = '') -> None:
  """Every field of `config` must be one of `schema` (the default config), outside the open groups.

  Raises a one-line error naming the unknown field, the valid fields there and the closest match.
  """
  for key in config.keys():
    path = f'{prefix}{key}'
    if key not in schema:
      if prefix.rstrip('.') in OPEN_GROUPS:
        continue
      close = difflib.get_close_matches(key, list(schema.keys()), n=1)
      hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ''
      raise ValueError(f'unknown config field {path!r}{hint}; valid fields there: '
                       f'{", ".join(sorted(schema.keys()))}')
    if hasattr(config[key], 'keys') and hasattr(schema[key], 'keys'):
      check_fields(config[key], schema[key], f'{path}.')


def parse_sweep(config) -> list[tuple[str, list]]:
  """[(field, values), ...] from config.experiment.sweep, each field checked to exist."""
  axes = []
  for token in config.experiment.sweep.split():
    field, sep, values = token.partition('=')
    if not sep or not values:
      raise ValueError(f'bad sweep axis {token!r} in experiment.sweep; expected field=v1,v2,...')
    _field(config, field, allow_new=True)
    axes.append((field, [assignments.parse_value(v) for v in values.split(',')]))
  return axes


def parse_variants(config) -> list[tuple[str, list[tuple[str, object]]]]:
  """[(name, [(field, value), ...]), ...] from config.experiment.variants, each field checked to exist."""
  variants = []
  for text in filter(str.strip, config.experiment.variants.split(';')):
    name, sep, settings_text = text.partition(':')
    name = name.strip()
    if not sep or not name or ' ' in name:
      raise ValueError(f'bad variant {text.strip()!r} in experiment.variants; expected '
                       f"'name: field=value field=value'")
    settings = assignments.parse(settings_text, f'variant {name!r}')
    for field, _ in settings:
      _field(config, field, allow_new=True)
    variants.append((name, settings))
  names = [name for name, _ in variants]
  if len(set(names)) != len(names):
    raise ValueError(f'experiment.variants repeats a name: {", ".join(names)}')
  return variants


def check_overrides(fields, per_run_fields, source: str) -> None:
  """Refuse command-line overrides of fields that each run sets itself (`source`: the variants, sweep or
  search declaring the runs): the run's own value would silently replace the one the user typed."""
  per_run = sorted(set(per_run_fields))
  clash = [field for field in fields if field in per_run]
  if clash:
    raise ValueError(f'--config.{clash[0]} would be replaced in every run: {source} sets it per run '
                     f'({", ".join(per_run)}); set it there instead')


def _set(config, field: str, value) -> None:
  """config.a.b = value for 'a.b'; a locked ConfigDict rejects a value of the wrong type."""
  parent, _, leaf = field.rpartition('.')
  group = _field(config, parent) if parent else config
  if leaf in group:
    group[leaf] = value
  else:  # A new field of an open group (see _field): the config itself is not locked.
    with group.unlocked():
      group[leaf] = value


def apply(config, overrides: dict):
  """A copy of `config` with each dotted field of `overrides` set, and no sweep or variants of its own."""
  run = config.copy_and_resolve_references()
  with run.unlocked():
    run.experiment.sweep = run.experiment.variants = ''
  for field, value in overrides.items():
    _field(run, field, allow_new=True)
    _set(run, field, value)
  return run


def trials(config) -> list[sweeps.Trial]:
  """The runs that config.experiment.variants and .sweep declare: the variants crossed with the product
  of the sweep axes, expanded by jaxnets.sweeps as a config file's get_sweep is."""
  variants = [sweeps.variant(name, dict(settings)) for name, settings in parse_variants(config)]
  axes = [sweeps.sweep(field, values) for field, values in parse_sweep(config)]
  return sweeps.product(([sweeps.chain(variants)] if variants else []) + axes)


def expand(config) -> list[tuple[str, object]]:
  """(run name, run config) for every variant x sweep point; [('', config)] when there are neither."""
  declared = trials(config)
  if declared == [sweeps.Trial()]:
    if config.init.checkpoint.startswith(warm_start.RUN_PREFIX):
      raise ValueError(f'init.checkpoint={config.init.checkpoint!r} names a run of the same experiment; this '
                       'one has a single run: give the source run\'s directory instead')
    return [('', config)]
  names = sweeps.names(declared)
  runs = [(name, apply(config, trial.overrides)) for name, trial in zip(names, declared)]
  for i, (name, run_config) in enumerate(runs):
    source = run_config.init.checkpoint
    if source.startswith(warm_start.RUN_PREFIX):
      run_config.init.checkpoint = warm_start.RUN_PREFIX + _source_run(source, i, declared, names)
  return runs


def _source_run(source: str, index: int, declared: list, names: list[str]) -> str:
  """The run that init.checkpoint='run:VARIANT' of run `index` means: the variant's run at the same point of
  the sweep (the same seed, say), which must come before it; a name that is no variant is a run's name."""
  variant = source[len(warm_start.RUN_PREFIX):]
  if not any(variant in t.labels for t in declared):
    return variant
  own = declared[index]
  point = {f: v for f, v in own.overrides.items() if f not in own.labelled}
  for j, trial in enumerate(declared):
    if variant in trial.labels and {f: v for f, v in trial.overrides.items() if f not in trial.labelled} == point:
      if j >= index:
        raise ValueError(f'run {names[index]!r}: init.checkpoint={source!r} names run {names[j]!r}, which runs '
                         'after it; declare the source variant first')
      return names[j]
  raise ValueError(f'run {names[index]!r}: init.checkpoint={source!r}: variant {variant!r} has no run at the same '
                   f'sweep point ({point})')


def check(config) -> tuple[list, list[str]]:
  """(runs, table columns) of the experiment, every run's config built (all names resolved, every field
  checked, the model traced) so that a bad value anywhere in a sweep fails before anything trains."""
  runs = expand(config)
  # The configured columns and every swept field, so no two rows of the table read alike.
  columns = list(dict.fromkeys([c for c in config.experiment.columns.split(',') if c] +
                               [field for field, _ in parse_sweep(config)]))
  for name, run_config in runs:
    try:
      for column in columns:  # A column must be set in the config: a registry default is not shown.
        _field(run_config, column)
      validate(run_config)
      builder.build(run_config)
    except (KeyError, TypeError, ValueError) as e:
      message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
      raise ConfigError(f'run {name!r}: {message}' if name else message) from e
  return runs, columns


def run(config, workdir: str) -> list[dict]:
  """Run every run of the experiment and write results.json, results.md and the report plot.

  Every run is checked first (see `check`). The workdir is locked against a second process and bound
  to this experiment's config (experiment.json).
  """
  runs, columns = check(config)
  plot = plots.get(config.experiment.report)
  with workdir_lock(workdir), preemption.watch():  # One stop request ends the whole experiment.
    try:
      claim_config(workdir, config, 'experiment.json')
    except ValueError as e:
      raise ConfigError(str(e)) from e
    return _run_all(config, workdir, runs, columns, plot)


def _run_all(config, workdir: str, runs: list, columns: list, plot) -> list[dict]:
  """Train (or read back) every run in turn, writing the results table after each, then the plot."""
  headline = tasks.headline(config.task.name)
  short = sweeps.short_names(columns)
  results, failures = [], []
  for i, (name, run_config) in enumerate(runs):
    run_dir = os.path.join(workdir, name) if name else workdir
    logging.info('run %d/%d: %s -> %s', i + 1, len(runs), name or 'single run', run_dir)
    row = {'name': name or os.path.basename(os.path.normpath(workdir))}
    row.update({short[c]: _field(run_config, c) for c in columns})
    try:
      row.update(train_and_evaluate(run_config, run_dir))
    except DivergedError as e:  # A diverging net is a result: the comparison goes on without it.
      if len(runs) == 1:
        raise
      logging.error('run %s: %s', row['name'], e)
      row['status'] = 'diverged'
      failures.append(f'{row["name"]}: {e}')
    results.append(row)
    if jax.process_index() == 0:
      write_results(workdir, results)
  if jax.process_index() == 0:
    run_dirs = {row['name']: os.path.join(workdir, name) if name else workdir
                for row, (name, _) in zip(results, runs)}
    histories = {name: read_metrics(run_dir) for name, run_dir in run_dirs.items()}
    spec = data.spec(config.data.name)
    # A task whose target is its input (an autoencoder's) colours its pictures by the dataset's labels.
    subset = data.label_subset(spec, config.data.classes)
    classes = data.class_names(spec, tasks.target(config.task.name), subset) or data.class_names(spec, 'label', subset)
    path = plot(plots.Report(results, histories, run_dirs, workdir, headline, classes, spec.meta))
    logging.info('wrote %s, %s and %s', os.path.join(workdir, 'results.md'),
                 os.path.join(workdir, 'results.json'), path)
  if failures:
    raise DivergedError(f'{len(failures)} of {len(runs)} runs diverged (each kept its last finite '
                        f'checkpoint and its logs): ' + '; '.join(failures))
  return results


def write_results(workdir: str, results: list[dict]) -> None:
  """results.json (one object per run) and results.md (the same as a markdown table)."""
  with open(os.path.join(workdir, 'results.json'), 'w') as f:
    json.dump(strict_json(results), f, indent=2, allow_nan=False)
  with open(os.path.join(workdir, 'results.md'), 'w') as f:
    f.write(markdown_table(results))


def _cell(value) -> str:
  """A table cell: floats to 4 significant digits, integers with thousands separators; n/a for a
  metric that does not exist (NaN, or null once read back: the IoU of a class absent everywhere)."""
  if value is None or isinstance(value, float) and math.isnan(value):
    return 'n/a'
  if isinstance(value, float):
    return f'{value:.4g}'
  if isinstance(value, int) and not isinstance(value, bool):
    return f'{value:,}'
  return str(value)


def _table(rows: list[dict], keys: list[str]) -> list[str]:
  """Markdown lines: a header of `keys` and one line per row."""
  lines = ['| ' + ' | '.join(keys) + ' |', '|' + '---|' * len(keys)]
  return lines + ['| ' + ' | '.join(_cell(row.get(k, '')) for k in keys) + ' |' for row in rows]


def seed_table(rows: list[dict]) -> list[str]:
  """Markdown lines: for each group of runs that differ only in their seed, the mean and sample standard
  deviation of every test metric over the seeds that finished; none without a seed column."""
  if not any('seed' in row for row in rows):
    return []
  groups = {}
  for row in rows:
    groups.setdefault(sweeps.seed_group(row['name']), []).append(row)
  metrics = [k for k in dict.fromkeys(k for row in rows for k in row)
             if k.startswith('test_') and '/' not in k and k != 'test_examples']
  out = []
  for group, members in groups.items():
    entry = {'name': group, 'seeds': sum(m.get('status') != 'diverged' for m in members)}
    for key in metrics:
      values = [m[key] for m in members if isinstance(m.get(key), float)]
      if values:
        mean, std = sweeps.mean_and_std(values)
        entry[key] = f'{mean:.4g}' + (f' ± {std:.2g}' if len(values) > 1 else '')
    out.append(entry)
  return ['', 'Mean ± sample standard deviation over seeds:', ''] + _table(out, ['name', 'seeds', *metrics])


def markdown_table(rows: list[dict]) -> str:
  """One row per run, a column per key (union, first-seen order); per-class test metrics (names with a
  '/', e.g. test_iou/Trouser) in a second table; with a seed column, means and spreads over seeds."""
  keys = list(dict.fromkeys(k for row in rows for k in row))
  lines = _table(rows, [k for k in keys if '/' not in k]) + seed_table(rows)
  note = ('\ntrain_*: the task\'s metrics on a fixed subset of the training split (train_examples) in eval '
          'mode (BatchNorm running averages, no augmentation) after the last step; test_*: the whole test '
          'split (test_examples).\n')
  per_class = [k for k in keys if '/' in k and k.startswith('test_')]
  if per_class:
    columns = {k: k[len('test_'):] for k in per_class}
    lines += ['', 'Per class, on the test split:', '']
    lines += _table([{'name': r['name'], **{c: r.get(k, '') for k, c in columns.items()}} for r in rows],
                    ['name', *columns.values()])
  return '\n'.join(lines) + '\n' + note
