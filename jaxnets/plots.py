"""Report plots written as PNG into the experiment workdir; `config.experiment.report` picks one by name.

Every report draws the paper-style curves: training error dashed (mini-batch error, averaged over each
log interval), test error solid (the test subset during training, the whole test split at the end),
and gradients.png: the first layer's gradient norm per run, where a vanishing or exploding gradient shows.
"""

import math
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
  """Training loss (log scale) and error curves of all runs; writes curves.png and gradients.png."""
  fig, (loss_ax, error_ax) = plt.subplots(1, 2, figsize=(13, 5))
  for i, row in enumerate(rows):
    loss_ax.semilogy(*_series(histories[row['name']], 'train/loss'), color=f'C{i}', label=row['name'])
  loss_ax.set_xlabel('iterations')
  loss_ax.set_ylabel('training loss (mean over each log interval)')
  loss_ax.grid(alpha=0.3, which='both')
  loss_ax.legend()
  _draw_runs(error_ax, rows, histories, lambda row: row['name'])
  error_ax.set_title('dashed: training error, solid: test error')
  gradients(rows, histories, workdir, lambda row: row['name'])
  return _save(fig, workdir, 'curves.png')


def _layer_norms(history: list[dict]) -> tuple[list, list, list]:
  """(groups input to output, gradient norms at the first step, in the last logged window)."""
  init = next((r for r in history if r['step'] == 0), None)
  if init is None:
    return [], [], []
  groups = [k[len('init/grad_norm/'):] for k in init if k.startswith('init/grad_norm/')]
  logged = [r for r in history if 'train/grad_norm/global' in r]
  last = [logged[-1][f'train/grad_norm/{g}'] for g in groups] if logged else [math.nan] * len(groups)
  return groups, [init[f'init/grad_norm/{g}'] for g in groups], last


def layer_gradients(rows: list[dict], histories: dict, workdir: str) -> str:
  """Gradient norm per layer, input to output, at initialization and after training; writes
  layer_gradients.png (plus curves.png and gradients.png). A vanishing gradient is a line falling
  towards the input."""
  fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
  for i, row in enumerate(rows):
    groups, first, last = _layer_norms(histories[row['name']])
    for ax, values in zip(axes, (first, last)):
      ax.semilogy(range(len(groups)), values, 'o-', color=f'C{i}', label=row['name'])
  for ax, when in zip(axes, ('at initialization (first step)', 'after training (last log interval)')):
    ax.set_title(f'gradient norm per layer, {when}')
    ax.set_xlabel('layer (input -> output)')
    ax.grid(alpha=0.3, which='both')
    if groups:
      ax.set_xticks(range(len(groups)), groups, rotation=45, ha='right', fontsize=8)
  axes[0].set_ylabel('||dL/dW|| of the layer')
  axes[0].legend(fontsize=8)
  curves(rows, histories, workdir)
  return _save(fig, workdir, 'layer_gradients.png')


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
PLOTS.register('layer_gradients', layer_gradients)


def get(name: str):
  """The plot function registered under `name`."""
  return PLOTS.get(name)


def names() -> list[str]:
  """Every registered report plot."""
  return PLOTS.names()
