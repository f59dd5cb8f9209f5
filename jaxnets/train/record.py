"""What a run directory records about itself: resolved config, library versions, status, final summary."""

import json
import math
import os
import platform
import sys
import time
from importlib import metadata

import jax
from absl import logging

_PACKAGES = ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'tensorflow-cpu', 'tensorflow',
             'tensorflow-datasets', 'ml-collections', 'numpy')


def versions() -> dict:
  """Python, platform, devices, usable CPU cores, XLA flags and the versions of the libraries a result
  depends on."""
  found = {}
  for name in _PACKAGES:
    try:
      found[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      pass
  cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
  return {'python': sys.version.split()[0], 'platform': platform.platform(),
          'devices': [str(d) for d in jax.devices()], 'process_count': jax.process_count(),
          'cpu_cores': cores,  # XLA's CPU results depend on how many threads split each reduction.
          'xla_flags': os.environ.get('XLA_FLAGS', ''), 'packages': found}


def strict_json(value):
  """`value` with every NaN or infinite float as None (JSON's null): e.g. the IoU of a class absent from
  both truth and predictions, which bare NaN would make unreadable to strict JSON readers."""
  if isinstance(value, dict):
    return {k: strict_json(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [strict_json(v) for v in value]
  return None if isinstance(value, float) and not math.isfinite(value) else value


def write_json(path: str, value, sort_keys: bool = True) -> None:
  """Write `value` as strict JSON atomically (keys sorted, unless their order means something)."""
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(strict_json(value), f, indent=2, sort_keys=sort_keys, allow_nan=False)
  os.replace(tmp, path)  # Atomic: a crash never leaves half a file.


def read_json(path: str):
  """The JSON value stored at `path`."""
  with open(path) as f:
    return json.load(f)


def _trained(workdir: str) -> bool:
  """Whether anything under `workdir` was trained: a numbered checkpoint or a finished run's summary."""
  for root, dirs, files in os.walk(workdir):
    if 'summary.json' in files or os.path.basename(root) == 'checkpoints' and any(d.isdigit() for d in dirs):
      return True
  return False


def resolved_config(config) -> dict:
  """`config` as the JSON saved with a run (tuples as lists)."""
  return json.loads(config.to_json_best_effort())


def claim_config(workdir: str, config, filename: str = 'config.json', previous=('config.json',)) -> None:
  """Save `config` resolved as `workdir/filename`, or check that the one saved there (or, for
  directories older than that file, the first of `previous`) is the same: a different config is refused
  where something was trained, so a resume never mixes two experiments; where nothing was (a run that
  failed before its first checkpoint), the new config replaces the old one."""
  resolved = resolved_config(config)
  path = os.path.join(workdir, filename)
  found = next((os.path.join(workdir, f) for f in (filename, *previous)
                if os.path.exists(os.path.join(workdir, f))), None)
  if found:
    saved = read_json(found)
    if saved == resolved:
      if found == path:
        return
    elif _trained(workdir):
      raise ValueError(f'{workdir} holds a run with a different config ({_differences(saved, resolved)}); '
                       'use a new --workdir, or the same config to resume')
    else:
      logging.info('%s: nothing was trained with its old config; replacing it', workdir)
  if jax.process_index() == 0:
    write_json(path, resolved)


class RunRecord:
  """The JSON files of one run directory; only process 0 writes them.

  A directory holding a different config is refused (claim_config), so a resume never mixes two
  experiments.
  """

  def __init__(self, workdir: str, config):
    self.workdir = workdir
    self._writer = jax.process_index() == 0
    os.makedirs(workdir, exist_ok=True)
    claim_config(workdir, config, previous=())

  def _path(self, name: str) -> str:
    return os.path.join(self.workdir, name)

  def add_session(self, start_step: int) -> None:
    """Append this session's versions to versions.json: a resumed run lists every environment it ran in."""
    if not self._writer:
      return
    path = self._path('versions.json')
    sessions = read_json(path) if os.path.exists(path) else []
    sessions.append({'start_step': start_step, 'started': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
                     **versions()})
    write_json(path, sessions)

  def set_status(self, status: str, **details) -> None:
    """running / done / failed / diverged / preempted, with details such as the error."""
    if self._writer:
      write_json(self._path('status.json'), {'status': status, **details})

  def is_done(self) -> bool:
    """Whether the run finished (its summary is written)."""
    return os.path.exists(self._path('summary.json'))

  def summary(self) -> dict:
    """The finished run's summary."""
    return read_json(self._path('summary.json'))

  def finish(self, summary: dict) -> None:
    """Write the summary and mark the run done."""
    if self._writer:
      write_json(self._path('summary.json'), summary, sort_keys=False)  # Its order is the table's columns.
    self.set_status('done')


def _differences(saved: dict, resolved: dict, prefix: str = '') -> str:
  """'a.b: 1 -> 2, ...' for the leaves that differ between two nested config dicts."""
  diffs = []
  for key in sorted(set(saved) | set(resolved)):
    old, new = saved.get(key), resolved.get(key)
    if isinstance(old, dict) and isinstance(new, dict):
      inner = _differences(old, new, f'{prefix}{key}.')
      diffs += [inner] if inner else []
    elif old != new:
      diffs.append(f'{prefix}{key}: {old!r} -> {new!r}')
  return ', '.join(diffs)
