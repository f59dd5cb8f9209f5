"""Report plots written as PNG into the experiment workdir; `config.experiment.report` picks one by name.

Every report draws the paper-style curves of the task's headline metric (error, mIoU, AP...): training
dashed (mini-batch values averaged over each log interval, where the task logs it in training), test
solid (the test subset during training, the whole test split at the end), and gradients.png: the first
layer's gradient norm per run, where a vanishing or exploding gradient shows. The picture reports
(segmentation, detection) draw each run's saved predictions for a few test examples.
"""

import dataclasses
import math
import os

import matplotlib

matplotlib.use('Agg')  # Files only; no display is needed or assumed.
import matplotlib.patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxnets import sweeps  # noqa: E402
from jaxnets.data.specs import EOS_ID, MASK_IGNORE  # noqa: E402
from jaxnets.registry import Registry  # noqa: E402

PLOTS = Registry('report plot')


@dataclasses.dataclass(frozen=True)
class Report:
  """What a report plot draws from: one results row per run, each run's logged metrics and directory."""
  rows: list
  histories: dict  # run name -> metrics.jsonl records
  run_dirs: dict  # run name -> its directory (predictions.npz, ...)
  workdir: str  # Where the PNGs go.
  headline: object  # The task's Headline: the metric the curves show.
  class_names: tuple = ()  # Names of the task's classes (legends, box labels).
  meta: dict = dataclasses.field(default_factory=dict)  # The dataset's facts (e.g. seq2seq source tokens).

  def predictions(self) -> list[tuple[str, dict]]:
    """(run name, its predictions.npz) of every run that finished (a diverged one has none): a few test
    examples, framed as the model sees them, and the model's predictions."""
    runs = []
    for row in self.rows:
      path = os.path.join(self.run_dirs[row['name']], 'predictions.npz')
      if os.path.exists(path):
        with np.load(path) as saved:
          runs.append((row['name'], dict(saved)))
    return runs


def series(history: list[dict], key: str, scale: float = 1.0):
  """(steps, values * scale) of the records that logged `key`."""
  points = [(r['step'], r[key]) for r in history if r.get(key) is not None]
  return [p[0] for p in points], [scale * p[1] for p in points]


def _styles(rows: list[dict], label=lambda row: row['name']) -> list[tuple]:
  """(colour, legend label or None) of each run: one colour per group of runs that differ only in their
  seed, labelled once ('gru (3 seeds)'); up to 20 groups get distinct colours."""
  groups = [sweeps.seed_group(row['name']) for row in rows]
  order = list(dict.fromkeys(groups))
  palette = plt.cm.tab10 if len(order) <= 10 else plt.cm.tab20
  styles = []
  for row, group in zip(rows, groups):
    first = groups.index(group) == len(styles)
    count = groups.count(group)
    text = (f'{group} ({count} seeds)' if count > 1 else label(row)) if first else None
    styles.append((palette(order.index(group) % palette.N), text))
  return styles


def _draw_runs(ax, report: Report, rows: list[dict], label) -> None:
  """The headline metric in training dashed and on the test split solid for each run, one colour per run
  (per group of seeds)."""
  name = report.headline.name
  for row, (color, text) in zip(rows, _styles(rows, label)):
    history = report.histories[row['name']]
    steps, train = series(history, f'train/{name}', 100)
    ax.plot(steps, train, '--', color=color, linewidth=1)
    steps, test = series(history, f'test/{name}', 100)
    final = series(history, f'final/test_{name}', 100)
    ax.plot(steps + final[0], test + final[1], '-', color=color, linewidth=2, label=text)
  ax.set_xlabel('iterations')
  ax.set_ylabel(f'{name} (%)')
  ax.grid(alpha=0.3)
  ax.legend()


def _curve_title(report: Report) -> str:
  """What the headline curves show: dashed training values only where the task logs them per batch."""
  name = report.headline.name
  logged = any(f'train/{name}' in r for history in report.histories.values() for r in history)
  return f'dashed: training {name}, solid: test {name}' if logged else f'test {name}'


