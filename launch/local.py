"""The local executor: a study's trials on this machine, N at a time, each on its share of the CPU cores
(and of the GPUs, where there are any).

Each trial is its ordinary command in a child process, writing DIR/<name>/output.log. On Linux,
children get SIGTERM when the launcher dies, even by kill -9 (the parent-death signal), and are pinned
to their cores. SIGTERM or SIGINT to the launcher is passed on: every running trial checkpoints at its
next step and stops as 'preempted', and the same command later resumes them.
"""

import ctypes
import os
import signal
import subprocess
import sys
import time

import numpy as np
from absl import logging

from launch import study as study_lib

_PR_SET_PDEATHSIG = 1
LINUX = sys.platform.startswith('linux')
_prctl = ctypes.CDLL(None, use_errno=True).prctl if LINUX else None  # Looked up here: children only call it.


def _gpus() -> list[str]:
  """The GPUs trials may use: CUDA_VISIBLE_DEVICES where it is set (e.g. by SLURM), else nvidia-smi's
  list (none without it). The launcher itself never opens them."""
  if os.environ.get('CUDA_VISIBLE_DEVICES'):
    return os.environ['CUDA_VISIBLE_DEVICES'].split(',')
  try:
    listing = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True, timeout=20).stdout
  except (OSError, subprocess.TimeoutExpired):
    return []
  return [str(i) for i, line in enumerate(listing.splitlines()) if line.startswith('GPU ')]


def slots(parallel: int) -> list[dict]:
  """For each of `parallel` slots: its CPU cores and, with GPUs, its CUDA_VISIBLE_DEVICES (an equal
  share: trials never share a GPU, whose memory each would claim)."""
  cpus = sorted(os.sched_getaffinity(0)) if LINUX else list(range(os.cpu_count() or 1))
  gpus = _gpus()
  if gpus and len(gpus) % parallel:
    raise ValueError(f'--parallel={parallel} does not split the {len(gpus)} GPUs ({",".join(gpus)}) evenly; '
                     f'use a divisor of {len(gpus)}')
  result = []
  for i, group in enumerate(np.array_split(cpus, parallel)):
    slot = {'cpus': [int(c) for c in group] if len(group) else [cpus[i % len(cpus)]]}
    if gpus:
      slot['env'] = {'CUDA_VISIBLE_DEVICES': ','.join(np.array_split(gpus, parallel)[i])}
    result.append(slot)
  return result


def _child_setup(cpus):
  """Runs in the child before exec, on Linux: its cores, and SIGTERM when the launcher dies."""
  def setup():
    os.sched_setaffinity(0, cpus)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
  return setup if LINUX else None


def _eta(seconds: float) -> str:
  minutes, secs = divmod(int(seconds), 60)
  return f'{minutes // 60}h{minutes % 60:02d}m' if minutes >= 60 else f'{minutes}m{secs:02d}s'


def progress(study, names: list[str], durations: list[float], parallel: int) -> str:
  """'12 trials: 3 done, 2 running, 7 pending; ETA 5m10s' (ETA from this session's finished trials)."""
  statuses = [study.status(n) for n in names]
  counts = {s: statuses.count(s) for s in study_lib.STATUSES if statuses.count(s)}
  line = f'{len(names)} trials: ' + ', '.join(f'{n} {s}' for s, n in counts.items())
  left = sum(s in ('running', *study_lib.RESUMABLE) for s in statuses)
  if durations and left:
    line += f'; ETA {_eta(np.mean(durations) * left / parallel)}'
  return line


def start(study, name: str, slot: dict) -> subprocess.Popen:
  """Trial `name`'s command in a child process on `slot`'s cores, appending to DIR/<name>/output.log."""
  os.makedirs(study.run_dir(name), exist_ok=True)
  with open(os.path.join(study.run_dir(name), 'output.log'), 'a') as log:
    process = subprocess.Popen(study.command(name), cwd=study_lib.REPO, stdout=log, stderr=subprocess.STDOUT,
                               env=dict(os.environ, **slot.get('env', {})),
                               preexec_fn=_child_setup(slot['cpus']))
  logging.info('started %s (cores %s)', name, slot['cpus'])
  return process


def run(study, names: list[str], free: list[dict]) -> bool:
  """Train the trials `names` (those to run) on the `free` slots; False if stopped by a signal."""
  queue, running, durations = list(names), {}, []
  parallel = len(free)
  stopping = []

  def stop(signum, frame):
    del frame
    logging.warning('%s: passing it on to %d running trials (each checkpoints and stops); no new trials',
                    signal.Signals(signum).name, len(running))
    stopping.append(signum)
    for process, _, _ in running.values():
      process.send_signal(signal.SIGTERM)

  previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
  try:
    while (queue and not stopping) or running:
      while queue and free and not stopping:
        name, slot = queue.pop(0), free.pop(0)
        running[name] = (start(study, name, slot), slot, time.time())
      time.sleep(0.5)
      for name, (process, slot, started) in list(running.items()):
        if process.poll() is None:
          continue
        del running[name]
        free.append(slot)
        status = study.status(name)
        if status == 'done':
          durations.append(time.time() - started)
        logging.info('%s: %s (exit %d, %.0f s); %s', name, status, process.returncode,
                     time.time() - started, progress(study, list(study.trials), durations, parallel))
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
  return not stopping
