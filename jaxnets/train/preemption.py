"""Preemption: SIGTERM, SIGINT or SIGUSR2 asks the loop to checkpoint at the next step boundary and stop.

Schedulers send SIGTERM some time before they kill a job (SLURM, Kubernetes, Cloud TPU maintenance);
SLURM through submitit sends SIGUSR2 before a time limit; Ctrl-C sends SIGINT. A signal only sets a
flag, which the loop reads after each step, so a repeated SIGTERM (a scheduler and a launcher both
passing it on) changes nothing; a second SIGINT stops at once, for a loop that does not respond.
"""

import contextlib
import signal
import threading

import jax
import numpy as np
from absl import logging

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)
EXIT_CODE = 75  # sysexits.h EX_TEMPFAIL: "temporary failure, retry later"; the run resumes when rerun.


class PreemptedError(Exception):
  """The run stopped at a step boundary on request and saved a checkpoint there; rerun to resume."""


class Preemption:
  """Whether a stop was requested, agreed across the processes of a multi-host run."""

  def __init__(self):
    self._requested = False

  def _handle(self, signum, frame):
    del frame
    if signum == signal.SIGINT and self._requested:
      raise KeyboardInterrupt
    logging.warning('%s received: checkpointing at the next step boundary, then exiting%s',
                    signal.Signals(signum).name, ' (Ctrl-C again stops at once)' * (signum == signal.SIGINT))
    self._requested = True

  def requested(self, step: int, every: int) -> bool:
    """Whether to stop after `step`. One process sees it at once; several agree every `every` steps, as
    one process may get the signal before another and all must stop at the same step."""
    if jax.process_count() == 1:
      return self._requested
    if step % every:
      return False
    from jax.experimental import multihost_utils  # noqa: PLC0415
    return bool(np.any(multihost_utils.process_allgather(np.array(self._requested))))


_active: list[Preemption] = []  # The outermost watch's Preemption: one request serves every run.


@contextlib.contextmanager
def watch():
  """A Preemption that the body can poll; the previous signal handlers come back afterwards. Nested
  watches share the outer one, so a request during one run of an experiment also stops the next."""
  if _active or threading.current_thread() is not threading.main_thread():  # Only it may set handlers.
    yield _active[0] if _active else Preemption()
    return
  preemption = Preemption()
  previous = {s: signal.signal(s, preemption._handle) for s in SIGNALS}
  _active.append(preemption)
  try:
    yield preemption
  finally:
    _active.clear()
    for s, handler in previous.items():
      signal.signal(s, handler)
