"""The report of a study: one table with mean, spread and count over seeds, and its plots.

  python -m launch.report DIR

Trials that differ only by their seed are one setting. DIR/report.md ranks the settings by the task's
headline metric on the test split (mean, sample standard deviation, n), with a column per swept field,
and lists every trial that is not done (failed, diverged, preempted, pending, running) with its status:
none is dropped silently. DIR/report_<field>.png draws the metric against each swept field (mean, and
the spread as error bars); DIR/report_curves.png the test curves of the best setting, one per seed.
"""

import json
import math
import os
import sys

import jax
import matplotlib.pyplot as plt
import numpy as np
from absl import app

from jaxnets import plots, sweeps, tasks
from jaxnets.train.writer import read_metrics
from launch import study as study_lib


def _summary(run_dir: str) -> dict:
  with open(os.path.join(run_dir, 'summary.json')) as f:
    return json.load(f)


def _error(run_dir: str) -> str:
  """The error a run's status.json records, if any."""
  path = os.path.join(run_dir, 'status.json')
  if not os.path.exists(path):
    return ''
  with open(path) as f:
    return json.load(f).get('error', '')


def settings(study) -> dict:
  """{setting overrides (seed left out) as a tuple of items: [trial names]}, in declaration order."""
  groups = {}
  for name, overrides in study.trials.items():
    key = tuple((f, type(v).__name__, _hashable(v)) for f, v in overrides.items() if f != sweeps.SEED_FIELD)
    groups.setdefault(key, []).append(name)
  return groups


def _hashable(value):
  return tuple(value) if isinstance(value, list) else value


def table(study, headline) -> tuple[list[dict], list[dict]]:
  """(one row per setting with the done trials' mean/std/n, sorted best first; the trials not done)."""
  key = f'test_{headline.name}'
  rows, missing = [], []
  for setting, names in settings(study).items():
    done = []
    for name in names:
      status = study.status(name)
      if status == 'done':
        done.append(_summary(study.run_dir(name)))
      else:
        missing.append({'trial': name, 'status': status, 'error': _error(study.run_dir(name))})
    row = {'setting': {f: v for f, _, v in setting}, 'trials': names, 'n': len(done)}
    if done:
      row['mean'], row['std'] = sweeps.mean_and_std([s[key] for s in done])
      row['train_mean'] = float(np.mean([s[f'train_{headline.name}'] for s in done]))
      row['wall_s'] = float(np.mean([s['wall_seconds'] for s in done]))
    rows.append(row)
  ranked = sorted((r for r in rows if r['n']), key=lambda r: -r['mean'] if headline.higher_is_better else r['mean'])
  return ranked + [r for r in rows if not r['n']], missing


def _cell(value) -> str:
  if isinstance(value, float):
    return 'n/a' if math.isnan(value) else f'{value:.4g}'
  return str(value)


