"""Preemption: SIGTERM or SIGINT asks the loop to checkpoint at the next step boundary and stop.

Schedulers (SLURM, Kubernetes, Cloud TPU maintenance) send SIGTERM some time before they kill a job;
Ctrl-C sends SIGINT. The first such signal only sets a flag, which the loop reads after each step; a
second one acts as usual (terminates, or raises KeyboardInterrupt), for a loop that does not respond.
"""

import contextlib
import signal
import threading

import jax
import numpy as np
from absl import logging

SIGNALS = (signal.SIGTERM, signal.SIGINT)
EXIT_CODE = 75  # sysexits.h EX_TEMPFAIL: "temporary failure, retry later"; the run resumes when rerun.


class PreemptedError(Exception):
  """The run stopped at a step boundary on request and saved a checkpoint there; rerun to resume."""


class Preemption:
  """Whether a stop was requested, agreed across the processes of a multi-host run."""

  def __init__(self):
    self._requested = False

  def _handle(self, signum, frame):
    del frame
    logging.warning('%s received: checkpointing at the next step boundary, then exiting (send it again '
                    'to stop at once)', signal.Signals(signum).name)
    self._requested = True
    signal.signal(signum, signal.SIG_DFL if signum != signal.SIGINT else signal.default_int_handler)

  def requested(self, step: int, every: int) -> bool:
    """Whether to stop after `step`. One process sees it at once; several agree every `every` steps, as
    one process may get the signal before another and all must stop at the same step."""
    if jax.process_count() == 1:
      return self._requested
    if step % every:
      return False
    from jax.experimental import multihost_utils  # noqa: PLC0415
    return bool(np.any(multihost_utils.process_allgather(np.array(self._requested))))


@contextlib.contextmanager
def watch():
  """A Preemption that the body can poll; the previous signal handlers come back afterwards."""
  preemption = Preemption()
  if threading.current_thread() is not threading.main_thread():  # Only the main thread may set them.
    yield preemption
    return
  previous = {s: signal.signal(s, preemption._handle) for s in SIGNALS}
  try:
    yield preemption
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
