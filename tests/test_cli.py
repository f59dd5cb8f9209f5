"""The training command line: a config file that is not there is one line and exit code 2, before JAX;
forced host devices get the threads they need, and a real config trains on four of them."""

import json
import os
import subprocess
import sys

import pytest

from jaxnets import xla_env

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, 'experiments', 'configs')

# Runs experiments.main as `python -m` would, then prints which heavy libraries it had imported.
_IMPORTS_PROBE = '''
import runpy, sys
try:
  runpy.run_module('experiments.main', run_name='__main__', alter_sys=True)
finally:
  print(sorted(m for m in ('jax', 'tensorflow') if m in sys.modules))
'''


def _run(*args):
  return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize('args', [['--config=configs/nope.py'], ['--config', 'configs/nope.py:variant']])
def test_a_missing_config_is_one_line_naming_the_paths_and_the_configs(args):
  done = _run('-m', 'experiments.main', *args)
  assert done.returncode == 2 and done.stdout == ''
  [line] = done.stderr.splitlines()
  assert "no file 'configs/nope.py'" in line
  assert os.path.join(REPO, 'configs', 'nope.py') in line and os.path.join(CONFIGS, 'nope.py') in line
  configs = [name for name in os.listdir(CONFIGS) if name.endswith('.py') and name != '__init__.py']
  assert 'configs/mlp.py' in line and all(f'configs/{name}' in line for name in configs)


def test_a_missing_config_fails_before_jax_is_imported():
  done = _run('-c', _IMPORTS_PROBE, '--config=configs/nope.py')
  assert done.returncode == 2 and "no file 'configs/nope.py'" in done.stderr
  assert done.stdout.strip() == '[]'


def test_the_command_line_leaves_tensorflow_to_the_data_that_needs_it():
  done = _run('-c', _IMPORTS_PROBE, '--config=configs/mlp.py', '--config.train.stepz=1')  # Fails after JAX starts.
  assert done.returncode == 2 and "unknown config field 'train.stepz'" in done.stderr
  assert done.stdout.strip() == "['jax']"


def test_forced_host_devices_are_read_from_xla_flags():
  assert xla_env.forced_host_devices('') == 1
  assert xla_env.forced_host_devices('--xla_force_host_platform_device_count=4') == 4
  assert xla_env.forced_host_devices('--xla_force_host_platform_device_count=2 --xla_dump_to=/tmp/d '
                                     '--xla_force_host_platform_device_count=8') == 8


@pytest.mark.parametrize('count', [2, 8, 64])
def test_several_forced_devices_get_two_threads_each(count):
  environ = {'XLA_FLAGS': f'--xla_dump_to=/tmp/d --xla_force_host_platform_device_count={count}'}
  xla_env.configure_host_devices(environ)
  assert int(environ['PJRT_NPROC']) == max(os.cpu_count(), 2 * count)
  assert environ['XLA_FLAGS'] == f'--xla_dump_to=/tmp/d --xla_force_host_platform_device_count={count}'


@pytest.mark.parametrize('environ', [
    {}, {'XLA_FLAGS': '--xla_force_host_platform_device_count=1'},
    {'XLA_FLAGS': '--xla_force_host_platform_device_count=4', 'PJRT_NPROC': '3'}])
def test_one_device_or_a_set_thread_count_is_left_alone(environ):
  before = dict(environ)
  xla_env.configure_host_devices(environ)
  assert environ == before


def test_a_real_config_trains_on_four_forced_devices(tmp_path):
  # 300 steps with nothing read back until the end: the host runs far ahead of the devices, which with
  # XLA's default thread count aborted in the all-reduce (exit 134; 3 of 3 runs on a 2-core machine).
  workdir = tmp_path / 'run'
  steps = '--config.train.steps=300 --config.train.log_every=300 --config.train.eval_every=300'
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=4')
  env.pop('PJRT_NPROC', None)
  done = subprocess.run(
      [sys.executable, '-m', 'experiments.main', '--config=configs/mlp.py', f'--workdir={workdir}',
       *steps.split(), '--config.train.checkpoint_every=300'],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  assert ' 4 devices, steps 0 -> 300' in done.stderr
  assert len(json.load(open(workdir / 'versions.json'))[-1]['devices']) == 4
  assert json.load(open(workdir / 'summary.json'))['steps'] == 300
