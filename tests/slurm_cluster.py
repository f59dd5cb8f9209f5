"""A real one-node SLURM cluster on localhost for tests marked `slurm` (launch/local_slurm.sh).

A test module takes it with `pytest_plugins = ['tests.slurm_cluster']` and asks for `slurm_cluster`. The
session starts the cluster once (installing Debian's slurm-wlm and munge when missing, which needs root
and apt-get) and stops it at the end, unless it was already up before the session, then it is left up.
Without root, or without slurm and apt-get, the tests are skipped, except under CI=true, where that fails.
"""

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / 'launch' / 'local_slurm.sh'
_SBIN = os.pathsep.join([os.environ.get('PATH', ''), '/usr/sbin', '/sbin'])
START_TIMEOUT_S = 900  # an apt-get install from a slow mirror included


@dataclasses.dataclass(frozen=True)
class SlurmCluster:
  conf: str  # the slurm.conf in use; SLURM_CONF is set to it for the whole session
  state_dir: Path  # $JAXNETS_SLURM_DIR: daemon logs under log/, finished jobs in jobcomp.txt


def _unavailable() -> str | None:
  """Why this machine cannot run the cluster, or None."""
  if os.name != 'posix' or os.geteuid() != 0:
    return 'a local SLURM cluster needs root (launch/local_slurm.sh start runs the daemons as root)'
  installed = all(shutil.which(c, path=_SBIN) for c in ('munged', 'slurmctld', 'slurmd', 'sbatch'))
  if not installed and shutil.which('apt-get') is None:
    return 'slurm is not installed and there is no apt-get to install it'
  return None


def _run(command: str, timeout: float) -> subprocess.CompletedProcess:
  return subprocess.run(['bash', str(SCRIPT), command], capture_output=True, text=True, timeout=timeout,
                        stdin=subprocess.DEVNULL, check=False)


@pytest.fixture(scope='session')
def slurm_cluster():
  reason = _unavailable()
  if reason:
    if os.environ.get('CI') == 'true':
      pytest.fail(f'CI=true, and {reason}', pytrace=False)
    pytest.skip(reason)
  was_up = _run('status', 30).returncode == 0
  started = _run('start', START_TIMEOUT_S)
  if started.returncode:
    pytest.fail(f'{SCRIPT} start failed ({started.returncode}):\n{started.stdout}{started.stderr}',
                pytrace=False)
  conf = next(line.split('=', 1)[1] for line in started.stdout.splitlines()
              if line.startswith('export SLURM_CONF='))
  patch = pytest.MonkeyPatch()
  patch.setenv('SLURM_CONF', conf)
  try:
    yield SlurmCluster(conf=conf, state_dir=Path(conf).parent)
  finally:
    patch.undo()
    if not was_up:
      stopped = _run('stop', 120)
      if stopped.returncode:
        print(f'{SCRIPT} stop failed ({stopped.returncode}):\n{stopped.stdout}{stopped.stderr}')