def gradients(report: Report, label) -> str:
  """The first layer's weight-gradient norm against iterations (log scale); writes gradients.png."""
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for row, (color, text) in zip(report.rows, _styles(report.rows, label)):
    steps, norms = series(report.histories[row['name']], 'train/grad_norm/first_layer')
    ax.semilogy(steps, norms, color=color, label=text)
  ax.set_xlabel('iterations')
  ax.set_ylabel('gradient norm at the first layer')
  ax.set_title('gradient reaching the first layer (mean over each log interval)')
  ax.grid(alpha=0.3, which='both')
  ax.legend()
  return save_figure(fig, report.workdir, 'gradients.png')


def grad_norms(report: Report) -> str:
  """The whole gradient's norm (before any clipping) against iterations, log scale; writes grad_norms.png
  (plus curves.png and gradients.png). Exploding gradients show as spikes, a stalled net as a collapse."""
  fig, ax = plt.subplots(figsize=(9, 4.5))
  for row, (color, text) in zip(report.rows, _styles(report.rows)):
    ax.semilogy(*series(report.histories[row['name']], 'train/grad_norm/global'), color=color, label=text)
  ax.set_xlabel('iterations')
  ax.set_ylabel('global gradient norm (before clipping)')
  ax.set_title('gradient norm (mean over each log interval)')
  ax.grid(alpha=0.3, which='both')
  ax.legend()
  curves(report)
  return save_figure(fig, report.workdir, 'grad_norms.png')


def curves(report: Report) -> str:
  """Training loss (log scale) and headline curves of all runs; writes curves.png and gradients.png."""
  fig, (loss_ax, metric_ax) = plt.subplots(1, 2, figsize=(13, 5))
  for row, (color, text) in zip(report.rows, _styles(report.rows)):
    loss_ax.semilogy(*series(report.histories[row['name']], 'train/loss'), color=color, label=text)
  loss_ax.set_xlabel('iterations')
  loss_ax.set_ylabel('training loss (mean over each log interval)')
  loss_ax.grid(alpha=0.3, which='both')
  loss_ax.legend()
  _draw_runs(metric_ax, report, report.rows, lambda row: row['name'])
  metric_ax.set_title(_curve_title(report))
  gradients(report, lambda row: row['name'])
  return save_figure(fig, report.workdir, 'curves.png')


def _layer_norms(history: list[dict]) -> tuple[list, list, list]:
  """(groups input to output, gradient norms at the first step, in the last logged window)."""
  init = next((r for r in history if r['step'] == 0), None)
  if init is None:
    return [], [], []
  groups = [k[len('init/grad_norm/'):] for k in init if k.startswith('init/grad_norm/')]
  logged = [r for r in history if 'train/grad_norm/global' in r]
  last = [logged[-1][f'train/grad_norm/{g}'] for g in groups] if logged else [math.nan] * len(groups)
  return groups, [init[f'init/grad_norm/{g}'] for g in groups], last


def layer_gradients(report: Report) -> str:
  """Gradient norm per layer, input to output, at initialization and after training; writes
  layer_gradients.png (plus curves.png and gradients.png). A vanishing gradient is a line falling
  towards the input."""
  fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
  for row, (color, text) in zip(report.rows, _styles(report.rows)):
    groups, first, last = _layer_norms(report.histories[row['name']])
    for ax, values in zip(axes, (first, last)):
      ax.semilogy(range(len(groups)), values, 'o-', color=color, label=text)
  for ax, when in zip(axes, ('at initialization (first step)', 'after training (last log interval)')):
    ax.set_title(f'gradient norm per layer, {when}')
    ax.set_xlabel('layer (input -> output)')
    ax.grid(alpha=0.3, which='both')
    if groups:
      ax.set_xticks(range(len(groups)), groups, rotation=45, ha='right', fontsize=8)
  axes[0].set_ylabel('||dL/dW|| of the layer')
  axes[0].legend(fontsize=8)
  curves(report)
  return save_figure(fig, report.workdir, 'layer_gradients.png')


