"""Report plots written as PNG into the experiment workdir; `config.experiment.report` picks one by name.

Every report draws the paper-style curves: training error dashed (mini-batch error, averaged over each
log interval), test error solid (the test subset during training, the whole test split at the end),
and gradients.png: the first layer's gradient norm per run, where a vanishing or exploding gradient shows.
"""

import os

import matplotlib

matplotlib.use('Agg')  # Files only; no display is needed or assumed.
import matplotlib.pyplot as plt  # noqa: E402

from jaxnets.registry import Registry  # noqa: E402

PLOTS = Registry('report plot')


def _series(history: list[dict], key: str, scale: float = 1.0):
  """(steps, values * scale) of the records that logged `key`."""
  points = [(r['step'], r[key]) for r in history if key in r]
  return [p[0] for p in points], [scale * p[1] for p in points]


def _draw_runs(ax, rows: list[dict], histories: dict, label) -> None:
  """Training error dashed and test error solid for each run, one colour per run."""
  for i, row in enumerate(rows):
    history = histories[row['name']]
    color = f'C{i}'
    steps, train = _series(history, 'train/error', 100)
    ax.plot(steps, train, '--', color=color, linewidth=1)
    steps, test = _series(history, 'test/error', 100)
    final = _series(history, 'final/test_error', 100)
    ax.plot(steps + final[0], test + final[1], '-', color=color, linewidth=2, label=label(row))
  ax.set_xlabel('iterations')
  ax.set_ylabel('error (%)')
  ax.grid(alpha=0.3)
  ax.legend()


def gradients(rows: list[dict], histories: dict, workdir: str, label) -> str:
  """The first layer's weight-gradient norm against iterations (log scale); writes gradients.png."""
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for i, row in enumerate(rows):
    steps, norms = _series(histories[row['name']], 'train/grad_norm/first_layer')
    ax.semilogy(steps, norms, color=f'C{i}', label=label(row))
  ax.set_xlabel('iterations')
  ax.set_ylabel('gradient norm at the first layer')
  ax.set_title('gradient reaching the first layer (mean over each log interval)')
  ax.grid(alpha=0.3, which='both')
  ax.legend()
  return _save(fig, workdir, 'gradients.png')


def curves(rows: list[dict], histories: dict, workdir: str) -> str:
  """All runs in one panel; writes curves.png and gradients.png."""
  fig, ax = plt.subplots(figsize=(7, 5))
  _draw_runs(ax, rows, histories, lambda row: row['name'])
  ax.set_title('dashed: training error, solid: test error')
  gradients(rows, histories, workdir, lambda row: row['name'])
  return _save(fig, workdir, 'curves.png')


def degradation(rows: list[dict], histories: dict, workdir: str) -> str:
  """He et al. (2016) Fig. 6: plain nets left, residual nets right; writes degradation.png, gradients.png."""
  missing = {'depth', 'residual'} - set(rows[0])
  if missing:
    raise ValueError(f"the 'degradation' report needs experiment.columns to include "
                     f"{', '.join('model.' + m for m in sorted(missing))}")
  fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
  for ax, residual in zip(axes, (False, True)):
    group = sorted((r for r in rows if r['residual'] == residual), key=lambda r: r['depth'])
    kind = 'ResNet' if residual else 'plain'
    _draw_runs(ax, group, histories, lambda row, kind=kind: f'{kind}-{row["depth"]}')
    ax.set_title(f'{kind} networks (dashed: training error, solid: test error)')
  gradients(rows, histories, workdir,
            lambda row: f'{"ResNet" if row["residual"] else "plain"}-{row["depth"]}')
  return _save(fig, workdir, 'degradation.png')


def _save(fig, workdir: str, name: str) -> str:
  path = os.path.join(workdir, name)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


PLOTS.register('curves', curves)
PLOTS.register('degradation', degradation)


def get(name: str):
  """The plot function registered under `name`."""
  return PLOTS.get(name)


def names() -> list[str]:
  """Every registered report plot."""
  return PLOTS.names()
