"""Environment settings JAX and XLA read once, when they start: `configure()` sets jaxnets' defaults before.

Every entry point (experiments.main, the benchmarks, the tests) calls `configure()` before importing JAX.
Each default yields to a setting already in the environment, and each can be turned off:
  - CPU_FUSION_FLAG (XLA_FLAGS): XLA's experimental YNNPACK fusion of dots, elementwise ops and
    reductions. On 2 cores it took the CIFAR ResNet-56 train step from 61 to 138 img/s at batch 128 of
    32x32x3 (140 to 165 at batch 64 of 28x28x1); results agree with the default build to float32
    rounding (tests/test_xla_env.py).
    JAXNETS_CPU_FUSION=0 leaves XLA's default.
  - A persistent compilation cache (JAX_COMPILATION_CACHE_DIR, default CACHE_DIR), so a resumed run, a
    second run of a config and every sweep trial after the first skip compiling. JAXNETS_COMPILATION_CACHE=0
    turns it off.
  - PJRT_NPROC for forced host devices (configure_host_devices).
"""

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


CPU_FUSION_FLAG = '--xla_cpu_experimental_ynn_fusion_type=dot,eltwise,reduce'
_CPU_FUSION_SETTING = CPU_FUSION_FLAG.split('=')[0] + '='
# Compiles faster than this are not worth a cache file (JAX's default is 1 s, which leaves the eval and init
# steps of small nets uncached).
CACHE_MIN_COMPILE_SECONDS = '0.2'


def cache_dir(environ=os.environ) -> str:
  """$XDG_CACHE_HOME/jaxnets/jax, or ~/.cache/jaxnets/jax: one cache per user, shared by all runs."""
  base = environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'jaxnets', 'jax')


def configure_cpu_fusion(environ=os.environ) -> None:
  """Append CPU_FUSION_FLAG to XLA_FLAGS, unless JAXNETS_CPU_FUSION=0 or XLA_FLAGS already sets the option."""
  flags = environ.get('XLA_FLAGS', '')
  if environ.get('JAXNETS_CPU_FUSION', '1') != '0' and _CPU_FUSION_SETTING not in flags:
    environ['XLA_FLAGS'] = f'{flags} {CPU_FUSION_FLAG}'.strip()


def configure_compilation_cache(environ=os.environ) -> None:
  """Point JAX's persistent compilation cache at cache_dir(), unless JAXNETS_COMPILATION_CACHE=0 or it is set."""
  if environ.get('JAXNETS_COMPILATION_CACHE', '1') == '0':
    return
  environ.setdefault('JAX_COMPILATION_CACHE_DIR', cache_dir(environ))
  environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', CACHE_MIN_COMPILE_SECONDS)


def configure(environ=os.environ) -> None:
  """All of jaxnets' environment defaults; call before JAX is imported."""
  configure_cpu_fusion(environ)
  configure_compilation_cache(environ)
  configure_host_devices(environ)