def degradation(report: Report) -> str:
  """He et al. (2016) Fig. 6: plain nets left, residual nets right; writes degradation.png, gradients.png."""
  rows = report.rows
  missing = {'depth', 'residual'} - set(rows[0])
  if missing:
    raise ValueError(f"the 'degradation' report needs experiment.columns to include "
                     f"{', '.join('model.' + m for m in sorted(missing))}")
  fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
  for ax, residual in zip(axes, (False, True)):
    group = sorted((r for r in rows if r['residual'] == residual), key=lambda r: r['depth'])
    kind = 'ResNet' if residual else 'plain'
    _draw_runs(ax, report, group, lambda row, kind=kind: f'{kind}-{row["depth"]}')
    ax.set_title(f'{kind} networks ({_curve_title(report)})')
  gradients(report, lambda row: f'{"ResNet" if row["residual"] else "plain"}-{row["depth"]}')
  return save_figure(fig, report.workdir, 'degradation.png')


PICTURE_EXAMPLES = 6  # Test examples a picture report shows per run.


def _show_image(ax, image) -> None:
  """A stored uint8 image (grey or RGB) without axes."""
  ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap='gray', vmin=0, vmax=255)
  ax.set_xticks([])
  ax.set_yticks([])


def _mask_colors(count: int):
  """A colormap of `count` class colours (class 0 black, the scenes' background), then white (unlabelled)."""
  colors = ['black'] + [plt.cm.tab10(i % 10) for i in range(count - 1)]
  return matplotlib.colors.ListedColormap(colors + ['white'])


def _show_mask(ax, mask, cmap) -> None:
  """A mask of class indices in the class colours, unlabelled pixels white."""
  ignore = cmap.N - 1
  ax.imshow(np.where(mask == MASK_IGNORE, ignore, mask), cmap=cmap, vmin=0, vmax=ignore,
            interpolation='nearest')
  ax.set_xticks([])
  ax.set_yticks([])


def segmentation(report: Report) -> str:
  """Test inputs, true masks and each run's predicted masks side by side; writes segmentation.png
  (plus curves.png and gradients.png)."""
  names = report.class_names
  runs = report.predictions()
  if not runs:
    return curves(report)
  first = runs[0][1]
  count = min(PICTURE_EXAMPLES, len(first['image']))
  columns = ['input', 'true mask'] + [f'{name}\n(predicted)' for name, _ in runs]
  fig, axes = plt.subplots(count, len(columns), figsize=(2 * len(columns), 2 * count + 1), squeeze=False)
  cmap = _mask_colors(len(names))
  for i in range(count):
    _show_image(axes[i, 0], first['image'][i])
    _show_mask(axes[i, 1], first['mask'][i], cmap)
    for j, (_, saved) in enumerate(runs):
      _show_mask(axes[i, 2 + j], saved['predicted_mask'][i], cmap)
  for ax, title in zip(axes[0], columns):
    ax.set_title(title, fontsize=9)
  handles = [matplotlib.patches.Patch(color=cmap(k), label=name) for k, name in enumerate(names)]
  fig.tight_layout(rect=(0, 0.07, 1, 1))
  fig.legend(handles=handles, loc='lower center', ncol=min(6, len(names)), fontsize=8)
  curves(report)
  return save_figure(fig, report.workdir, 'segmentation.png', tight=False)


def _draw_boxes(ax, boxes, classes, names, color, scores=None) -> None:
  """Rectangles for (x1, y1, x2, y2) boxes, labelled with their class (and score): truth above, detections below."""
  for k, (x1, y1, x2, y2) in enumerate(boxes):
    ax.add_patch(matplotlib.patches.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False,
                                              edgecolor=color, linewidth=1.2))
    label = names[classes[k]] if scores is None else f'{names[classes[k]]} {scores[k]:.2f}'
    ax.text(x1 - 0.5, y1 - 1 if scores is None else y2, label, color=color, fontsize=7,
            va='bottom' if scores is None else 'top', bbox={'facecolor': 'black', 'alpha': 0.6, 'pad': 0.5,
                                                            'linewidth': 0})


