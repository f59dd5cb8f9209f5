"""Where a --config path points: as given, else under experiments/ (so 'configs/x.py' works from the
repository root and from any directory). Light on imports: the command line checks it before JAX starts."""

import os

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
