"""train_and_evaluate: the one training loop. A run is config.model x config.task x config.data x config.optimizer.

The run directory tells its own story: config.json, versions.json, status.json, metrics.jsonl,
TensorBoard events, checkpoints/ and, when done, summary.json. Calling it again on the same directory
resumes from the newest checkpoint, or returns the saved summary if the run had finished.
"""

import contextlib
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from jaxnets import data, models, optim, tasks
from jaxnets.data import batching
from jaxnets.data.preprocess import Preprocess, input_shape, parse_augment
from jaxnets.train import diagnostics, sharding
from jaxnets.train.checkpoint import Checkpointer
from jaxnets.train.early_stopping import EarlyStopping
from jaxnets.train.progress import DivergedError, Progress
from jaxnets.train.record import RunRecord
from jaxnets.train.state import count_params, init_state
from jaxnets.train.step import jit_steps
from jaxnets.train.writer import MetricWriter

__all__ = ['DivergedError', 'evaluate', 'train_and_evaluate', 'validate']


def validate(config, stop_after: int | None = None) -> None:
  """Reject inconsistent train settings before any work starts, naming the field and its value."""
  t = config.train
  for field in ('steps', 'log_every', 'eval_every', 'checkpoint_every', 'keep_checkpoints'):
    if t[field] < 1:
      raise ValueError(f'train.{field}={t[field]} must be a positive integer')
  if t.checkpoint_every % t.log_every:
    raise ValueError(f'train.checkpoint_every={t.checkpoint_every} must be a multiple of '
                     f'train.log_every={t.log_every} (checkpoints are taken at logged, checked steps)')
  if stop_after is not None and stop_after % t.log_every:
    raise ValueError(f'stop_after={stop_after} must be a multiple of train.log_every={t.log_every}')
  if t.early_stopping_patience < 0:
    raise ValueError(f'train.early_stopping_patience={t.early_stopping_patience} must be >= 0 (0: off)')
  if t.early_stopping_patience and not config.data.val_split:
    raise ValueError(f'train.early_stopping_patience={t.early_stopping_patience} needs a validation '
                     "split: set data.val_split (e.g. 'train[50000:]', with data.train_split "
                     "'train[:50000]')")
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