DISPLAY_SCORE = 0.3  # Detections drawn in the picture report score at least this (all count in AP).
PICTURE_COLUMNS = 4


def detection(report: Report) -> str:
  """Test scenes with their true boxes (green) and each run's detections scoring >= DISPLAY_SCORE (red);
  a block of rows per run; writes detection.png (plus curves.png and gradients.png)."""
  names = report.class_names
  runs = report.predictions()
  if not runs:
    return curves(report)
  count = min(2 * PICTURE_COLUMNS, len(runs[0][1]['image']))
  rows_per_run = -(-count // PICTURE_COLUMNS)
  fig, axes = plt.subplots(rows_per_run * len(runs), PICTURE_COLUMNS,
                           figsize=(3.2 * PICTURE_COLUMNS, 3.3 * rows_per_run * len(runs)), squeeze=False)
  for r, (name, saved) in enumerate(runs):
    for i in range(rows_per_run * PICTURE_COLUMNS):
      ax = axes[r * rows_per_run + i // PICTURE_COLUMNS, i % PICTURE_COLUMNS]
      if i >= count:
        ax.axis('off')
        continue
      _show_image(ax, saved['image'][i])
      real = saved['box_mask'][i]
      _draw_boxes(ax, saved['boxes'][i][real], saved['classes'][i][real], names, 'lime')
      shown = saved['predicted_keep'][i] & (saved['predicted_scores'][i] >= DISPLAY_SCORE)
      _draw_boxes(ax, saved['predicted_boxes'][i][shown], saved['predicted_classes'][i][shown], names, 'red',
                  saved['predicted_scores'][i][shown])
    axes[r * rows_per_run, 0].set_ylabel(name, fontsize=10)
  fig.suptitle(f'green: true boxes, red: detections scoring >= {DISPLAY_SCORE} (class, score)', fontsize=11)
  curves(report)
  return save_figure(fig, report.workdir, 'detection.png')


def forecast(report: Report) -> str:
  """The held-out stretch: the truth, the persistence baseline and each run's one-step-ahead forecasts, in
  the series' units; writes forecast.png (plus curves.png and gradients.png)."""
  runs = report.predictions()
  if not runs:
    return curves(report)
  fig, ax = plt.subplots(figsize=(12, 4.5))
  first = runs[0][1]
  ax.plot(first['time'], first['predicted_truth'][:, 0], '-', color='black', linewidth=2, label='truth')
  ax.plot(first['time'], first['predicted_persistence'][:, 0], ':', color='grey', label='persistence')
  drawn = {}  # One run per group of seeds (its first), to keep the lines apart.
  for name, saved in runs:
    group = sweeps.seed_group(name)
    if group not in drawn:
      drawn[group] = name
      ax.plot(saved['time'], saved['predicted_target'][:, 0], '-', color=f'C{len(drawn) - 1}', linewidth=1,
              label=name)
  ax.set_xlabel('time')
  ax.set_ylabel('value (series units)')
  ax.set_title('one-step-ahead forecasts over the held-out stretch (one seed per model)')
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, ncol=2)
  curves(report)
  return save_figure(fig, report.workdir, 'forecast.png')


def _decoded_steps(tokens) -> int:
  """How many output steps a decoded sequence has: through its first <eos>, else all."""
  ends = np.flatnonzero(tokens == EOS_ID)
  return int(ends[0]) + 1 if len(ends) else len(tokens)


def attention(report: Report) -> str:
  """Each attention run's weights on the first test example: a row per decoded token, a column per
  source token; writes attention.png (plus curves.png and gradients.png)."""
  runs = [(name, saved) for name, saved in report.predictions() if 'predicted_attention' in saved]
  if not runs:
    return curves(report)
  source_tokens = report.meta.get('source_tokens')
  fig, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 5.5), squeeze=False)
  for ax, (name, saved) in zip(axes[0], runs):
    length = int(saved['length'][0])
    decoded = saved['predicted_targets'][0]
    steps = _decoded_steps(decoded)
    ax.imshow(saved['predicted_attention'][0][:steps, :length], cmap='viridis', vmin=0, vmax=1)
    source = saved['inputs'][0][:length]
    ax.set_xticks(range(length), [source_tokens[t] for t in source] if source_tokens else source)
    ax.set_yticks(range(steps), [report.class_names[t] for t in decoded[:steps]])
    ax.set_xlabel('source')
    ax.set_ylabel('decoded output')
    ax.set_title(name, fontsize=10)
  fig.suptitle('attention weights, first test example (each row sums to 1)')
  curves(report)
  return save_figure(fig, report.workdir, 'attention.png')


