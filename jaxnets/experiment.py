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

import itertools
import json
import os

import jax
from absl import logging

from jaxnets import assignments, plots
from jaxnets.train.loop import DivergedError, train_and_evaluate
from jaxnets.train.writer import read_metrics


def _field(config, path: str):
  """config['a']['b'] for 'a.b', with an error naming the bad part and the valid fields."""
  node = config
  for part in path.split('.'):
    if not hasattr(node, 'keys') or part not in node:
      valid = ', '.join(sorted(node.keys())) if hasattr(node, 'keys') else '(not a group)'
      raise KeyError(f'unknown config field {path!r} (at {part!r}); valid fields there: {valid}')
    node = node[part]
  return node


def parse_sweep(config) -> list[tuple[str, list]]:
  """[(field, values), ...] from config.experiment.sweep, each field checked to exist."""
  axes = []
  for token in config.experiment.sweep.split():
    field, sep, values = token.partition('=')
    if not sep or not values:
      raise ValueError(f'bad sweep axis {token!r} in experiment.sweep; expected field=v1,v2,...')
    _field(config, field)
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
      _field(config, field)
    variants.append((name, settings))
  names = [name for name, _ in variants]
  if len(set(names)) != len(names):
    raise ValueError(f'experiment.variants repeats a name: {", ".join(names)}')
  return variants


def _set(config, field: str, value) -> None:
  """config.a.b = value for 'a.b'; a locked ConfigDict rejects a value of the wrong type."""
  parent, _, leaf = field.rpartition('.')
  (_field(config, parent) if parent else config)[leaf] = value


def expand(config) -> list[tuple[str, object]]:
  """(run name, run config) for every variant x sweep point; [('', config)] when there are neither."""
  variants = parse_variants(config) or [('', [])]
  axes = parse_sweep(config)
  if not axes and variants == [('', [])]:
    return [('', config)]
  runs = []
  for (variant, settings), values in itertools.product(
      variants, itertools.product(*(vals for _, vals in axes))):
    run = config.copy_and_resolve_references()
    with run.unlocked():
      run.experiment.sweep = run.experiment.variants = ''
    for field, value in settings:
      _set(run, field, value)
    parts = [variant] if variant else []
    for (field, _), value in zip(axes, values):
      _set(run, field, value)
      parts.append(f'{field.rpartition(".")[2]}={value}')
    runs.append(('-'.join(parts), run))
  return runs


def run(config, workdir: str) -> list[dict]:
  """Run every run of the experiment and write results.json, results.md and the report plot."""
  runs = expand(config)
  columns = [c for c in config.experiment.columns.split(',') if c]
  for column in columns:
    _field(config, column)
  plot = plots.get(config.experiment.report)
  results, failures = [], []
  for i, (name, run_config) in enumerate(runs):
    run_dir = os.path.join(workdir, name) if name else workdir
    logging.info('run %d/%d: %s -> %s', i + 1, len(runs), name or 'single run', run_dir)
    row = {'name': name or os.path.basename(os.path.normpath(workdir))}
    row.update({c.rpartition('.')[2]: _field(run_config, c) for c in columns})
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
    histories = {row['name']: read_metrics(os.path.join(workdir, name) if name else workdir)
                 for row, (name, _) in zip(results, runs)}
    path = plot(results, histories, workdir)
    logging.info('wrote %s, %s and %s', os.path.join(workdir, 'results.md'),
                 os.path.join(workdir, 'results.json'), path)
  if failures:
    raise DivergedError(f'{len(failures)} of {len(runs)} runs diverged (each kept its last finite '
                        f'checkpoint and its logs): ' + '; '.join(failures))
  return results


def write_results(workdir: str, results: list[dict]) -> None:
  """results.json (one object per run) and results.md (the same as a markdown table)."""
  with open(os.path.join(workdir, 'results.json'), 'w') as f:
    json.dump(results, f, indent=2)
  with open(os.path.join(workdir, 'results.md'), 'w') as f:
    f.write(markdown_table(results))


def _cell(value) -> str:
  """A table cell: floats to 4 significant digits, integers with thousands separators."""
  if isinstance(value, float):
    return f'{value:.4g}'
  if isinstance(value, int) and not isinstance(value, bool):
    return f'{value:,}'
  return str(value)


def markdown_table(rows: list[dict]) -> str:
  """A markdown table with one row per run and a column per key (union, in first-seen order)."""
  keys = list(dict.fromkeys(k for row in rows for k in row))
  lines = ['| ' + ' | '.join(keys) + ' |', '|' + '---|' * len(keys)]
  lines += ['| ' + ' | '.join(_cell(row.get(k, '')) for k in keys) + ' |' for row in rows]
  note = ('\ntrain_error: error on a fixed subset of the training split (train_error_examples) in '
          'eval mode (BatchNorm running averages, no augmentation) after the last step; '
          'test_error: the whole test split.\n')
  return '\n'.join(lines) + '\n' + note
