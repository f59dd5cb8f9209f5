"""Where a CIFAR ResNet train step spends its time on this machine: XLA's ops grouped by kind.

  python -m benchmarks.profile_step [--net=resnet56] [--batch=128] [--steps=3]

Traces the loop's real jitted step (benchmarks.train_step.StepBench) with the JAX profiler and sums the
durations of XLA's ops by kind (the HLO instruction name without its number, marked "(convolution)" where
the op is or fuses a convolution): convolutions, YNN fusions (jaxnets' CPU fusion flag), transposes, other
fusions. Each kind's ms per step and share of all op time are printed, largest first.
"""

import argparse
import collections
import glob
import gzip
import json
import os
import re
import tempfile

from jaxnets import xla_env

xla_env.configure()  # jaxnets' XLA settings, as every entry point has them (before JAX starts).

import jax  # noqa: E402

from benchmarks.compare import NETS, net_config  # noqa: E402
from benchmarks.train_step import StepBench  # noqa: E402

# Trace events that are not XLA ops: the runtime's own spans and Python frames.
_NOT_OPS = ('ThunkExecutor', '$', 'PjitFunction', 'SlinkyThreadPool', 'CommonPjRt', 'end: ', 'ParseArguments',
            'Handle inputs')


def convolution_ops(hlo_text: str) -> set:
  """Names of the instructions of an optimized HLO module that are, or fuse, a convolution."""
  computations, name = {}, None
  for line in hlo_text.splitlines():
    if line and not line.startswith(' ') and line.rstrip().endswith('{'):
      name = line.split()[1 if line.startswith('ENTRY') else 0].lstrip('%')
    elif name:
      computations.setdefault(name, []).append(line)
  with_conv = {c for c, lines in computations.items() if any(' convolution(' in line for line in lines)}
  out = set()
  for lines in computations.values():
    for line in lines:
      m = re.match(r'\s*(?:ROOT )?%?([\w.-]+) = .*?(?:calls=%?([\w.-]+)|( convolution\())', line)
      if m and (m.group(3) or m.group(2) in with_conv):
        out.add(m.group(1))
  return out


def op_times(trace_dir: str, convolutions: set) -> collections.Counter:
  """Microseconds per op kind over the trace in `trace_dir`; ops in `convolutions` marked as such."""
  path = sorted(glob.glob(os.path.join(trace_dir, '**', '*.trace.json.gz'), recursive=True))[-1]
  with gzip.open(path) as f:
    events = json.load(f)['traceEvents']
  kinds = collections.Counter()
  for e in events:
    if e.get('ph') == 'X' and not e['name'].startswith(_NOT_OPS):
      kind = re.sub(r'\.\d+$', '', e['name'])
      kinds[f'{kind} (convolution)' if e['name'] in convolutions else kind] += e.get('dur', 0)
  return kinds


def main():
  """Print the op-kind table of the train step."""
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--net', default='resnet56', choices=list(NETS))
  parser.add_argument('--batch', type=int, default=None, help="default: the net's config's")
  parser.add_argument('--steps', type=int, default=3)
  args = parser.parse_args()
  config = net_config(args.net, args.batch, None)
  bench = StepBench(config, config.data.batch_size, config.data.eval_batch_size)
  compiled, _ = bench.compile_train()
  bench.train_images_per_second(1, compiled)  # Warm up outside the trace.
  with tempfile.TemporaryDirectory() as trace_dir:
    with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
      rate = bench.train_images_per_second(args.steps, compiled)
    kinds = op_times(trace_dir, convolution_ops(compiled.as_text()))
  total = sum(kinds.values())
  print(f'{NETS[args.net][0]} train step, batch {config.data.batch_size}: {rate:.1f} img/s while traced, '
        f'{total / args.steps / 1e3:.0f} ms of XLA ops per step\n')
  print('| op kind | ms per step | share |\n|---|---:|---:|')
  for kind, us in kinds.most_common(12):
    print(f'| {kind} | {us / args.steps / 1e3:.1f} | {us / total:.1%} |')


if __name__ == '__main__':
  main()
