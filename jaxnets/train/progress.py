"""The log window of the training loop: averages the step metrics, checks them, writes and reports them."""

import math
import time

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
  """Collects per-step metrics (left on device until a log step) and logs their window means."""

  def __init__(self, writer, total_steps: int, batch_size: int, lr: float):
    self._writer, self._total, self._batch, self._lr = writer, total_steps, batch_size, lr
    self._pending, self._since = [], time.time()

  def add(self, metrics) -> None:
    """Keep one step's metrics (still on device) for the window."""
    self._pending.append(metrics)

  def pause_clock(self, since: float) -> None:
    """Exclude time spent since `since` (evaluation) from the throughput."""
    self._since += time.time() - since

  def log(self, step: int) -> None:
    """Write the window's means at `step`, print step, loss, error, img/s and ETA; NaN loss raises."""
    host = jax.device_get(self._pending)
    means = {k: float(np.mean([m[k] for m in host])) for k in host[0]}
    if not math.isfinite(means['loss']):
      raise DivergedError(f'diverged: training loss is {means["loss"]} at step {step}; lower '
                          f'optimizer.lr={self._lr} or add clipping')
    now = time.time()
    rate = len(host) * self._batch / (now - self._since)
    self._writer.write(step, {f'train/{k}': v for k, v in means.items()} | {'train/img_per_s': rate})
    logging.info('step %d/%d  loss %.4f  error %.3f  %.0f img/s  ETA %s', step, self._total,
                 means['loss'], means['error'], rate, _eta((self._total - step) * self._batch / rate))
    self._pending, self._since = [], now
