"""launch.sweep --executor=slurm on a real one-node SLURM (tests/slurm_cluster.py): a sweep of the test
study runs as one job array and reports; a trial requeued or signalled mid-run by SLURM resumes from its
own checkpoint and ends with the numbers of an uninterrupted run."""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from launch import local, slurm, study as study_lib
from tests.test_launch import CONFIG, REPO, _finish, _results, _steps_logged, _sweep
from jaxnets.train.writer import read_metrics
from tests.test_train import _assert_same_training

pytest_plugins = ['tests.slurm_cluster']
# Time for a signal mid-run, and periodic checkpoints too rare to be mistaken for the signal's.
LONGER = ['--config.train.steps=100', '--config.train.eval_every=20', '--config.train.checkpoint_every=50']


@pytest.mark.slurm
def test_a_sweep_runs_as_a_slurm_array_and_reports(slurm_cluster, tmp_path):
  directory = str(tmp_path / 'sw')
  code, out = _finish(_sweep(directory, '--executor=slurm', '--partition=debug', '--cpus_per_task=1',
                             '--time_min=30', '--wait'))
  assert code == 0, out[-3000:]
  study = study_lib.load(directory)
  assert [study.status(n) for n in study.trials] == ['done'] * 6
  report = subprocess.run([sys.executable, '-m', 'launch.report', directory], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
  assert report.returncode == 0, report.stderr[-3000:]
  table = open(os.path.join(directory, 'report.md')).read()
  assert sum(line.startswith('| 0.') and line.split(' | ')[3] == '3' for line in table.splitlines()) == 2


def _one_trial_study(directory):
  base = study_lib.load_config(CONFIG, LONGER)
  trial = study_lib.declared_trials(CONFIG, base)[:1]
  study = study_lib.create(CONFIG, LONGER, directory, trial)
  study.save()
  return study, next(iter(study.trials))


def _wait(predicate, seconds=600):
  deadline = time.time() + seconds
  while not predicate():
    assert time.time() < deadline
    time.sleep(0.2)


@pytest.mark.slurm
@pytest.mark.parametrize('interrupt', [['scontrol', 'requeue'], ['scancel', '--signal=USR2']])
def test_a_trial_interrupted_by_slurm_resumes_with_the_uninterrupted_numbers(slurm_cluster, tmp_path, interrupt):
  straight, name = _one_trial_study(str(tmp_path / 'straight'))
  local.run(straight, [name], [{'cpus': [0]}])  # One core, as the SLURM task's (CPU numbers depend on it).
  study, _ = _one_trial_study(str(tmp_path / 'slurm'))
  params = {'slurm_partition': 'debug', 'timeout_min': 30, 'cpus_per_task': 1, 'name': 'jaxnets-test'}
  job, = slurm.submit(study, [name], params, wait=False)
  _wait(lambda: any(r['step'] >= 10 for r in read_metrics(study.run_dir(name))))
  subprocess.run([*interrupt, job.job_id], check=True, timeout=60)
  _wait(lambda: study.status(name) == 'done')
  assert _results(study.directory) == _results(straight.directory)  # Bit for bit.
  assert _steps_logged(study.run_dir(name)) == list(range(5, 101, 5))
  sessions = json.load(open(os.path.join(study.run_dir(name), 'versions.json')))
  stopped = re.findall(r'preempted: stopped at step (\d+)', open(os.path.join(study.run_dir(name), 'output.log')).read())
  # It checkpointed where the signal found it (not at a periodic checkpoint) and resumed there.
  assert len(sessions) == 2 and len(stopped) == 1 and sessions[1]['start_step'] == int(stopped[0]) >= 10


@pytest.mark.slurm
def test_two_slurm_tasks_train_one_run_like_one_process_of_two_devices(slurm_cluster, tmp_path):
  """launch/slurm_multinode.sh as sbatch runs it: two tasks joined by jax.distributed through SLURM's
  environment, against one process with two CPU devices on the same global batch."""
  single, joined = str(tmp_path / 'single'), str(tmp_path / 'joined')
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=2')
  reference = subprocess.run([sys.executable, '-m', 'experiments.main', f'--config={CONFIG}',
                              f'--workdir={single}'], cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=600)
  assert reference.returncode == 0, reference.stderr[-3000:]
  job = subprocess.run(['sbatch', '--wait', '--ntasks=2', '--cpus-per-task=1', f'--output={tmp_path}/job.out',
                        'launch/slurm_multinode.sh', f'--config={CONFIG}', f'--workdir={joined}'],
                       cwd=REPO, capture_output=True, text=True, timeout=900,
                       env={k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'})
  log = open(tmp_path / 'job.out').read()
  assert job.returncode == 0, log[-3000:]
  assert '2 devices' in log  # One CPU device in each of the two processes.
  _assert_same_training(single, joined, _summary_of(single), _summary_of(joined))


def _summary_of(workdir):
  return json.load(open(os.path.join(workdir, 'summary.json')))
