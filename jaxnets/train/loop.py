"""train_and_evaluate: the one training loop. A run is config.model x config.task x config.data x config.optimizer.

The run directory tells its own story: config.json, versions.json, status.json, metrics.jsonl,
TensorBoard events, checkpoints/ and, when done, summary.json. Calling it again on the same directory
resumes from the newest checkpoint, or returns the saved summary if the run had finished.
"""

import contextlib
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from jaxnets import data, models, optim, tasks
from jaxnets.data import batching
from jaxnets.data.preprocess import Preprocess, parse_augment
from jaxnets.train import diagnostics, sharding
from jaxnets.train.checkpoint import Checkpointer
from jaxnets.train.record import RunRecord
from jaxnets.train.state import count_params, init_state
from jaxnets.train.step import make_eval_step, make_train_step
from jaxnets.train.writer import MetricWriter


class DivergedError(FloatingPointError):
  """The training loss became NaN or infinite; the last finite checkpoint is kept."""


def validate(config) -> None:
  """Reject inconsistent train settings before any work starts, naming the field and its value."""
  t = config.train
  for field in ('steps', 'log_every', 'eval_every', 'checkpoint_every', 'keep_checkpoints'):
    if t[field] < 1:
      raise ValueError(f'train.{field}={t[field]} must be a positive integer')
  if t.checkpoint_every % t.log_every:
    raise ValueError(f'train.checkpoint_every={t.checkpoint_every} must be a multiple of '
                     f'train.log_every={t.log_every} (checkpoints are taken at logged, checked steps)')
  sharding.check_batch_size(config.data.batch_size, 'data.batch_size')
  sharding.check_batch_size(config.data.eval_batch_size, 'data.eval_batch_size')


def _subset(arrays, count: int):
  """The first `count` examples (all if count is 0): a fixed evaluation subset."""
  return arrays if not count else data.Arrays(arrays.images[:count], arrays.labels[:count])


def evaluate(eval_step, state, arrays, batch_size: int, mesh) -> dict:
  """Loss and error over every example of `arrays`, in eval mode."""
  part = batching.process_slice(batch_size)
  totals = None
  for images, labels, mask in batching.eval_batches(arrays, batch_size):
    sums = eval_step(state, *sharding.put_batch(mesh, images[part], labels[part], mask[part]))
    totals = sums if totals is None else jax.tree.map(lambda a, b: a + b, totals, sums)
  totals = jax.device_get(totals)
  return {'loss': float(totals['loss'] / totals['count']),
          'error': float(totals['errors'] / totals['count'])}


@jax.jit
def _finite(tree):
  """Whether every entry of `tree` is finite (checked before a checkpoint is written)."""
  return jnp.isfinite(optax.global_norm(tree))


def _eta(seconds: float) -> str:
  minutes, secs = divmod(int(seconds), 60)
  return f'{minutes}m{secs:02d}s'


def train_and_evaluate(config, workdir: str, *, stop_after: int | None = None) -> dict | None:
  """Train per `config` in `workdir` and return the run summary (train/test error, params, time).

  `stop_after` ends the session at that step as a preemption would (checkpoint, no final eval,
  returns None); the next call resumes there.
  """
  validate(config)
  record = RunRecord(workdir, config)
  if record.is_done():
    return record.summary()
  record.set_status('running')
  try:
    return _train(config, workdir, record, stop_after)
  except DivergedError as e:
    record.set_status('diverged', error=str(e))
    raise
  except BaseException as e:
    record.set_status('failed', error=f'{type(e).__name__}: {e}')
    raise