def _pca_2d(codes: np.ndarray) -> tuple[np.ndarray, str]:
  """Codes projected on their first two principal axes (as they are if they have two units), and the axes'
  name for the plot."""
  if codes.shape[1] == 2:
    return codes, 'code unit'
  centred = codes - codes.mean(0)
  _, _, vt = np.linalg.svd(centred, full_matrices=False)
  return centred @ vt[:2].T, 'principal component'


def _image_grid(ax, images: np.ndarray, columns: int) -> None:
  """Stored uint8 images tiled row by row into one picture."""
  rows = -(-len(images) // columns)
  h, w = images.shape[1:3]
  grid = np.zeros((rows * h, columns * w) + images.shape[3:], images.dtype)
  for k, image in enumerate(images):
    r, c = divmod(k, columns)
    grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = image
  _show_image(ax, grid)


def autoencoders(report: Report) -> str:
  """Test inputs and each run's reconstructions (reconstructions.png), each run's codes of the saved test
  images coloured by class (code_space.png: the code itself when it has two units, else its first two
  principal components), and each VAE's images decoded from the prior (samples.png); plus curves.png."""
  runs = report.predictions()
  if not runs:
    return curves(report)
  first = runs[0][1]
  count = min(10, len(first['image']))
  fig, axes = plt.subplots(len(runs) + 1, 1, figsize=(count * 0.9, 1.1 * (len(runs) + 1)), squeeze=False)
  _image_grid(axes[0, 0], first['image'][:count], count)
  axes[0, 0].set_ylabel('input', rotation=0, ha='right', fontsize=8)
  for ax, (name, saved) in zip(axes[1:, 0], runs):
    _image_grid(ax, saved['predicted_image'][:count], count)
    ax.set_ylabel(name, rotation=0, ha='right', fontsize=8)
  fig.suptitle('test images and their reconstructions')
  path = save_figure(fig, report.workdir, 'reconstructions.png')

  columns = min(3, len(runs))
  rows = -(-len(runs) // columns)
  fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.8 * rows + 0.6), squeeze=False)
  for ax in axes.flat[len(runs):]:
    ax.axis('off')
  for ax, (name, saved) in zip(axes.flat, runs):
    points, axis_name = _pca_2d(saved['predicted_code'])
    scatter = ax.scatter(points[:, 0], points[:, 1], c=saved['label'], cmap='tab10', vmin=-0.5, vmax=9.5, s=4)
    ax.set_title(f'{name} ({saved["predicted_code"].shape[1]}-unit code)', fontsize=9)
    ax.set_xlabel(f'{axis_name} 1', fontsize=8)
    ax.set_ylabel(f'{axis_name} 2', fontsize=8)
  handles = [matplotlib.patches.Patch(color=scatter.cmap(scatter.norm(k)), label=n)
             for k, n in enumerate(report.class_names)]
  fig.tight_layout(rect=(0, 0.6 / (3.8 * rows + 0.6), 1, 1))
  fig.legend(handles=handles, loc='lower center', ncol=min(5, len(handles)), fontsize=8)
  save_figure(fig, report.workdir, 'code_space.png', tight=False)

  sampled = [(name, saved) for name, saved in runs if 'predicted_sample' in saved]
  if sampled:
    fig, axes = plt.subplots(1, len(sampled), figsize=(4 * len(sampled), 4.4), squeeze=False)
    for ax, (name, saved) in zip(axes[0], sampled):
      _image_grid(ax, saved['predicted_sample'][:64], 8)
      ax.set_title(name, fontsize=9)
    fig.suptitle('decoded from z ~ N(0, I)')
    save_figure(fig, report.workdir, 'samples.png')
  curves(report)
  return path


