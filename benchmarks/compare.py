"""jaxnets against a PyTorch reference of the same nets and recipe, on this machine in one run: a markdown table.

  python -m benchmarks.compare [--nets=resnet20,resnet56,resnet110,mlp] [--steps=10] [--batch=N] [--out=FILE.md]

Per net, jaxnets trains through its real jitted train step (the builder's: device-side crop + flip, optax
chain, diagnostics; benchmarks/train_step.py) and PyTorch through its eager twin (benchmarks/torch_reference.py:
the same parameters, init, recipe and batch), on fixed random uint8 images. Each (framework, net) runs in a
fresh process of its own, so its peak RSS holds no other's allocations; jaxnets' runs with the persistent
compilation cache off, so its compile time is a cold one. PyTorch is needed by this benchmark only.
"""

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys

import ml_collections

from experiments.configs import default, mlp

INSTALL_TORCH = 'pip install torch==2.13.0+cpu --index-url https://download.pytorch.org/whl/cpu'
# name -> (label in the table, CIFAR ResNet depth; None: the course MLP of experiments/configs/mlp.py).
NETS = {'resnet20': ('ResNet-20', 20), 'resnet56': ('ResNet-56', 56), 'resnet110': ('ResNet-110', 110),
        'mlp': ('MLP 784-300-100-10', None)}
MIB = 2 ** 20
COLUMNS = ('net', 'batch', 'jaxnets img/s', 'PyTorch img/s', 'ratio', 'jaxnets compile s', 'jaxnets peak RSS MiB',
           'PyTorch peak RSS MiB', 'XLA temp MiB', 'XLA step MiB', 'jaxnets eval img/s', 'PyTorch eval img/s',
           'params')


def net_config(net: str, batch: int | None, eval_batch: int | None) -> ml_collections.ConfigDict:
  """The jaxnets config of `net` (the default recipe on CIFAR-10's shapes for the ResNets, the course MLP's
  own config for the MLP), with its batch sizes unless given."""
  depth = NETS[net][1]
  if depth is None:
    config = mlp.get_config()
  else:
    config = default.get_config()  # Momentum SGD, L2 weight decay, crop + flip: the default recipe.
    config.model = ml_collections.ConfigDict({'name': 'cifar_resnet', 'depth': depth})
    config.data.name = 'cifar10'
  config.data.batch_size = batch or config.data.batch_size
  config.data.eval_batch_size = eval_batch or config.data.eval_batch_size
  return config


def xla_memory(compiled) -> dict:
  """XLA's account of a compiled step in MiB: temp buffers, and the step's whole footprint (temp + arguments +
  outputs, less the outputs that alias donated arguments); {} where the backend gives none."""
  stats = compiled.memory_analysis()
  if stats is None:
    return {}
  total = (stats.temp_size_in_bytes + stats.argument_size_in_bytes + stats.output_size_in_bytes
           - stats.alias_size_in_bytes)
  return {'xla_temp_mib': stats.temp_size_in_bytes / MIB, 'xla_step_mib': total / MIB}


