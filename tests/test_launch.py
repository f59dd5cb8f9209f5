"""launch/: sweeps declared as data, the local executor surviving kill -9, the report's statistics by
hand, the print executor, and a TPE study of two workers sharing one optuna journal."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from jaxnets import experiment, sweeps as h
from launch import report, study as study_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = 'tests/configs/sweep_mlp.py'


def _sweep(sweep_dir, *args, **popen):
  return subprocess.Popen([sys.executable, '-m', 'launch.sweep', f'--config={CONFIG}',
                           f'--sweep_dir={sweep_dir}', *args], cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **popen)


def _finish(process, timeout=900):
  out, _ = process.communicate(timeout=timeout)
  return process.returncode, out


def test_sweep_functions_give_stable_names_and_the_declared_combinations():
  trials = h.product([h.sweep('config.optimizer.lr', [0.1, 0.01]),
                      h.zip([h.sweep('model.depth', [20, 56]), h.sweep('config.data.batch_size', [64, 128])]),
                      h.seeds([0, 1])])
  assert len(trials) == 2 * 2 * 2
  assert trials[3].overrides == {'optimizer.lr': 0.1, 'model.depth': 56, 'data.batch_size': 128, 'seed': 1}
  assert h.names(trials)[3] == 'lr=0.1-depth=56-batch_size=128-seed=1'
  draws = h.random(5, [h.loguniform('optimizer.lr', 1e-4, 1.0), h.choice('model.name', ['a', 'b'])], seed=3)
  assert draws == h.random(5, [h.loguniform('optimizer.lr', 1e-4, 1.0), h.choice('model.name', ['a', 'b'])],
                           seed=3)
  assert all(1e-4 <= t.overrides['optimizer.lr'] <= 1.0 for t in draws)
  assert len(h.chain([h.sweep('a', [1, 2]), h.fixed('b', 3)])) == 3
  with pytest.raises(ValueError, match='repeats trials: a=1'):
    h.names(h.chain([h.sweep('a', [1]), h.sweep('a', [1])]))
  with pytest.raises(ValueError, match='sets a twice'):
    h.product([h.sweep('a', [1]), h.sweep('a', [2])])
  with pytest.raises(ValueError, match='one length'):
    h.zip([h.sweep('a', [1, 2]), h.sweep('b', [1])])


def test_the_in_process_sweep_string_expands_through_the_same_functions():
  from experiments.configs import resnet_degradation  # noqa: PLC0415
  config = resnet_degradation.get_config(None)
  declared = h.product([h.sweep('model.residual', [False, True]), h.sweep('model.depth', [20, 56])])
  assert experiment.trials(config) == declared
  assert [name for name, _ in experiment.expand(config)] == h.names(declared)


def test_print_lists_every_trial_with_its_command_and_runs_nothing(tmp_path):
  code, out = _finish(_sweep(str(tmp_path / 'sw'), '--executor=print', '--config.train.steps=7'))
  assert code == 0, out
  lines = [line for line in out.splitlines() if line.startswith('run ')]
  assert len(lines) == 6 and '6 of 6 trials would run' in out
  assert '--config.train.steps=7' in lines[0] and '--config.optimizer.lr=0.01 --config.seed=0' in lines[0]
  assert not os.path.exists(tmp_path / 'sw')
  code, out = _finish(_sweep(str(tmp_path / 'sw'), '--executor=print', '--partition=gpu', '--gpus_per_task=1'))
  assert code == 0 and "one array of 6 tasks through submitit" in out and "'slurm_gpus_per_task': 1" in out
  assert "'slurm_partition': 'gpu'" in out and sum(line.startswith('  task ') for line in out.splitlines()) == 6


def test_a_bad_trial_value_fails_before_anything_trains(tmp_path):
  code, out = _finish(_sweep(str(tmp_path / 'sw'), '--executor=local', '--config.optimizer.momentum=1.5'))
  assert code == 1 and out.splitlines()[-1] == ('launch.sweep: trial lr=0.01-seed=0: optimizer.momentum must '
                                                'be in [0, 1), got 1.5')
  assert not os.path.exists(tmp_path / 'sw' / 'lr=0.01-seed=0')


def test_a_base_override_of_a_field_every_trial_sets_is_refused(tmp_path):
  code, out = _finish(_sweep(str(tmp_path / 'sw'), '--executor=local', '--config.optimizer.lr=0.5'))
  assert code == 1 and out.splitlines()[-1] == ('launch.sweep: --config.optimizer.lr would be replaced in every run: '
                                                'the sweep sets it per run (optimizer.lr, seed); set it there instead')
  code, out = _finish(_sweep(str(tmp_path / 'sw'), '--search=tpe', '--trials=1', '--config.optimizer.lr=0.5'))
  assert code == 1 and out.splitlines()[-1] == ('launch.sweep: --config.optimizer.lr would be replaced in every run: '
                                                'get_search sets it per run (optimizer.lr); set it there instead')
  assert not os.path.exists(tmp_path / 'sw')


def _results(sweep_dir):
  study = study_lib.load(sweep_dir)
  return {name: {k: v for k, v in json.load(open(os.path.join(study.run_dir(name), 'summary.json'))).items()
                 if k != 'wall_seconds'} for name in study.trials}


def _steps_logged(run_dir):
  with open(os.path.join(run_dir, 'metrics.jsonl')) as f:
    return [json.loads(line)['step'] for line in f if 'train/loss' in line]


def _checkpointed_running_trial(sweep_dir):
  """A trial that is running and has a checkpoint, or None."""
  for name in _trial_names(sweep_dir):
    run_dir = os.path.join(sweep_dir, name)
    if (os.path.exists(os.path.join(run_dir, 'checkpoints', '10')) and
        not os.path.exists(os.path.join(run_dir, 'summary.json'))):
      return name
  return None


def test_a_sweep_killed_midway_finishes_every_trial_once_with_the_uninterrupted_numbers(tmp_path):
  straight, killed = str(tmp_path / 'straight'), str(tmp_path / 'killed')
  longer = ['--config.train.steps=60', '--config.train.eval_every=20']  # Time to be killed mid-trial.
  code, out = _finish(_sweep(straight, '--parallel=2', *longer))
  assert code == 0, out[-3000:]
  launcher = _sweep(killed, '--parallel=1', *longer, start_new_session=True)
  deadline = time.time() + 600
  while (victim := _checkpointed_running_trial(killed)) is None or victim == _trial_names(killed)[0]:
    assert time.time() < deadline and launcher.poll() is None
    time.sleep(0.05)
  os.killpg(launcher.pid, signal.SIGKILL)  # kill -9 of the launcher and its trials.
  launcher.wait()
  study = study_lib.load(killed)
  while study.status(victim) == 'running' and time.time() < deadline:  # Until the kernel has reaped it.
    time.sleep(0.05)
  statuses = [study.status(n) for n in study.trials]
  assert 1 <= statuses.count('done') < 6 and study.status(victim) == 'interrupted', statuses
  code, out = _finish(_sweep(killed, '--parallel=2', *longer))
  assert code == 0, out[-3000:]
  assert _results(killed) == _results(straight)  # Every number, bit for bit.
  for name in study.trials:
    assert study.status(name) == 'done'
    assert _steps_logged(study.run_dir(name)) == list(range(5, 61, 5))  # Each step once.
    sessions = json.load(open(os.path.join(study.run_dir(name), 'versions.json')))
    # Finished trials were not run again; the killed one resumed from its last checkpoint.
    assert [s['start_step'] for s in sessions][1:] == ([] if name != victim else [sessions[1]['start_step']])
  victim_sessions = json.load(open(os.path.join(study.run_dir(victim), 'versions.json')))
  assert victim_sessions[1]['start_step'] >= 10


def _trial_names(sweep_dir):
  path = os.path.join(sweep_dir, 'sweep.json')
  return list(json.load(open(path))['trials']) if os.path.exists(path) else []


def _fake_trial(directory, name, status, test_error=None):
  run_dir = os.path.join(directory, name)
  os.makedirs(run_dir)
  json.dump({'status': status, **({'error': 'boom'} if status == 'failed' else {})},
            open(os.path.join(run_dir, 'status.json'), 'w'))
  if test_error is not None:
    json.dump({'test_error': test_error, 'train_error': test_error / 2, 'wall_seconds': 10.0},
              open(os.path.join(run_dir, 'summary.json'), 'w'))


def test_the_report_gives_mean_and_sample_std_over_seeds_by_hand_and_lists_what_is_not_done(tmp_path):
  directory = str(tmp_path / 'sw')
  trials = h.product([h.sweep('optimizer.lr', [0.01, 0.1]), h.seeds([0, 1, 2])])
  names = h.names(trials)
  study = study_lib.Study(directory, CONFIG, [], {n: t.overrides for n, t in zip(names, trials)})
  study.save()
  errors = {names[0]: 0.1, names[1]: 0.2, names[2]: 0.4, names[3]: 0.3, names[4]: 0.5}
  for name in names[:5]:
    _fake_trial(directory, name, 'done', errors[name])
  _fake_trial(directory, names[5], 'failed')
  report.write(directory)
  text = open(os.path.join(directory, 'report.md')).read()
  rows = [line.split(' | ') for line in text.splitlines() if line.startswith('| 0.')]
  # lr 0.01: 0.1, 0.2, 0.4 -> mean 0.7/3, std sqrt(((0.1-m)^2 + (0.2-m)^2 + (0.4-m)^2) / 2) = 0.1528;
  # lr 0.1: 0.3, 0.5 (the third seed failed) -> mean 0.4, std sqrt(0.02) = 0.1414. Lower is better.
  assert [r[0].strip('| ') for r in rows] == ['0.01', '0.1']
  assert float(rows[0][1]) == pytest.approx(0.2333, abs=5e-5) and float(rows[0][2]) == pytest.approx(0.1528, abs=5e-5)
  assert rows[0][3] == '3' and rows[1][3] == '2'
  assert float(rows[1][1]) == pytest.approx(0.4) and float(rows[1][2]) == pytest.approx(math.sqrt(0.02), abs=5e-5)
  assert f'| {names[5]} | failed | boom |' in text
  assert os.path.exists(os.path.join(directory, 'report_lr.png'))


def test_a_tpe_study_of_two_workers_runs_the_requested_trials_once_each_and_resumes_a_killed_one(tmp_path):
  directory = str(tmp_path / 'tpe')
  tpe = ['--search=tpe', '--trials=5', '--config.train.steps=60', '--config.train.checkpoint_every=5']
  first = _sweep(directory, *tpe, start_new_session=True)
  deadline = time.time() + 600
  while (victim := _checkpointed_running_trial(directory)) is None:
    assert time.time() < deadline and first.poll() is None
    time.sleep(0.05)
  os.killpg(first.pid, signal.SIGKILL)  # The worker and its trial, mid-run.
  first.wait()
  workers = [_sweep(directory, *tpe) for _ in range(2)]
  for worker in workers:
    code, out = _finish(worker)
    assert code == 0, out[-3000:]
  sessions = json.load(open(os.path.join(directory, victim, 'versions.json')))
  assert len(sessions) == 2 and sessions[1]['start_step'] >= 10  # Resumed, not started over.
  import optuna  # noqa: PLC0415
  storage = optuna.storages.JournalStorage(
      optuna.storages.journal.JournalFileBackend(os.path.join(directory, 'optuna.journal')))
  trials = optuna.load_study(study_name='jaxnets', storage=storage).trials
  assert len(trials) == 5 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
  assert sorted(t.number for t in trials) == list(range(5))
  names = _trial_names(directory)
  assert len(names) == 5
  for trial, name in zip(sorted(trials, key=lambda t: t.number), sorted(names)):
    summary = json.load(open(os.path.join(directory, name, 'summary.json')))
    assert trial.value == summary['test_error']  # Told the run's own result.
    sessions = json.load(open(os.path.join(directory, name, 'versions.json')))
    assert len(sessions) == (2 if name == victim else 1)  # Trained once; the killed one resumed once.


def test_the_multi_host_scripts_print_the_command_of_every_process():
  env = dict(os.environ, PRINT='1')
  args = ['--config=configs/mlp.py', '--workdir=/shared/run', '--config.optimizer.lr=0.05']
  slurm = subprocess.run(['bash', 'launch/slurm_multinode.sh', *args], cwd=REPO, env=env, capture_output=True,
                         text=True, check=True).stdout.split()
  assert slurm[:5] == ['srun', '--kill-on-bad-exit=1', 'python3', '-m', 'experiments.main']
  assert slurm[5:] == ['--distributed', *args]
  tpu = subprocess.run(['bash', 'launch/tpu_pod.sh', 'pod', 'us-central2-b', *args], cwd=REPO, env=env,
                       capture_output=True, text=True, check=True).stdout
  assert tpu.startswith('gcloud compute tpus tpu-vm ssh pod --zone=us-central2-b --worker=all --command=')
  assert 'python3\\ -m\\ experiments.main\\ --distributed\\ --config=configs/mlp.py' in tpu
  missing = subprocess.run(['bash', 'launch/tpu_pod.sh', 'pod'], cwd=REPO, capture_output=True, text=True)
  assert missing.returncode == 2 and missing.stderr.startswith('usage: ')


def test_the_report_of_a_union_of_axes_plots_each_axis_over_its_own_settings(tmp_path):
  directory = str(tmp_path / 'sw')
  trials = h.chain([h.sweep('optimizer.lr', [0.01, 0.1]), h.sweep('optimizer.weight_decay', [0, 1e-4])])
  names = h.names(trials)
  study_lib.Study(directory, CONFIG, [], {n: t.overrides for n, t in zip(names, trials)}).save()
  for name, error in zip(names, [0.3, 0.2, 0.25, 0.35]):
    _fake_trial(directory, name, 'done', error)
  written = report.write(directory)
  assert {os.path.basename(p) for p in written} == {'report.md', 'report_lr.png', 'report_weight_decay.png',
                                                     'report_curves.png'}
  rows = [line for line in open(os.path.join(directory, 'report.md')) if line.startswith('| ') and '---' not in line]
  assert [r.split(' | ')[:3] for r in rows[1:]] == [['| 0.1', '', '0.2'], ['| ', '0', '0.25'],
                                                   ['| 0.01', '', '0.3'], ['| ', '0.0001', '0.35']]
