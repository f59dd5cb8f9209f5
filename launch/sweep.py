"""Run a config file's sweep: every trial an ordinary run directory under --sweep_dir.

  python -m launch.sweep --config=configs/X.py --sweep_dir=DIR --executor=local|slurm|print \\
      [--parallel=N] [--retry_failed] [--config.F=V ...]

The trials are the file's get_sweep(h) (see jaxnets/sweeps.py), or else its config.experiment.sweep
and variants; --search=tpe instead asks optuna's TPE sampler for --trials trials from get_search(h).
Every trial's config is built before anything trains. Rerunning the same command skips finished trials
and resumes unfinished ones from their checkpoints; failed ones are rerun only with --retry_failed.
Then `python -m launch.report DIR` writes the table and plots.
"""

import shlex
import sys

import jax
from absl import app, flags, logging

from jaxnets.train import preemption
from launch import local, study as study_lib

flags.DEFINE_string('config', None, 'Experiment config file (path[:variant]), as for experiments.main.')
flags.DEFINE_string('sweep_dir', None, 'The study directory: sweep.json and one run directory per trial.')
flags.DEFINE_enum('executor', 'local', ['local', 'slurm', 'print'], 'Where the trials run: this machine, '
                  'a SLURM job array (through submitit), or nowhere (print the trials and commands).')
flags.DEFINE_integer('parallel', 1, 'local: trials at a time, the CPU cores (and GPUs) split between them.',
                     lower_bound=1)
flags.DEFINE_bool('retry_failed', False, 'Rerun trials whose status is failed (diverged ones stay results).')
flags.DEFINE_enum('search', 'grid', ['grid', 'tpe'], 'grid: the declared trials (grids, random draws); '
                  "tpe: optuna's TPE over get_search(h), --trials in all, through a journal file in DIR.")
flags.DEFINE_integer('trials', 10, 'tpe: the number of trials of the study (all workers together).')
flags.DEFINE_string('partition', None, 'slurm: partition.')
flags.DEFINE_integer('time_min', 60, 'slurm: time limit per trial, minutes (requeued past it).')
flags.DEFINE_integer('gpus_per_task', 0, 'slurm: GPUs per trial.')
flags.DEFINE_integer('cpus_per_task', 2, 'slurm: CPU cores per trial.')
flags.DEFINE_integer('array_parallelism', 16, 'slurm: trials running at once.')
flags.DEFINE_bool('wait', False, 'slurm: wait for the array to finish.')
flags.mark_flags_as_required(['config', 'sweep_dir'])


def base_overrides(argv: list[str]) -> list[str]:
  """The --config.F=V arguments of the command line, passed on to every trial."""
  return [a for a in argv if a.startswith('--config.')]


def _print(study, todo: list[str]) -> None:
  """Each trial's status, overrides and command; nothing runs."""
  for name in study.trials:
    mark = 'run ' if name in todo else 'skip'
    print(f'{mark} {name:40s} {study.status(name):11s} {shlex.join(study.command(name))}')
  print(f'{len(todo)} of {len(study.trials)} trials would run')


def to_run(study, retry_failed: bool) -> list[str]:
  """The trials that this session trains: not done, not running elsewhere; failed ones if asked."""
  wanted = study_lib.RESUMABLE + (('failed',) if retry_failed else ())
  return [name for name in study.trials if study.status(name) in wanted]


def main(argv):
  """Create or reopen the study in --sweep_dir and run its trials on the chosen executor."""
  del argv
  f = flags.FLAGS
  overrides = base_overrides(sys.argv)  # Left out of absl's parsing: load_config checks them.
  jax.config.update('jax_platforms', 'cpu')  # The launcher never holds the GPUs or TPUs its trials need.
  try:
    if f.search == 'tpe':
      from launch import search  # noqa: PLC0415  optuna only for Bayesian search.
      sys.exit(search.run(f.config, overrides, f.sweep_dir, f.trials, f.parallel, f.executor))
    base = study_lib.load_config(f.config, overrides)
    trials = study_lib.declared_trials(f.config, base)
    study = study_lib.create(f.config, overrides, f.sweep_dir, trials)
    slots = local.slots(f.parallel)
    if f.executor != 'print':
      study.save()
  except (ValueError, KeyError, FileNotFoundError, flags.Error) as e:  # One line naming it; nothing ran.
    sys.exit(f'launch.sweep: {e.args[0] if isinstance(e, KeyError) and e.args else e}')
  todo = to_run(study, f.retry_failed)
  if f.executor == 'print':
    _print(study, todo)
    if f.partition is not None:
      from launch import slurm  # noqa: PLC0415
      print(slurm.describe(study, todo, slurm.parameters(f)))
    return
  logging.info('%s: %d trials, %d to run', f.sweep_dir, len(study.trials), len(todo))
  if f.executor == 'slurm':
    from launch import slurm  # noqa: PLC0415  submitit only for SLURM.
    slurm.submit(study, todo, slurm.parameters(f), wait=f.wait)
    return
  finished = local.run(study, todo, slots)
  statuses = [study.status(n) for n in study.trials]
  logging.info('%s; report: python -m launch.report %s', local.progress(study, list(study.trials), [], 1),
               f.sweep_dir)
  if not finished or any(s in study_lib.RESUMABLE for s in statuses):
    sys.exit(preemption.EXIT_CODE)  # Stopped early: the same command resumes.
  if 'failed' in statuses:
    sys.exit(1)


if __name__ == '__main__':
  app.run(main, argv=[a for a in sys.argv if a not in base_overrides(sys.argv)])