def markdown(rows: list[dict], missing: list[dict], headline, fields: list[str]) -> str:
  """report.md: the ranked settings, then the trials not in them."""
  short = sweeps.short_names(fields)
  name = headline.name
  better = 'higher' if headline.higher_is_better else 'lower'
  header = [short[f] for f in fields] + [f'test {name} mean', 'std', 'n', f'train {name} mean', 'wall s']
  lines = [f'Settings ranked by test {name} ({better} is better): mean and sample standard deviation '
           '(n-1) over the seeds that finished.', '',
           '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for r in rows:
    cells = [r['setting'].get(f, '') for f in fields]
    cells += [r.get('mean', math.nan), r.get('std', math.nan), r['n'], r.get('train_mean', math.nan),
              r.get('wall_s', math.nan)]
    lines.append('| ' + ' | '.join(_cell(c) for c in cells) + ' |')
  if missing:
    lines += ['', f'Not done ({len(missing)} trials, not in the means above):', '',
              '| trial | status | error |', '|---|---|---|']
    lines += [f'| {m["trial"]} | {m["status"]} | {_one_line(m["error"])} |' for m in missing]
  return '\n'.join(lines) + '\n'


def _one_line(text: str) -> str:
  """An error as one table cell: no newlines or column bars, at most 200 characters."""
  return ' '.join(text.split()).replace('|', '/')[:200]


def _numeric(values) -> bool:
  return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def plot_field(directory: str, rows: list[dict], field: str, fields: list[str], headline) -> str:
  """The metric against `field`: one line per combination of the other swept fields."""
  fig, ax = plt.subplots(figsize=(6, 4))
  others = [f for f in fields if f != field]
  lines = {}
  for r in (r for r in rows if r['n'] and field in r['setting']):  # A union's settings may lack it.
    lines.setdefault(tuple(r['setting'].get(f) for f in others), []).append(r)
  values = sorted({r['setting'][field] for members in lines.values() for r in members}, key=str)
  numeric = _numeric(values)
  for i, (label, members) in enumerate(lines.items()):
    members = sorted(members, key=lambda r: r['setting'][field] if numeric else values.index(r['setting'][field]))
    x = [r['setting'][field] if numeric else values.index(r['setting'][field]) for r in members]
    ax.errorbar(x, [r['mean'] for r in members], yerr=[0 if math.isnan(r['std']) else r['std'] for r in members],
                marker='o', capsize=3, color=f'C{i}',
                label=', '.join(f'{sweeps.short_names(others)[f]}={v}' for f, v in zip(others, label)) or None)
  if numeric and min(values) > 0 and max(values) / min(values) > 10:
    ax.set_xscale('log')
  if not numeric:
    ax.set_xticks(range(len(values)), [str(v) for v in values])
  short = sweeps.short_names(fields)[field]
  ax.set_xlabel(field)
  ax.set_ylabel(f'test {headline.name} (mean ± std over seeds)')
  ax.set_title(f'test {headline.name} against {short}')
  if len(lines) > 1:
    ax.legend(fontsize=7)
  return plots.save_figure(fig, directory, f'report_{short}.png')


def plot_best_curves(study, row: dict, headline) -> str:
  """The test-subset curve of the headline metric for each seed of the best setting."""
  fig, ax = plt.subplots(figsize=(6, 4))
  for i, name in enumerate(row['trials']):
    steps, values = plots.series(read_metrics(study.run_dir(name)), f'test/{headline.name}')
    ax.plot(steps, values, color=f'C{i}', label=name)
  ax.set_xlabel('step')
  ax.set_ylabel(f'test {headline.name} (test subset)')
  ax.set_title('best setting: ' + ', '.join(f'{f}={v}' for f, v in row['setting'].items()))
  ax.legend(fontsize=7)
  return plots.save_figure(fig, study.directory, 'report_curves.png')


def write(directory: str) -> list[str]:
  """Write report.md and the plots for the study in `directory`; the paths written."""
  study = study_lib.load(directory)
  headline = tasks.headline(study_lib.load_config(study.config_arg, study.overrides).task.name)
  rows, missing = table(study, headline)
  fields = list(dict.fromkeys(f for r in rows for f in r['setting']))
  path = os.path.join(directory, 'report.md')
  with open(path, 'w') as f:
    f.write(markdown(rows, missing, headline, fields))
  written = [path]
  if any(r['n'] for r in rows):
    written += [plot_field(directory, rows, field, fields, headline) for field in fields]
    written.append(plot_best_curves(study, rows[0], headline))
  return written


def main(argv):
  """Write the report of the study directory given as the argument."""
  if len(argv) != 2:
    sys.exit('usage: python -m launch.report DIR')
  jax.config.update('jax_platforms', 'cpu')  # Reading files needs no accelerator.
  try:
    for path in write(argv[1]):
      print(path)
  except FileNotFoundError as e:
    sys.exit(f'launch.report: {e}')


if __name__ == '__main__':
  app.run(main)
