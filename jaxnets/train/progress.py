"""The log window of the training loop: averages the step metrics, checks them, writes and reports them."""

import math
import time
import warnings

import jax
import numpy as np
from absl import logging


class DivergedError(FloatingPointError):
  """The training loss or the parameters became NaN or infinite; the last finite checkpoint is kept."""


def _eta(seconds: float) -> str:
  """'3m07s'."""
  minutes, secs = divmod(int(seconds), 60)
  return f'{minutes}m{secs:02d}s'


class Progress:
  """Collects per-step metrics (left on device until a log step) and logs their window means.

  The progress line shows the task's training metrics (loss first); the log file and TensorBoard
  also get the diagnostics, all as train/<name>.
  """

  def __init__(self, writer, total_steps: int, batch_size: int, lr: float):
    self._writer, self._total, self._batch, self._lr = writer, total_steps, batch_size, lr
    self._pending, self._since, self._restored = [], time.time(), 0

  def add(self, metrics) -> None:
    """Keep one step's metrics (still on device) for the window."""
    self._pending.append(metrics)

  def window(self) -> list:
    """The steps of the unfinished log window as JSON (value and dtype per metric), for a checkpoint
    taken between log steps: restored by `resume`, the next log line is the same as without the stop."""
    return [{group: {k: [v.item(), v.dtype.str] for k, v in metrics.items()} for group, metrics in step.items()}
            for step in jax.device_get(self._pending)]

  def resume(self, window: list) -> None:
    """Continue the log window saved by `window`."""
    self._pending = [{group: {k: np.asarray(v, dtype) for k, (v, dtype) in metrics.items()}
                      for group, metrics in step.items()} for step in window]
    self._restored = len(window)  # Steps of the window trained before the clock started.

  def pause_clock(self, since: float) -> None:
    """Exclude time spent since `since` (evaluation) from the throughput."""
    self._since += time.time() - since

  def log(self, step: int) -> None:
    """Write the window's means at `step`, print step, task metrics, img/s and ETA; NaN loss raises."""
    host = jax.device_get(self._pending)
    # A batch with nothing to score (a truncated-BPTT window of unlabelled steps) gives a NaN metric
    # (0 / 0); the window's mean is over the batches that scored something. The loss is a plain mean.
    def means(group, skip_nan=()):
      with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # No batch of the window scored anything: NaN.
        return {k: float((np.nanmean if k in skip_nan else np.mean)([m[group][k] for m in host]))
                for k in host[0][group]}
    task = means('task', skip_nan=[k for k in host[0]['task'] if k != 'loss'])
    diagnostics = means('diagnostics')
    if not math.isfinite(task['loss']):
      raise DivergedError(f'diverged: training loss is {task["loss"]} at step {step}; lower '
                          f'optimizer.lr={self._lr} or add clipping')
    now = time.time()
    rate = (len(host) - self._restored) * self._batch / (now - self._since)
    logged = {f'train/{k}': v for k, v in (task | diagnostics).items()}
    self._writer.write(step, logged | {'train/img_per_s': rate})
    others = '  '.join(f'{k} {v:.3f}' for k, v in task.items() if k != 'loss')  # jit sorted the names.
    shown = f'loss {task["loss"]:.4f}  {others}'.rstrip()
    logging.info('step %d/%d  %s  %.0f img/s  ETA %s', step, self._total, shown, rate,
                 _eta((self._total - step) * self._batch / rate))
    self._pending, self._since, self._restored = [], now, 0
