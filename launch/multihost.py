"""Start N processes of a multi-host job on this machine, wired together by jax.distributed.

  python launch/multihost.py --num_processes=2 -- python -m experiments.main --config=... --workdir=...

Each process gets --distributed --coordinator_address=127.0.0.1:PORT --num_processes=N --process_id=I
appended, and XLA_FLAGS giving it --devices_per_process CPU devices, so a multi-host run (and its
checkpoints) can be tried on a laptop before a cluster. On a cluster, start one process per host
yourself with the same flags (or, under SLURM/TPU, --distributed alone: JAX detects the rest).
Exits non-zero if any process fails; each process's output is prefixed with its index.
"""

import argparse
import os
import socket
import subprocess
import sys
import threading
import time


def free_port() -> int:
  """A TCP port on 127.0.0.1 that is free now (for the coordinator)."""
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _relay(index: int, stream) -> None:
  """Copy one process's output to ours, each line prefixed with the process index."""
  for line in stream:
    sys.stdout.write(f'[{index}] {line}')


def launch(command: list[str], num_processes: int, devices_per_process: int) -> int:
  """Run `command` as `num_processes` coordinated processes; the worst exit code."""
  address = f'127.0.0.1:{free_port()}'
  flags = os.environ.get('XLA_FLAGS', '') + f' --xla_force_host_platform_device_count={devices_per_process}'
  env = dict(os.environ, XLA_FLAGS=flags.strip())
  processes, relays = [], []
  for index in range(num_processes):
    argv = command + ['--distributed', f'--coordinator_address={address}',
                      f'--num_processes={num_processes}', f'--process_id={index}']
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    relay = threading.Thread(target=_relay, args=(index, process.stdout), daemon=True)
    relay.start()
    processes.append(process)
    relays.append(relay)
  codes = {}
  while len(codes) < len(processes):  # On the first failure, stop the rest: they would wait forever.
    for index, process in enumerate(processes):
      if index not in codes and process.poll() is not None:
        codes[index] = process.returncode
        if process.returncode:
          for other in processes:
            if other.poll() is None:
              other.terminate()
    time.sleep(0.2)
  for relay in relays:
    relay.join()
  return max(codes.values(), key=abs)


def main():
  """Parse the launcher's flags and run the command."""
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--num_processes', type=int, default=2)
  parser.add_argument('--devices_per_process', type=int, default=1)
  parser.add_argument('command', nargs=argparse.REMAINDER, help='-- then the command of one process')
  args = parser.parse_args()
  command = args.command[1:] if args.command[:1] == ['--'] else args.command
  if not command:
    parser.error('give the command after --')
  sys.exit(launch(command, args.num_processes, args.devices_per_process))


if __name__ == '__main__':
  main()
