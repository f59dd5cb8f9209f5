"""A run survives what happens to runs: SIGTERM (checkpoint at the step boundary, resume bit-identically),
a corrupt checkpoint (found, moved aside, the one before it used), a second process on its workdir
(refused, naming the holder; a dead holder does not block), a changed config (refused only where
something was trained)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from unittest import mock

import jax
import numpy as np
import pytest
import tensorflow as tf

from jaxnets import experiment
from jaxnets.data import source
from jaxnets.train import preemption
from jaxnets.train.checkpoint import CORRUPT_DIR, CorruptCheckpointError
from jaxnets.train.lock import WorkdirBusyError
from jaxnets.train.loop import PreemptedError, train_and_evaluate
from jaxnets.train.writer import read_metrics
from tests.test_train import _final_params, _train_metrics
from tests.tiny import mock_data, tiny_config


def _config(steps=40):
  """The tiny run with log windows of 4 steps and checkpoints every 8, so a stop can fall inside both."""
  c = tiny_config(steps)
  c.train.update(log_every=4, eval_every=8, checkpoint_every=8)
  return c


def _status(workdir):
  return json.load(open(os.path.join(workdir, 'status.json')))['status']


def _without_wall(summary):
  return {k: v for k, v in summary.items() if k != 'wall_seconds'}


def _tb_steps(workdir, tag='train/loss'):
  """Every step at which the TensorBoard events hold `tag`."""
  steps = []
  for name in sorted(os.listdir(os.path.join(workdir, 'tb'))):
    for event in tf.compat.v1.train.summary_iterator(os.path.join(workdir, 'tb', name)):
      steps += [event.step for value in event.summary.value if value.tag == tag]
  return steps


def _signal_after_step(workdir, step, signum=signal.SIGTERM):
  """A thread that sends `signum` to this process once metrics.jsonl has a record past `step`."""
  def watch():
    while not any(r['step'] > step for r in read_metrics(workdir)):
      time.sleep(0.005)
    os.kill(os.getpid(), signum)
  thread = threading.Thread(target=watch, daemon=True)
  thread.start()
  return thread


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_a_signal_checkpoints_at_the_step_boundary_and_the_rerun_resumes_bit_identically(tmp_path, signum):
  straight, stopped = str(tmp_path / 'straight'), str(tmp_path / 'stopped')
  handler = signal.getsignal(signum)  # SIG_IGN for SIGINT where the shell started the tests in the background.
  with mock_data():
    expected = train_and_evaluate(_config(), straight)
    watcher = _signal_after_step(stopped, 3, signum)
    with pytest.raises(PreemptedError, match='preempted: stopped at step'):
      train_and_evaluate(_config(), stopped)
    watcher.join()
    assert _status(stopped) == 'preempted'
    step = _final_params(stopped)[0]
    assert 4 <= step < 40  # Stopped early, at the step it had reached, not at the last periodic checkpoint.
    assert signal.getsignal(signum) == handler  # The handler is restored.
    resumed = train_and_evaluate(_config(), stopped)
  assert _status(stopped) == 'done'
  assert _without_wall(resumed) == _without_wall(expected)  # Bit for bit.
  assert _train_metrics(stopped) == _train_metrics(straight)  # Log windows cut by the stop included.
  jax.tree.map(np.testing.assert_array_equal, _final_params(straight)[1], _final_params(stopped)[1])
  assert _tb_steps(stopped) == _tb_steps(straight) == list(range(4, 41, 4))  # Each step once.


def _largest_file(directory):
  files = [os.path.join(root, f) for root, _, names in os.walk(directory) for f in names]
  return max(files, key=os.path.getsize)


def _flip_bytes(path):
  with open(path, 'r+b') as f:
    f.seek(os.path.getsize(path) // 2)
    chunk = f.read(64)
    f.seek(os.path.getsize(path) // 2)
    f.write(bytes(b ^ 0xFF for b in chunk))


def _truncate(path):
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 3)


@pytest.mark.parametrize('damage', [_flip_bytes, _truncate])
def test_a_corrupt_checkpoint_is_set_aside_and_the_run_resumes_from_the_one_before(tmp_path, damage, caplog):
  straight, damaged = str(tmp_path / 'straight'), str(tmp_path / 'damaged')
  with mock_data():
    expected = train_and_evaluate(_config(24), straight)
    assert train_and_evaluate(_config(24), damaged, stop_after=16) is None
    bad_file = _largest_file(os.path.join(damaged, 'checkpoints', '16', 'state'))
    damage(bad_file)
    resumed = train_and_evaluate(_config(24), damaged)
  assert _without_wall(resumed) == _without_wall(expected)  # Redone from step 8, never "diverged".
  errors = ' '.join(r.getMessage() for r in caplog.records if r.levelname == 'ERROR')
  assert os.path.join(damaged, 'checkpoints', '16') in errors and 'diverged' not in errors
  kept = os.path.join(damaged, CORRUPT_DIR, 'checkpoints-16')
  assert os.path.exists(os.path.join(kept, os.path.relpath(bad_file, os.path.join(damaged, 'checkpoints', '16'))))
  sessions = json.load(open(os.path.join(damaged, 'versions.json')))
  assert [s['start_step'] for s in sessions] == [0, 8]


def _hold_lock(workdir):
  """A separate process that takes the workdir's lock and keeps it until killed."""
  code = ('import sys, time; from jaxnets.train.lock import workdir_lock\n'
          'with workdir_lock(sys.argv[1]):\n  print("held", flush=True); time.sleep(600)')
  holder = subprocess.Popen([sys.executable, '-c', code, workdir], stdout=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert holder.stdout.readline().strip() == 'held'
  return holder


def test_a_second_process_is_refused_at_once_and_a_dead_holder_does_not_block(tmp_path):
  workdir = str(tmp_path / 'run')
  holder = _hold_lock(workdir)
  try:
    start = time.time()
    with mock_data(), pytest.raises(WorkdirBusyError, match=rf'in use by pid {holder.pid} on '):
      train_and_evaluate(tiny_config(steps=2), workdir)
    assert time.time() - start < 10
    assert not os.path.exists(os.path.join(workdir, 'status.json'))  # The holder's files are untouched.
  finally:
    holder.kill()  # kill -9: the kernel drops its lock.
    holder.wait()
  with mock_data():
    assert train_and_evaluate(tiny_config(steps=2), workdir)['steps'] == 2


def test_a_finished_workdir_refuses_a_different_experiment_and_keeps_its_results(tmp_path):
  workdir = str(tmp_path / 'exp')
  config = tiny_config(steps=2)
  with mock_data():
    experiment.run(config, workdir)
    before = {name: open(os.path.join(workdir, name)).read() for name in ('results.json', 'results.md')}
    config.experiment.sweep = 'optimizer.lr=0.02,0.2'
    with pytest.raises(experiment.ConfigError, match=r"experiment\.sweep: '' -> 'optimizer\.lr=0\.02,0\.2'"):
      experiment.run(config, workdir)
  assert before == {name: open(os.path.join(workdir, name)).read() for name in before}


def test_a_run_that_failed_before_training_accepts_its_corrected_config(tmp_path, monkeypatch):
  monkeypatch.setattr(source, 'TFDS_HOST', 'http://127.0.0.1:9')  # Offline even with a network.
  workdir = str(tmp_path / 'run')
  broken = tiny_config(steps=2, data_dir=str(tmp_path / 'empty'), name='cifar100')
  with pytest.raises(Exception, match='cifar100'):  # Not prepared there: fails loading, before step 1.
    train_and_evaluate(broken, workdir)
  assert _status(workdir) == 'failed'
  with mock_data():
    assert train_and_evaluate(tiny_config(steps=2), workdir)['steps'] == 2


def test_negative_example_counts_are_refused(tmp_path):
  for field in ('train_eval_examples', 'test_curve_examples'):
    config = tiny_config(steps=1, **{field: -1})
    with pytest.raises(ValueError, match=rf'data\.{field}=-1 must be >= 0'):
      train_and_evaluate(config, str(tmp_path / field))


def test_a_checkpoint_without_checksums_from_before_them_is_still_resumed(tmp_path, caplog):
  straight, old = str(tmp_path / 'straight'), str(tmp_path / 'old')
  with mock_data():
    expected = train_and_evaluate(_config(16), straight)
    assert train_and_evaluate(_config(16), old, stop_after=8) is None
    meta_path = os.path.join(old, 'checkpoints', '8', 'meta', 'metadata')
    meta = json.load(open(meta_path))
    del meta['crc32']  # As every checkpoint written before checksums were.
    json.dump(meta, open(meta_path, 'w'))
    resumed = train_and_evaluate(_config(16), old)
  assert _without_wall(resumed) == _without_wall(expected)
  assert not os.path.exists(os.path.join(old, CORRUPT_DIR))
  assert any('no checksums' in r.getMessage() for r in caplog.records)


def test_a_run_whose_only_checkpoint_is_bad_stops_instead_of_starting_over(tmp_path):
  workdir = str(tmp_path / 'run')
  with mock_data():
    assert train_and_evaluate(_config(16), workdir, stop_after=8) is None
    _flip_bytes(_largest_file(os.path.join(workdir, 'checkpoints', '8', 'state')))
    before = read_metrics(workdir)
    with pytest.raises(CorruptCheckpointError, match=r'checkpoints/8 is corrupt.*no older checkpoint'):
      train_and_evaluate(_config(16), workdir)
  assert os.path.exists(os.path.join(workdir, 'checkpoints', '8'))  # Left where it is, for the user.
  assert read_metrics(workdir) == before  # Nothing of the run's history is lost.


def test_a_run_killed_between_its_final_checkpoint_and_its_summary_logs_the_final_metrics_once(tmp_path):
  workdir = str(tmp_path / 'run')
  with mock_data():
    summary = train_and_evaluate(tiny_config(steps=4), workdir)
    os.remove(os.path.join(workdir, 'summary.json'))  # As if killed during the final evaluation.
    assert train_and_evaluate(tiny_config(steps=4), workdir) == summary | {'wall_seconds': mock.ANY}
  finals = [r for r in read_metrics(workdir) if any(k.startswith('final/') for k in r)]
  assert len(finals) == 1 and finals[0]['step'] == 4


def test_stop_requests_are_shared_by_nested_runs_and_a_second_ctrl_c_stops_at_once():
  with preemption.watch() as outer:
    with preemption.watch() as inner:
      assert inner is outer  # A request during one run of an experiment also stops the next.
    os.kill(os.getpid(), signal.SIGINT)
    assert outer.requested(1, 1)
    os.kill(os.getpid(), signal.SIGTERM)  # A repeated SIGTERM only asks again.
    with pytest.raises(KeyboardInterrupt):
      os.kill(os.getpid(), signal.SIGINT)
  assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
