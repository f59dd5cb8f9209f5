"""Time to the first training step with a cold and a warm persistent compilation cache.

  python -m benchmarks.first_step [--config=configs/resnet_degradation.py] [--config.F=V ...]

Runs the config's last run (ResNet-56 of the degradation study) to step 1 (build, data, init, compile, one
step, its checkpoint) in fresh processes: twice with a new, empty cache directory (cold, then warm: what a second run of the same config,
a resumed run or a sweep's next trial sees), then once with the cache off. Prints each process's wall
time (imports included) and the time inside the training loop.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from experiments import config_files

_CHILD = '''
import json, sys, time
start = time.perf_counter()
from jaxnets import xla_env
xla_env.configure()
from ml_collections import config_flags
from absl import flags
from jaxnets import experiment
from jaxnets.train.loop import train_and_evaluate
config_flags.DEFINE_config_file('config', None, '', lock_config=False, accept_new_attributes=True)
flags.FLAGS(sys.argv[:1] + sys.argv[2:])
config = experiment.expand(flags.FLAGS.config)[-1][1]
config.train.log_every = 1  # stop_after must be a multiple of it.
imported = time.perf_counter()
train_and_evaluate(config, sys.argv[1], stop_after=1)
print(json.dumps({'imports_s': imported - start, 'loop_s': time.perf_counter() - imported}))
'''


def first_step(args: list[str], cache: str | None) -> dict:
  """{'wall_s', 'imports_s', 'loop_s'} of one fresh process training to step 1, with `cache` (None: off)."""
  env = {k: v for k, v in os.environ.items() if k != 'JAX_COMPILATION_CACHE_DIR'}
  env.update({'JAX_COMPILATION_CACHE_DIR': cache} if cache else {'JAXNETS_COMPILATION_CACHE': '0'})
  with tempfile.TemporaryDirectory() as workdir:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, '-c', _CHILD, workdir, *args], env=env, capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - start
  if done.returncode:
    raise SystemExit(f'the run failed (exit {done.returncode}):\n{done.stderr[-2000:]}')
  return {'wall_s': wall, **json.loads(done.stdout.strip().splitlines()[-1])}


def main():
  """Print cold, warm and uncached times to the first step."""
  args = sys.argv[1:] or ['--config=configs/resnet_degradation.py']
  args = [f'--config={config_files.locate(a.split("=", 1)[1])}' if a.startswith('--config=') else a for a in args]
  with tempfile.TemporaryDirectory() as cache:
    rows = [('cold cache', first_step(args, cache)), ('warm cache', first_step(args, cache)),
            ('no cache', first_step(args, None))]
  print(f'time to the first step of {" ".join(args)}\n')
  print('| cache | process wall s | imports s | loop to step 1 s |\n|---|---:|---:|---:|')
  for name, r in rows:
    print(f'| {name} | {r["wall_s"]:.1f} | {r["imports_s"]:.1f} | {r["loop_s"]:.1f} |')
  cold, warm = rows[0][1], rows[1][1]
  print(f'\nwarm / cold: {warm["wall_s"] / cold["wall_s"]:.0%} of the process wall time, '
        f'{warm["loop_s"] / cold["loop_s"]:.0%} of the loop time')


if __name__ == '__main__':
  main()
