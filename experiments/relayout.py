"""Convert a run's checkpoints between the unrolled and the scanned layout of its model:

  python -m experiments.relayout --config=configs/x.py [--config.F=V ...] --workdir=RUN --scan=true|false

with the config and overrides the run was trained with; then resume it by adding --config.model.scan=...
to that command. The old checkpoints stay in RUN/checkpoints.<old layout>/ (jaxnets.train.relayout).
"""

import sys

from absl import app, flags
from ml_collections import config_flags

from experiments.config_files import fail, resolve_config_argv
from jaxnets import xla_env

config_flags.DEFINE_config_file('config', None, 'The run\'s config file (path[:variant]).', lock_config=False,
                                accept_new_attributes=True)
flags.DEFINE_string('workdir', None, 'The run directory.')
flags.DEFINE_bool('scan', None, 'The layout to convert to: true scanned, false unrolled.')
flags.mark_flags_as_required(['config', 'workdir', 'scan'])


def main(argv):
  """Convert the checkpoints and say what to run next."""
  del argv
  from jaxnets.train import lock, relayout  # noqa: PLC0415
  try:
    steps = relayout.relayout(flags.FLAGS.config, flags.FLAGS.workdir, flags.FLAGS.scan)
  except (ValueError, lock.WorkdirBusyError) as e:
    fail(str(e))
  print(f'converted checkpoints {steps} of {flags.FLAGS.workdir}; resume with '
        f'--config.model.scan={str(flags.FLAGS.scan).lower()}')


if __name__ == '__main__':
  xla_env.configure()
  sys.argv = resolve_config_argv(sys.argv)
  app.run(main)