def _train(config, workdir, record, stop_after):
  # Everything named in the config is resolved before the data is read, so a typo fails at once.
  spec = data.spec(config.data.name)
  model_kwargs = {k: v for k, v in config.model.items() if k != 'name'}
  model = models.create(config.model.name, num_classes=spec.num_classes, **model_kwargs)
  task = tasks.create(config.task)
  total_steps = config.train.steps
  tx, schedule = optim.create(config.optimizer, total_steps)
  parse_augment(config.data.augment)

  data_dir = config.data.data_dir or None
  train_arrays = data.load(spec.name, config.data.train_split or spec.train_split, data_dir)
  test_arrays = data.load(spec.name, config.data.test_split or spec.test_split, data_dir)
  preprocess = Preprocess.from_config(config.data, train_arrays.images)

  mesh = sharding.data_mesh()
  replicated = sharding.replicated(mesh)
  sample = np.zeros((1,) + train_arrays.images.shape[1:], np.float32)
  order = diagnostics.layer_order(model, sample)
  state = jax.jit(lambda: init_state(model, tx, config.seed, sample), out_shardings=replicated)()
  num_params = count_params(state.params)

  # Closing waits for checkpoint writes in flight: a failing run keeps its last good checkpoint.
  with (contextlib.closing(Checkpointer(os.path.join(workdir, 'checkpoints'),
                                        config.train.keep_checkpoints)) as checkpointer,
        contextlib.closing(MetricWriter(workdir)) as writer):
    wall_before = 0.0
    start = checkpointer.latest_step() or 0
    if start:
      state, meta = checkpointer.restore(start, state)
      wall_before = meta['wall_seconds']
      logging.info('resumed from step %d of %s', start, workdir)
    writer.truncate_after(start)

    train_step = jax.jit(make_train_step(model, task, tx, schedule, config.optimizer, preprocess, order),
                         donate_argnums=0, out_shardings=(replicated, replicated))
    eval_step = jax.jit(make_eval_step(model, task, preprocess), out_shardings=replicated)
    batch_size = config.data.batch_size
    part = batching.process_slice(batch_size)
    test_curve = _subset(test_arrays, config.data.test_curve_examples)
    logging.info('%s: %d params, %d train / %d test examples, %d devices, steps %d -> %d',
                 config.model.name, num_params, len(train_arrays.labels), len(test_arrays.labels),
                 jax.device_count(), start, total_steps)

    session_start = time.time()
    last_time, pending = time.time(), []
    end = total_steps if stop_after is None else min(stop_after, total_steps)
    for step in range(start, end):
      idx = batching.train_indices(len(train_arrays.labels), batch_size, config.seed, step)[part]
      images, labels = sharding.put_batch(mesh, train_arrays.images[idx], train_arrays.labels[idx])
      state, metrics = train_step(state, images, labels)
      pending.append(metrics)
      done = step + 1
      if done % config.train.log_every == 0 or done == end:
        host = jax.device_get(pending)
        means = {k: float(np.mean([m[k] for m in host])) for k in host[0]}
        if not math.isfinite(means['loss']):
          raise DivergedError(f'diverged: training loss is {means["loss"]} at step {done}; lower '
                              f'optimizer.lr={config.optimizer.lr} or add clipping')
        now = time.time()
        rate = len(pending) * batch_size / (now - last_time)
        writer.write(done, {f'train/{k}': v for k, v in means.items()} | {'train/img_per_s': rate})
        logging.info('step %d/%d  loss %.4f  error %.3f  %.0f img/s  ETA %s', done, total_steps,
                     means['loss'], means['error'], rate, _eta((total_steps - done) * batch_size / rate))
        last_time, pending = now, []
      if done % config.train.eval_every == 0 and done < total_steps:
        curve = evaluate(eval_step, state, test_curve, config.data.eval_batch_size, mesh)
        writer.write(done, {'test/loss': curve['loss'], 'test/error': curve['error']})
        last_time = time.time()  # Evaluation time is not training throughput.
      if done % config.train.checkpoint_every == 0 or done == end:
        if not _finite(state.params):
          raise DivergedError(f'diverged: parameters are not finite after step {done}; lower '
                              f'optimizer.lr={config.optimizer.lr} or add clipping')
        checkpointer.save(done, state, {'wall_seconds': wall_before + time.time() - session_start})

    wall = wall_before + time.time() - session_start
    if end < total_steps:
      return None
    test = evaluate(eval_step, state, test_arrays, config.data.eval_batch_size, mesh)
    train_eval = _subset(train_arrays, config.data.train_eval_examples)
    train = evaluate(eval_step, state, train_eval, config.data.eval_batch_size, mesh)
    writer.write(total_steps, {'final/test_error': test['error'], 'final/test_loss': test['loss'],
                               'final/train_error': train['error'], 'final/train_loss': train['loss']})
  summary = {'params': num_params, 'steps': total_steps,
             'train_error': train['error'], 'train_loss': train['loss'],
             'train_error_examples': len(train_eval.labels),
             'test_error': test['error'], 'test_loss': test['loss'],
             'test_examples': len(test_arrays.labels), 'wall_seconds': round(wall, 1)}
  record.finish(summary)
  logging.info('done: test error %.4f, train error %.4f (eval mode, %d training examples), %.0f s',
               test['error'], train['error'], len(train_eval.labels), wall)
  return summary