def train_and_evaluate(config, workdir: str, *, stop_after: int | None = None) -> dict | None:
  """Train per `config` in `workdir` and return the run summary (train/test error, params, time).

  `stop_after` ends the session at that step as a preemption would (checkpoint, no final eval,
  returns None); the next call resumes there.
  """
  validate(config, stop_after)
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
  """Build, restore, train to `stop_after` or the end (or an early stop), then evaluate and summarize."""
  # Everything named in the config is resolved, and the model traced, before the data is read.
  spec = data.spec(config.data.name)
  model_kwargs = {k: v for k, v in config.model.items() if k != 'name'}
  model = models.create(config.model.name, num_classes=spec.num_classes, **model_kwargs)
  task = tasks.create(config.task)
  total_steps = config.train.steps
  tx, schedule = optim.create(config.optimizer, total_steps)
  parse_augment(config.data.augment)
  sample = np.zeros((1,) + input_shape(spec.image_shape, config.data.pad_to), np.float32)
  order = diagnostics.layer_order(model, sample)

  data_dir = config.data.data_dir or None
  load = lambda split: data.load(spec.name, split, data_dir)
  train_split = config.data.train_split or spec.train_split
  train_arrays = load(train_split)
  test_arrays = load(config.data.test_split or spec.test_split)
  val_arrays = load(config.data.val_split) if config.data.val_split else None
  preprocess = Preprocess.from_config(config.data, data.channel_stats(spec.name, train_split, data_dir))

  mesh = sharding.data_mesh()
  state = jax.jit(lambda: init_state(model, tx, config.seed, sample),
                  out_shardings=sharding.replicated(mesh))()
  num_params = count_params(state.params)
  train_step, eval_step = jit_steps(model, task, tx, schedule, config.optimizer, preprocess, order, mesh,
                                    config.train.aux_loss_weight)
  evaluate_on = lambda state, arrays: evaluate(eval_step, state, arrays, config.data.eval_batch_size, mesh)
  patience = config.train.early_stopping_patience
  stopping = EarlyStopping(patience) if patience else None

  # Closing waits for checkpoint writes in flight: a failing run keeps its last good checkpoint.
  with (contextlib.closing(Checkpointer(os.path.join(workdir, 'checkpoints'),
                                        config.train.keep_checkpoints)) as checkpointer,
        (contextlib.closing(Checkpointer(os.path.join(workdir, 'checkpoints_best'), 1)) if stopping
         else contextlib.nullcontext()) as best,
        contextlib.closing(MetricWriter(workdir)) as writer):
    start, wall_before = checkpointer.latest_step() or 0, 0.0
    if start:
      state, meta = checkpointer.restore(start, state)
      wall_before = meta['wall_seconds']
      if stopping:
        stopping = EarlyStopping.from_meta(patience, meta['early_stopping'])
      logging.info('resumed from step %d of %s', start, workdir)
    writer.truncate_after(start)
    record.add_session(start)
    logging.info('%s: %d params, %d train / %d test examples, %d devices, steps %d -> %d',
                 config.model.name, num_params, len(train_arrays.labels), len(test_arrays.labels),
                 jax.device_count(), start, total_steps)

    batch_size = config.data.batch_size
    part = batching.process_slice(batch_size)
    test_curve = _subset(test_arrays, config.data.test_curve_examples)
    progress = Progress(writer, total_steps, batch_size, config.optimizer.lr)
    session_start = time.time()
    end = total_steps if stop_after is None else min(stop_after, total_steps)
    done = start
    for step in range(start, end):
      idx = batching.train_indices(len(train_arrays.labels), batch_size, config.seed, step)[part]
      state, metrics = train_step(state, *sharding.put_batch(
          mesh, train_arrays.images[idx], train_arrays.labels[idx]))
      progress.add(metrics)
      done = step + 1
      if step == 0:
        writer.write(0, _layer_gradients(metrics, order))
      if done % config.train.log_every == 0 or done == total_steps:
        progress.log(done)
      stop_early = False
      if done % config.train.eval_every == 0 or done == total_steps:
        eval_start = time.time()
        if val_arrays is not None:
          val = evaluate_on(state, val_arrays)
          writer.write(done, {'val/loss': val['loss'], 'val/error': val['error']})
          if stopping and stopping.update(done, val['error']):
            best.save(done, state, {})
          stop_early = bool(stopping and stopping.should_stop and done < total_steps)
        if done < total_steps:
          curve = evaluate_on(state, test_curve)
          writer.write(done, {'test/loss': curve['loss'], 'test/error': curve['error']})
        progress.pause_clock(eval_start)
      if done % config.train.checkpoint_every == 0 or done == end or stop_early:
        if not _finite(state.params):
          raise DivergedError(f'diverged: parameters are not finite after step {done}; lower '
                              f'optimizer.lr={config.optimizer.lr} or add clipping')
        meta = {'wall_seconds': wall_before + time.time() - session_start}
        checkpointer.save(done, state, meta | ({'early_stopping': stopping.to_meta()} if stopping else {}))
      if stop_early:
        logging.info('early stop at step %d: no better validation error than %.4f (step %d) for %d '
                     'evaluations', done, stopping.best_error, stopping.best_step, patience)
        break
    else:
      if end < total_steps:
        return None

    extra = {}
    if stopping:  # The result is the network of the best validation error.
      state, _ = best.restore(stopping.best_step, state)
      extra = {'val_error': stopping.best_error, 'best_step': stopping.best_step, 'stopped_step': done}
    test = evaluate_on(state, test_arrays)
    train_eval = _subset(train_arrays, config.data.train_eval_examples)
    train = evaluate_on(state, train_eval)
    writer.write(done, {'final/test_error': test['error'], 'final/test_loss': test['loss'],
                        'final/train_error': train['error'], 'final/train_loss': train['loss']})
  wall = wall_before + time.time() - session_start
  summary = {'params': num_params, 'steps': done,
             'train_error': train['error'], 'train_loss': train['loss'],
             'train_error_examples': len(train_eval.labels),
             'test_error': test['error'], 'test_loss': test['loss'],
             'test_examples': len(test_arrays.labels), **extra, 'wall_seconds': round(wall, 1)}
  record.finish(summary)
  logging.info('done: test error %.4f, train error %.4f (eval mode, %d training examples), %.0f s',
               test['error'], train['error'], len(train_eval.labels), wall)
  return summary


def _layer_gradients(metrics, order) -> dict:
  """The first step's gradient norms as init/grad_norm/<group>, groups in input-to-output order."""
  host = jax.device_get(metrics)
  groups = dict.fromkeys(diagnostics.group_of(name) for name in order)
  return {f'init/grad_norm/{g}': float(host[f'grad_norm/{g}']) for g in groups}
