"""Train an experiment from its config file:

  python -m experiments.main --config=configs/resnet_degradation.py [--workdir=DIR] [--config.F=V ...]

A variant is chosen as --config=configs/FILE.py:ARG. The workdir defaults to a new directory under
runs/; running the same command with the same --workdir resumes it. Exit codes: 0 done; 2 a bad
command line or config (one line naming it); 75 stopped by SIGTERM or SIGINT with a checkpoint (rerun
to resume); 73 the workdir is in use by another process.
"""

import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # TensorFlow serves only TFDS here.

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from experiments.config_files import fail, quiet_libraries, resolve_config_argv  # noqa: E402
from jaxnets import xla_env  # noqa: E402


# Not locked, so that an override may set a model's, task's or optimizer's field the file left at its
# default; main() then checks every field against the default config (experiment.check_fields).
config_flags.DEFINE_config_file('config', None, 'Experiment config file (path[:variant]).',
                                lock_config=False, accept_new_attributes=True)
flags.DEFINE_string('workdir', None, 'Run directory (default: a new one under runs/).')
flags.DEFINE_bool('distributed', False, 'Call jax.distributed.initialize (multi-host runs).')
flags.DEFINE_string('coordinator_address', None, 'host:port of process 0 (multi-host).')
flags.DEFINE_integer('num_processes', None, 'Number of processes (multi-host).')
flags.DEFINE_integer('process_id', None, 'This process index (multi-host).')
flags.mark_flags_as_required(['config'])


def default_workdir(config_arg: str) -> str:
  """runs/<config name>[-<variant>]-<date-time>."""
  path, _, variant = config_arg.partition(':')
  name = os.path.splitext(os.path.basename(path))[0] + (f'-{variant}' if variant else '')
  return os.path.join('runs', f'{name}-{time.strftime("%Y%m%d-%H%M%S")}')


def main(argv):
  """Set up devices (and hosts), then run the experiment of --config in --workdir."""
  del argv
  quiet_libraries()
  import jax  # noqa: PLC0415
  if flags.FLAGS.distributed:
    jax.distributed.initialize(flags.FLAGS.coordinator_address, flags.FLAGS.num_processes,
                               flags.FLAGS.process_id)
  from experiments.configs import default  # noqa: PLC0415
  from jaxnets import experiment  # noqa: PLC0415
  from jaxnets.train import lock, preemption  # noqa: PLC0415
  try:
    experiment.check_fields(flags.FLAGS.config, default.get_config())
    experiment.check_overrides(config_flags.get_override_values(flags.FLAGS['config']),
                               [f for trial in experiment.trials(flags.FLAGS.config) for f in trial.overrides],
                               'experiment.variants/sweep')
  except ValueError as e:
    fail(str(e))
  config_arg = config_flags.get_config_filename(flags.FLAGS['config'])
  if jax.process_count() > 1 and not flags.FLAGS.workdir:
    fail('a multi-process run needs --workdir: every process must write to the same one')
  workdir = flags.FLAGS.workdir or default_workdir(config_arg)
  logging.info('workdir: %s', os.path.abspath(workdir))
  try:
    experiment.run(flags.FLAGS.config, workdir)
  except experiment.ConfigError as e:
    fail(str(e))
  except lock.WorkdirBusyError as e:
    fail(str(e), lock.EXIT_CODE)
  except preemption.PreemptedError as e:
    logging.warning('%s', e)
    sys.exit(preemption.EXIT_CODE)
  logging.info('results in %s', os.path.abspath(workdir))


if __name__ == '__main__':
  xla_env.configure()  # Before main() imports JAX.
  try:
    sys.argv = resolve_config_argv(sys.argv)
  except FileNotFoundError as e:
    fail(str(e))
  app.run(main)