def jaxnets_figures(config, steps: int) -> dict:
  """Parameters, cold compile seconds, XLA memory and train / eval img/s of jaxnets' jitted steps for `config`."""
  # Imported here, in the jaxnets worker only: train_step sets jaxnets' XLA flags, then starts JAX.
  from benchmarks.train_step import StepBench
  from jaxnets.train.state import count_params
  bench = StepBench(config, config.data.batch_size, config.data.eval_batch_size)
  params = count_params(bench.state.params)
  compiled, compile_s = bench.compile_train()
  return {'params': params, 'compile_s': compile_s, **xla_memory(compiled),
          'train_ips': bench.train_images_per_second(steps, compiled),
          'eval_ips': bench.eval_images_per_second(max(1, steps // 4)), 'xla_flags': os.environ.get('XLA_FLAGS', '')}


def torch_figures(config, steps: int) -> dict:
  """Parameters and train / eval img/s of the PyTorch twin of `config`."""
  from benchmarks import torch_reference  # Imported here, in the PyTorch worker only.
  return {**torch_reference.measure(config, config.data.batch_size, config.data.eval_batch_size, steps),
          'omp_wait_policy': os.environ.get('OMP_WAIT_POLICY', '')}


WORKERS = {'jaxnets': jaxnets_figures, 'torch': torch_figures}


def peak_rss_mib() -> float:
  """This process's peak resident set size in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return peak / MIB if sys.platform == 'darwin' else peak / 1024


def work(framework: str, args) -> None:
  """The worker process: measure one net in one framework and print its figures as a JSON line."""
  config = net_config(args.nets, args.batch, args.eval_batch)
  figures = WORKERS[framework](config, args.steps)
  print(json.dumps({**figures, 'batch': config.data.batch_size, 'eval_batch': config.data.eval_batch_size,
                    'peak_rss_mib': peak_rss_mib()}))


def worker_env(framework: str) -> dict:
  """A worker's environment: jaxnets' without a persistent compilation cache, for a cold compile; PyTorch's with
  OpenMP threads that sleep when idle, unless OMP_WAIT_POLICY is set (spinning ones, libgomp's default, made
  PyTorch's steps 10-100x slower on 2 cores while another process used one; jaxnets' XLA threads did not slow so)."""
  env = dict(os.environ)
  if framework == 'jaxnets':
    env['JAXNETS_COMPILATION_CACHE'] = '0'
    env.pop('JAX_COMPILATION_CACHE_DIR', None)
  else:
    env.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
  return env


def run_worker(framework: str, net: str) -> dict:
  """Figures of `net` in `framework`, measured in a fresh process given this command's flags."""
  print(f'{net}: {framework}...', file=sys.stderr, flush=True)
  command = [sys.executable, '-m', 'benchmarks.compare', *sys.argv[1:], f'--worker={framework}', f'--nets={net}']
  done = subprocess.run(command, env=worker_env(framework), capture_output=True, text=True, check=False)
  if done.returncode:
    raise SystemExit(f'{framework} {net} failed (exit {done.returncode}):\n{done.stderr[-3000:]}')
  return json.loads(done.stdout.strip().splitlines()[-1])


def measure_net(net: str) -> tuple[dict, dict]:
  """(jaxnets' figures, PyTorch's) for `net`, after checking that both trained the same number of parameters."""
  jx, pt = run_worker('jaxnets', net), run_worker('torch', net)
  if jx['params'] != pt['params']:
    raise SystemExit(f'{net}: jaxnets has {jx["params"]:,} parameters and its PyTorch twin {pt["params"]:,}: '
                     f'not the same net')
  return jx, pt


def row(net: str, jx: dict, pt: dict) -> str:
  """The table row of one net."""
  xla = [f'{jx[key]:.0f}' if key in jx else 'n/a' for key in ('xla_temp_mib', 'xla_step_mib')]
  cells = (NETS[net][0], jx['batch'], f'{jx["train_ips"]:.1f}', f'{pt["train_ips"]:.1f}',
           f'{jx["train_ips"] / pt["train_ips"]:.2f}', f'{jx["compile_s"]:.1f}', f'{jx["peak_rss_mib"]:.0f}',
           f'{pt["peak_rss_mib"]:.0f}', *xla, f'{jx["eval_ips"]:.1f}', f'{pt["eval_ips"]:.1f}', f'{jx["params"]:,}')
  return '| ' + ' | '.join(map(str, cells)) + ' |'


def cpu_model() -> str:
  """The CPU's model name from /proc/cpuinfo (Linux), else what platform knows."""
  try:
    with open('/proc/cpuinfo') as f:
      names = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
  except OSError:
    names = []
  return names[0] if names else platform.processor() or 'unknown CPU'


def header(load: float, jx: dict, pt: dict, steps: int) -> str:
  """The lines above the table: machine and its load, versions, settings in force, and what each figure is."""
  versions = ', '.join(f'{p} {importlib.metadata.version(p)}' for p in ('jax', 'jaxlib', 'flax', 'optax', 'torch'))
  eval_batch = jx['eval_batch']
  return (f'jaxnets vs PyTorch on {cpu_model()}, {os.cpu_count()} cores, load average {load:.2f} at the start '
          f'(other processes on these cores slow both)\n'
          f'{versions}; XLA_FLAGS={jx["xla_flags"]!r}; PyTorch eager, {os.cpu_count()} threads, '
          f'OMP_WAIT_POLICY={pt["omp_wait_policy"]!r}\n'
          f'img/s: train over {steps} steps after a warm-up step, eval (batch {eval_batch}, no grad) over '
          f'{max(1, steps // 4)} calls; ratio = jaxnets / PyTorch train img/s; compile s: tracing, lowering and '
          f'compiling the train step, no cache; peak RSS: each measuring process alone; XLA temp / step MiB: XLA\'s '
          f'memory analysis of the compiled train step (temp; temp + arguments + outputs - aliased)\n')


def main():
  """Measure each net in both frameworks, one process each, and print (and optionally write) the table."""
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--nets', default=','.join(NETS), help=f'comma-separated, of {", ".join(NETS)}')
  parser.add_argument('--steps', type=int, default=10, help='timed train steps (eval: steps // 4 calls)')
  parser.add_argument('--batch', type=int, default=None, help="train batch (default: the net's config, 128 / 64)")
  parser.add_argument('--eval_batch', type=int, default=None, help="eval batch (default: the config's, 1000)")
  parser.add_argument('--out', default='', help='also write the table to this markdown file')
  parser.add_argument('--worker', choices=sorted(WORKERS), help=argparse.SUPPRESS)
  args = parser.parse_args()
  nets = args.nets.split(',')
  if unknown := [n for n in nets if n not in NETS]:
    parser.error(f'unknown nets {", ".join(unknown)}; valid choices: {", ".join(NETS)}')
  if args.worker:
    work(args.worker, args)
    return
  if importlib.util.find_spec('torch') is None:
    print(f'benchmarks.compare needs PyTorch (an optional benchmark dependency): {INSTALL_TORCH}', file=sys.stderr)
    sys.exit(2)
  load = os.getloadavg()[0]
  results = {net: measure_net(net) for net in nets}
  table = '\n'.join([header(load, *results[nets[0]], args.steps),
                     '| ' + ' | '.join(COLUMNS) + ' |', '|---|' + '---:|' * (len(COLUMNS) - 1),
                     *(row(net, jx, pt) for net, (jx, pt) in results.items())])
  print(table)
  if args.out:
    with open(args.out, 'w') as f:
      f.write(table + '\n')


if __name__ == '__main__':
  main()
