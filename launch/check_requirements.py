"""Exit 0 if every `name==version` pin of a requirements file is installed at that version, else list them."""

import re
import sys
from importlib import metadata


def unmet(path: str) -> list[str]:
  """The pins of `path` that the running interpreter does not satisfy."""
  missing = []
  with open(path) as f:
    for line in f:
      pin = re.match(r'^\s*([A-Za-z0-9_.\-]+)==([^\s#;]+)', line)
      if not pin:
        continue
      name, version = pin.groups()
      try:
        found = metadata.version(name)
      except metadata.PackageNotFoundError:
        found = None
      if found != version:
        missing.append(f'{name}=={version} (installed: {found})')
  return missing


if __name__ == '__main__':
  problems = unmet(sys.argv[1])
  for problem in problems:
    print(f'setup: needs {problem}')
  sys.exit(1 if problems else 0)
