"""The command lines' shared parts: where a --config path points (as given, else under experiments/, so
'configs/x.py' works from the repository root and from any directory), the one-line error exit and the quiet
log. Light on imports: the command line checks its config file before JAX starts."""

import logging as std_logging
import os
import sys
from typing import NoReturn

from absl import logging

EXPERIMENTS = os.path.dirname(os.path.abspath(__file__))


def locate(path: str) -> str:
  """`path` if it is a file, else experiments/`path`; a FileNotFoundError in one line naming both and the
  configs there are."""
  if os.path.isfile(path):
    return path
  local = os.path.join(EXPERIMENTS, path)
  if os.path.isfile(local):
    return local
  directory = os.path.join(EXPERIMENTS, 'configs')
  names = sorted(f for f in os.listdir(directory) if f.endswith('.py') and f != '__init__.py')
  raise FileNotFoundError(f'--config: no file {path!r} (tried {os.path.abspath(path)} and {local}); the '
                          f'configs in {directory}: {", ".join("configs/" + name for name in names)}')


def resolve_config_argv(argv: list[str]) -> list[str]:
  """Let --config=configs/x.py (or --config configs/x.py) name experiments/configs/x.py from the repo root.

  A file found in neither place is a FileNotFoundError naming both paths and the configs there are,
  raised before JAX or TensorFlow is imported (ml_collections would fail seconds later with a traceback).
  """
  out = []
  for i, arg in enumerate(argv):
    separate = i > 0 and argv[i - 1] == '--config'
    if separate or arg.startswith('--config='):
      path, sep, variant = (arg if separate else arg[len('--config='):]).partition(':')
      path = locate(path)
      arg = f'{path}{sep}{variant}' if separate else f'--config={path}{sep}{variant}'
    out.append(arg)
  return out


def fail(message: str, code: int = 2) -> NoReturn:
  """Stop with one line on stderr naming what is wrong (absl's UsageError would print the whole help)."""
  print(f'error: {message}', file=sys.stderr)
  sys.exit(code)


def quiet_libraries() -> None:
  """Keep the terminal to our progress lines: library INFO chatter (orbax, TFDS) is dropped."""
  noisy = ('/orbax/', '/tensorflow_datasets/')
  logging.get_absl_handler().addFilter(
      lambda r: r.levelno >= std_logging.WARNING or not any(n in r.pathname for n in noisy))
