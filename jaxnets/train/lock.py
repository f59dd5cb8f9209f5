"""One process per run directory: an exclusive lock that a second process is refused at once.

The lock is an flock on <workdir>/.lock, so the kernel releases it when its holder dies (even by
kill -9): a stale lock never blocks a rerun. The file names its holder for the refusal message. Taking
it again inside the holding process is a no-op (an experiment locks its directory, then its runs).
"""

import contextlib
import fcntl
import os
import socket
import time

import jax

LOCK_FILE = '.lock'
RETRIES = 10  # x 0.1 s
EXIT_CODE = 73  # sysexits.h EX_CANTCREAT: the run directory cannot be written by this process.
_held: set[str] = set()  # Lock paths this process holds.


class WorkdirBusyError(RuntimeError):
  """Another live process holds the run directory."""


def _try_lock(fd: int) -> bool:
  """Take the exclusive lock, trying for a second: is_locked's brief shared probe must not refuse it."""
  for _ in range(RETRIES):
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      return True
    except BlockingIOError:
      time.sleep(0.1)
  return False


@contextlib.contextmanager
def workdir_lock(workdir: str):
  """Hold <workdir>/.lock (one file per process of a multi-host run) for the body, or refuse at once."""
  os.makedirs(workdir, exist_ok=True)
  index = jax.process_index()
  path = os.path.abspath(os.path.join(workdir, LOCK_FILE + (f'.{index}' if index else '')))
  if path in _held:
    yield
    return
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    if not _try_lock(fd):
      holder = os.pread(fd, 512, 0).decode(errors='replace').strip() or 'an unknown process'
      raise WorkdirBusyError(f'{workdir} is in use by {holder}; wait for it to finish, stop it, or use '
                             'another --workdir')
    os.ftruncate(fd, 0)
    os.pwrite(fd, f'pid {os.getpid()} on {socket.gethostname()} since '
                  f'{time.strftime("%Y-%m-%d %H:%M:%S")}\n'.encode(), 0)
    _held.add(path)
    try:
      yield
    finally:
      _held.discard(path)
      fcntl.flock(fd, fcntl.LOCK_UN)
  finally:
    os.close(fd)


def is_locked(workdir: str) -> bool:
  """Whether a live process holds `workdir` now (a crashed holder's lock is gone with it)."""
  path = os.path.join(workdir, LOCK_FILE)
  if not os.path.exists(path):
    return False
  fd = os.open(path, os.O_RDONLY)
  try:
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False
  except BlockingIOError:
    return True
  finally:
    os.close(fd)
