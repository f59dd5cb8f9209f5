"""train_and_evaluate: the one training loop, for every task. A run is config.model x config.task x
config.data x config.optimizer; what is measured and how runs compare is the task's (jaxnets.tasks).

The run directory tells its own story: config.json, versions.json, status.json, metrics.jsonl,
TensorBoard events, checkpoints/ and, when done, summary.json, predictions.npz (a few test examples and
the model's predictions) and whatever files the task writes (detection: COCO-format JSON). Calling it
again on the same directory resumes from the newest checkpoint, or returns the saved summary if the run
had finished.
"""

import contextlib
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from jaxnets import data
from jaxnets.data import batching
from jaxnets.train import diagnostics, preemption, sharding, warm_start
from jaxnets.train.builder import build
from jaxnets.train.checkpoint import Checkpointer
from jaxnets.train.early_stopping import EarlyStopping
from jaxnets.train.lock import workdir_lock
from jaxnets.train.progress import DivergedError, Progress
from jaxnets.train.record import RunRecord
from jaxnets.train.state import count_params
from jaxnets.train.writer import MetricWriter

__all__ = ['DivergedError', 'PreemptedError', 'evaluate', 'predict', 'train_and_evaluate', 'validate']

PreemptedError = preemption.PreemptedError

PREDICTIONS_FILE = 'predictions.npz'
# The evaluations' sampling-noise streams (a GAN's samples, a VAE's z): test (the curve and the final score),
# the training subset, validation.
TEST_STREAM, TRAIN_STREAM, VAL_STREAM = 0, 1, 2


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
  for field in ('train_eval_examples', 'test_curve_examples'):
    if config.data[field] < 0:
      raise ValueError(f'data.{field}={config.data[field]} must be >= 0 (0: the whole split)')
  if t.early_stopping_patience < 0:
    raise ValueError(f'train.early_stopping_patience={t.early_stopping_patience} must be >= 0 (0: off)')
  if t.early_stopping_patience and not config.data.val_split:
    raise ValueError(f'train.early_stopping_patience={t.early_stopping_patience} needs a validation '
                     "split: set data.val_split (e.g. 'train[50000:]', with data.train_split "
                     "'train[:50000]')")
  sharding.check_batch_size(config.data.batch_size, 'data.batch_size')
  sharding.check_batch_size(config.data.eval_batch_size, 'data.eval_batch_size')


def evaluate(eval_step, task, state, split: dict, batch_size: int, mesh, stream: int = TEST_STREAM):
  """The task's metrics over every example of `split`, in eval mode; returns (metrics, accumulator). `stream`
  tells the splits' sampling noise apart (see step.make_eval_step)."""
  part = batching.process_slice(batch_size)
  accumulator = task.accumulator()
  for index, (batch, mask) in enumerate(batching.eval_batches(split, batch_size)):
    local = {k: v[part] for k, v in batch.items()}
    accumulator.add(jax.device_get(eval_step(state, *sharding.put_batch(mesh, (local, mask[part])), index,
                                             stream)))
  return accumulator.result(), accumulator