def _sample_files(run_dir: str) -> list[tuple[str, str]]:
  """(label, path) of a GAN run's saved samples: the evaluations during training in step order, then 'test'."""
  folder = os.path.join(run_dir, 'samples')
  if not os.path.isdir(folder):
    return []
  steps = sorted(int(f[4:-4]) for f in os.listdir(folder) if f.startswith('step') and f.endswith('.npz'))
  found = [(f'step {s}', os.path.join(folder, f'step{s}.npz')) for s in steps]
  final = os.path.join(folder, 'test.npz')
  return found + ([('final', final)] if os.path.exists(final) else [])


def gan(report: Report) -> str:
  """Per run: generated samples at up to five evaluations, the D and G losses, the Frechet distance and score
  over training, and the final class histogram; writes gan.png (one row per run) plus curves.png."""
  rows = [row for row in report.rows if _sample_files(report.run_dirs[row['name']])]
  if not rows:
    return curves(report)
  fig = plt.figure(figsize=(22, 4.2 * len(rows)))
  grid = fig.add_gridspec(len(rows), 9)
  for r, row in enumerate(rows):
    files = _sample_files(report.run_dirs[row['name']])
    picks = [files[round(i * (len(files) - 1) / 4)] for i in range(5)] if len(files) > 5 else files
    for c, (label, path) in enumerate(picks):
      ax = fig.add_subplot(grid[r, c])
      with np.load(path) as saved:
        _image_grid(ax, saved['samples'][:36], 6)
      ax.set_title(f'{row["name"]}: {label}' if c == 0 else label, fontsize=9)
    history = report.histories[row['name']]
    ax = fig.add_subplot(grid[r, 5])
    for key, text in (('train/d_loss', 'D loss'), ('train/g_loss', 'G loss')):
      ax.plot(*series(history, key), label=text)
    ax.set_xlabel('iterations')
    ax.set_title('training losses', fontsize=9)
    ax.legend(fontsize=8)
    for c, (key, text) in enumerate((('frechet', 'Frechet distance'), ('score', 'score (max 10)'))):
      ax = fig.add_subplot(grid[r, 6 + c])
      ax.plot(*series(history, f'test/{key}'), 'o-')
      ax.set_xlabel('iterations')
      ax.set_title(f'{text} (test curve)', fontsize=9)
      ax.grid(alpha=0.3)
    ax = fig.add_subplot(grid[r, 8])
    with np.load(files[-1][1]) as saved:
      histogram = saved['histogram']
    ax.bar(range(len(histogram)), histogram)
    ax.axhline(1 / len(histogram), color='grey', linestyle=':')
    ax.set_xticks(range(len(histogram)), report.class_names or range(len(histogram)), rotation=90, fontsize=7)
    ax.set_title(f'classes of the {files[-1][0]} samples', fontsize=9)
  curves(report)
  return save_figure(fig, report.workdir, 'gan.png')


def save_figure(fig, workdir: str, name: str, tight: bool = True) -> str:
  """Write `fig` as workdir/name (PNG) and close it; the path."""
  path = os.path.join(workdir, name)
  if tight:
    fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


PLOTS.register('curves', curves)
PLOTS.register('degradation', degradation)
PLOTS.register('layer_gradients', layer_gradients)
PLOTS.register('segmentation', segmentation)
PLOTS.register('detection', detection)
PLOTS.register('forecast', forecast)
PLOTS.register('grad_norms', grad_norms)
PLOTS.register('attention', attention)
PLOTS.register('autoencoders', autoencoders)
PLOTS.register('gan', gan)


def get(name: str):
  """The plot function registered under `name`."""
  return PLOTS.get(name)


def names() -> list[str]:
  """Every registered report plot."""
  return PLOTS.names()
