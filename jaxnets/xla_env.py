"""Environment settings XLA reads once, when JAX starts its CPU client: set them before JAX runs anything."""

import os
import re

_FORCED_DEVICES = re.compile(r'--xla_force_host_platform_device_count=(\d+)')


def forced_host_devices(xla_flags: str) -> int:
  """The number of CPU devices that XLA_FLAGS forces (the last setting wins, as in XLA); 1 if none."""
  counts = _FORCED_DEVICES.findall(xla_flags)
  return int(counts[-1]) if counts else 1


def configure_host_devices(environ=os.environ) -> None:
  """Give XLA's CPU client two threads per forced host device (PJRT_NPROC), unless PJRT_NPROC is set.

  Why: XLA runs N forced devices' programs on max(cores, N) threads. The host dispatches training steps
  ahead of the devices; when a device's queue of programs is full, launching one more holds a thread
  until the queue drains, while every other device's part of the running step holds one inside the
  all-reduce. The device that still owes its part then finds no thread, and after 40 s XLA aborts
  ("Termination timeout ... only K of them arrived on time", exit 134). On 2 cores configs/mlp.py with 8
  forced devices aborted in 3 of 3 runs, and in 3 of 3 with --xla_cpu_multi_thread_eigen=false; with
  2N threads it finished 3 of 3. 2N is enough: the host waits for one step's N launches before the
  next, and XLA runs one program with collectives at a time, so at most N launches and N parts wait.
  """
  devices = forced_host_devices(environ.get('XLA_FLAGS', ''))
  if devices > 1 and 'PJRT_NPROC' not in environ:
    environ['PJRT_NPROC'] = str(max(os.cpu_count() or 1, 2 * devices))