def predict(predict_step, state, split: dict, mesh) -> dict:
  """The task's predictions for every example of a small `split`, on the host."""
  n = data.num_examples(split)
  size = -(-n // jax.device_count()) * jax.device_count()  # Padded to split evenly over the devices.
  batch, _ = next(batching.eval_batches(split, size))
  part = batching.process_slice(size)
  predicted = predict_step(state, sharding.put_batch(mesh, {k: v[part] for k, v in batch.items()}))
  return {k: np.asarray(v)[:n] for k, v in jax.device_get(predicted).items()}


def _save_predictions(workdir: str, examples: dict, predicted: dict) -> None:
  """predictions.npz: a few test examples (inputs and targets in the model's frame) and its predictions."""
  path = os.path.join(workdir, PREDICTIONS_FILE)
  with open(path + '.tmp', 'wb') as f:
    np.savez_compressed(f, **examples, **{f'predicted_{k}': v for k, v in predicted.items()})
  os.replace(path + '.tmp', path)


def _prefixed(prefix: str, metrics: dict) -> dict:
  """{'<prefix><name>': value}."""
  return {f'{prefix}{k}': v for k, v in metrics.items()}


@jax.jit
def _finite(tree):
  """Whether every entry of `tree` is finite (checked before a checkpoint is written)."""
  return jnp.isfinite(optax.global_norm(tree))


def train_and_evaluate(config, workdir: str, *, stop_after: int | None = None) -> dict | None:
  """Train per `config` in `workdir` and return the run summary (the task's metrics, params, time).

  `stop_after` ends the session at that step as a preemption would (checkpoint, no final eval,
  returns None); the next call resumes there. SIGTERM, SIGINT or SIGUSR2 stops at the next step
  boundary with a checkpoint there and raises PreemptedError (status 'preempted'). A second process on
  the same `workdir` is refused (lock.WorkdirBusyError).
  """
  validate(config, stop_after)
  with workdir_lock(workdir), preemption.watch() as preempt:
    record = RunRecord(workdir, config)
    if record.is_done():
      return record.summary()
    record.set_status('running')
    try:
      return _train(config, workdir, record, stop_after, preempt)
    except DivergedError as e:
      record.set_status('diverged', error=str(e))
      raise
    except (PreemptedError, KeyboardInterrupt) as e:  # Resumable from the newest checkpoint.
      record.set_status('preempted', error=str(e) or 'interrupted (Ctrl-C twice): resumes from the newest '
                        'checkpoint')
      raise
    except BaseException as e:
      record.set_status('failed', error=f'{type(e).__name__}: {e}')
      raise


def _train(config, workdir, record, stop_after, preempt):
  """Build, restore, train to `stop_after` or the end (or an early stop), then evaluate and summarize."""
  setup = build(config)  # Every name resolved and the model traced before the data is read.
  spec, task, headline = setup.spec, setup.task, setup.task.headline
  total_steps = config.train.steps
  load = setup.load
  train_split = load(config.data.train_split or spec.train_split)
  test_split = load(config.data.test_split or spec.test_split)
  val_split = load(config.data.val_split) if config.data.val_split else None
  preprocess = setup.preprocess()

  mesh = sharding.data_mesh()
  state = setup.init_state(mesh)
  num_params = count_params(state.params)
  train_step, eval_step = setup.jit_steps(preprocess, mesh)
  evaluate_on = lambda state, split, stream=TEST_STREAM: evaluate(eval_step, task, state, split,
                                                                  config.data.eval_batch_size, mesh, stream)
  patience = config.train.early_stopping_patience
  stopping = EarlyStopping(patience, headline) if patience else None

  # Closing waits for checkpoint writes in flight: a failing run keeps its last good checkpoint.
  with (contextlib.closing(Checkpointer(os.path.join(workdir, 'checkpoints'),
                                        config.train.keep_checkpoints)) as checkpointer,
        (contextlib.closing(Checkpointer(os.path.join(workdir, 'checkpoints_best'), 1)) if stopping
         else contextlib.nullcontext()) as best,
        contextlib.closing(MetricWriter(workdir)) as writer):
    start, state, meta = checkpointer.restore_latest(state)
    if not start:
      state = warm_start.apply(config, state, workdir)
    wall_before = meta['wall_seconds'] if meta else 0.0
    if start:
      if stopping:
        stopping = EarlyStopping.from_meta(patience, headline, meta['early_stopping'])
      logging.info('resumed from step %d of %s', start, workdir)
    checkpointer.delete_after(start)  # Past a bad checkpoint moved aside: redone from `start`.
    if stopping:
      best.delete_after(start)  # A best network saved after the restored step is redone, if still best.
    # A run that had stopped early (and was interrupted before its summary) trains no further.
    stopped = bool(stopping and stopping.should_stop)
    writer.truncate_after(start)
    record.add_session(start)
    num_train = data.num_examples(train_split)
    logging.info('%s: %d params, %d train / %d test examples, %d devices, steps %d -> %d',
                 config.model.name, num_params, num_train, data.num_examples(test_split),
                 jax.device_count(), start, total_steps)

    batch_size = config.data.batch_size
    train_batch = _train_batches(train_split, config)
    test_curve = data.take(test_split, config.data.test_curve_examples)
    progress = Progress(writer, total_steps, batch_size, config.optimizer.lr)
    if meta:
      progress.resume(meta.get('progress_window', []))
    session_start = time.time()
    end = start if stopped else total_steps if stop_after is None else min(stop_after, total_steps)
    done = start
    if start < end and preempt.requested(start, config.train.log_every):  # Asked before this run began.
      raise PreemptedError(f'preempted: stopped at step {start} of {total_steps} before training on')
    for step in range(start, end):
      state, metrics = train_step(state, sharding.put_batch(mesh, train_batch(step)))
      progress.add(metrics)
      done = step + 1
      if step == 0:
        writer.write(0, _layer_gradients(metrics, setup.layers.order))
      if done % config.train.log_every == 0 or done == total_steps:
        progress.log(done)
      stop_early = False
      if done % config.train.eval_every == 0 or done == total_steps:
        eval_start = time.time()
        if val_split is not None:
          val, _ = evaluate_on(state, val_split, VAL_STREAM)
          writer.write(done, _prefixed('val/', val))
          if stopping and stopping.update(done, val[headline.name]):
            best.save(done, state, {})
          stop_early = bool(stopping and stopping.should_stop and done < total_steps)
        if done < total_steps:
          curve, curve_accumulator = evaluate_on(state, test_curve)
          writer.write(done, _prefixed('test/', curve))
          if task.curve_files and jax.process_index() == 0:
            curve_accumulator.write(workdir, f'step{done}')
        progress.pause_clock(eval_start)
      preempted = done < total_steps and preempt.requested(done, config.train.log_every)
      if done % config.train.checkpoint_every == 0 or done == end or stop_early or preempted:
        if not _finite(state.params):
          raise DivergedError(f'diverged: parameters are not finite after step {done}; lower '
                              f'optimizer.lr={config.optimizer.lr} or add clipping')
        meta = {'wall_seconds': wall_before + time.time() - session_start,
                'progress_window': progress.window()}
        checkpointer.save(done, state, meta | ({'early_stopping': stopping.to_meta()} if stopping else {}))
      if preempted:
        raise PreemptedError(f'preempted: stopped at step {done} of {total_steps} with a checkpoint '
                             'there; run the same command again to resume')
      if stop_early:
        logging.info('early stop at step %d: no better validation %s than %.4f (step %d) for %d '
                     'evaluations', done, headline.name, stopping.best_value, stopping.best_step, patience)
        break
    else:
      if end < total_steps and not stopped:
        return None

    extra = {}
    if stopping:  # The result is the network of the best validation score.
      state, _ = best.restore(stopping.best_step, state)
      extra = {f'val_{headline.name}': stopping.best_value, 'best_step': stopping.best_step,
               'stopped_step': done}
    test, test_accumulator = evaluate_on(state, test_split)
    if jax.process_index() == 0:
      test_accumulator.write(workdir, 'test')
    train_eval = data.take(train_split, config.data.train_eval_examples)
    train, _ = evaluate_on(state, train_eval, TRAIN_STREAM)
    examples = data.take(test_split, task.prediction_examples)
    predicted = predict(setup.jit_predict_step(preprocess, mesh), state, examples, mesh)
    if jax.process_index() == 0:
      _save_predictions(workdir, preprocess.frame(examples), predicted)
    writer.write(done, _prefixed('final/test_', test) | _prefixed('final/train_', train))
  wall = wall_before + time.time() - session_start
  summary = {'params': num_params, 'steps': done,
             **_prefixed('train_', _headline_first(train, headline)),
             'train_examples': data.num_examples(train_eval),
             **_prefixed('test_', _headline_first(test, headline)),
             'test_examples': data.num_examples(test_split), **extra, 'wall_seconds': round(wall, 1)}
  record.finish(summary)
  logging.info('done: test %s %.4f, train %s %.4f (eval mode, %d training examples), %.0f s', headline.name,
               test[headline.name], headline.name, train[headline.name], data.num_examples(train_eval), wall)
  return summary


def _train_batches(train_split: dict, config):
  """batch(step): this process's part of training step `step`'s batch, a pure function of (seed, step); with
  data.window, one window of a batch of whole sequences (truncated BPTT; see batching.window_step)."""
  num_train, batch_size, window = data.num_examples(train_split), config.data.batch_size, config.data.window
  part = batching.process_slice(batch_size)
  if not window:
    return lambda step: batching.gather(
        train_split, batching.train_indices(num_train, batch_size, config.seed, step)[part])
  windows = train_split['inputs'].shape[1] // window

  def batch(step):
    idx, index = batching.window_step(num_train, batch_size, config.seed, step, windows)
    return batching.gather_window(train_split, idx[part], index, window)

  return batch


def _headline_first(metrics: dict, headline) -> dict:
  """The metrics with the headline first (the order of the results table's columns)."""
  return {headline.name: metrics[headline.name], **metrics}


def _layer_gradients(metrics, order) -> dict:
  """The first step's gradient norms as init/grad_norm/<group>, groups in input-to-output order."""
  host = jax.device_get(metrics['diagnostics'])
  groups = dict.fromkeys(diagnostics.group_of(name) for name in order)
  return {f'init/grad_norm/{g}': float(host[f'grad_norm/{g}']) for g in groups}
