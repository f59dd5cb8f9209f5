"""A study on disk: the base config, its trials, and where each trial stands.

DIR/sweep.json records the config file, the base overrides and every trial (name -> overrides); a
rerun of a different study in DIR is refused. Each trial is an ordinary run directory DIR/<name>,
trained by the ordinary command, `python -m experiments.main --config=FILE --workdir=DIR/<name>
--config.F=V ...`, so any trial can be rerun or inspected by hand.
"""

import dataclasses
import importlib.util
import json
import os
import sys

from absl import flags
from ml_collections import config_flags

from experiments import config_files
from jaxnets import experiment, sweeps
from jaxnets.train import lock, record as record_lib

SWEEP_FILE = 'sweep.json'
# Where a trial stands. 'interrupted': it was running, and its process is gone (kill -9, a lost node).
STATUSES = ('pending', 'running', 'done', 'failed', 'diverged', 'preempted', 'interrupted')
RESUMABLE = ('pending', 'preempted', 'interrupted')
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def config_path(config_arg: str) -> tuple[str, str]:
  """(absolute path of the config file, variant) for 'configs/x.py[:variant]', as experiments.main reads
  it: from the current directory, else from experiments/."""
  path, _, variant = config_arg.partition(':')
  return os.path.abspath(config_files.locate(path)), variant


def portable_config_arg(config_arg: str) -> str:
  """The config argument as trials (run from the repository root) find it: 'configs/x.py' as given
  when it is under experiments/, else the file's absolute path."""
  path, variant = config_path(config_arg)
  relative = os.path.relpath(path, config_files.EXPERIMENTS)
  given = relative if not relative.startswith('..') else path
  return given + (f':{variant}' if variant else '')


def load_config(config_arg: str, overrides: list[str]):
  """The config that `experiments.main --config=config_arg *overrides` trains, each field checked."""
  path, variant = config_path(config_arg)
  argv = ['launch', f'--config={path}' + (f':{variant}' if variant else ''), *overrides]
  parser = flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, 'config file', flag_values=parser, lock_config=False,
                                  accept_new_attributes=True, sys_argv=argv)
  parser(argv)
  from experiments.configs import default  # noqa: PLC0415
  experiment.check_fields(parser.config, default.get_config())
  return parser.config


def _module(config_arg: str):
  """The config file as a module (for its get_sweep / get_search)."""
  path, _ = config_path(config_arg)
  spec = importlib.util.spec_from_file_location(f'jaxnets_config_{os.path.basename(path)[:-3]}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def declared_trials(config_arg: str, config) -> list[sweeps.Trial]:
  """The config file's get_sweep(h), or else its experiment.sweep / variants, as trials."""
  get_sweep = getattr(_module(config_arg), 'get_sweep', None)
  found = get_sweep(sweeps) if get_sweep else experiment.trials(config)
  if found == [sweeps.Trial()]:
    raise ValueError(f'{config_arg} declares no sweep: add get_sweep(h) beside get_config, or set '
                     'config.experiment.sweep')
  return found


def search_space(config_arg: str) -> list[sweeps.Distribution]:
  """The distributions of the config file's get_search(h), for Bayesian search."""
  get_search = getattr(_module(config_arg), 'get_search', None)
  if get_search is None:
    raise ValueError(f'{config_arg} has no get_search(h) returning the distributions to search')
  return list(get_search(sweeps))


def override_args(overrides: dict) -> list[str]:
  """--config.F=V for each override; the trial's own experiment.sweep and variants are emptied."""
  args = ['--config.experiment.sweep=', '--config.experiment.variants=']
  return args + [f'--config.{field}={value}' for field, value in overrides.items()]


@dataclasses.dataclass
class Study:
  """The base run (config file and overrides) and the trials (name -> overrides) of one sweep dir."""
  directory: str
  config_arg: str
  overrides: list
  trials: dict

  def command(self, name: str) -> list[str]:
    """The command line that trains trial `name` (resuming it if it has a checkpoint)."""
    return [sys.executable, '-m', 'experiments.main', f'--config={self.config_arg}',
            f'--workdir={self.run_dir(name)}', *self.overrides, *override_args(self.trials[name])]

  def run_dir(self, name: str) -> str:
    return os.path.join(self.directory, name)

  def config(self, name: str):
    """Trial `name`'s config as its command line gives it."""
    return load_config(self.config_arg, self.overrides + override_args(self.trials[name]))

  def status(self, name: str) -> str:
    """One of STATUSES, from the run's status.json and whether a live process holds its lock."""
    run_dir = self.run_dir(name)
    path = os.path.join(run_dir, 'status.json')
    if lock.is_locked(run_dir):
      return 'running'
    if not os.path.exists(path):
      return 'pending'
    with open(path) as f:
      status = json.load(f)['status']
    return 'interrupted' if status == 'running' else status

  def save(self) -> None:
    """Write sweep.json, or check that the one in the directory is this study."""
    path = os.path.join(self.directory, SWEEP_FILE)
    record = {'config': self.config_arg, 'overrides': self.overrides,
              'trials': {n: _jsonable(o) for n, o in self.trials.items()}}
    if os.path.exists(path):
      with open(path) as f:
        saved = json.load(f)
      if saved != json.loads(json.dumps(record)):
        changed = [k for k in record if saved.get(k) != json.loads(json.dumps(record[k]))]
        raise ValueError(f'{self.directory} holds a different sweep (its {", ".join(changed)} differ); '
                         'use a new --sweep_dir, or the same command to resume it')
      return
    os.makedirs(self.directory, exist_ok=True)
    record_lib.write_json(path, record, sort_keys=False)  # Trials in declaration order.


def _jsonable(overrides: dict) -> dict:
  """Overrides as JSON keeps them (tuples as lists)."""
  return json.loads(json.dumps(overrides))


def check_overrides(overrides: list[str], per_trial_fields, source: str) -> None:
  """Refuse a base override (--config.F=V) of a field that every trial sets itself (see
  experiment.check_overrides)."""
  experiment.check_overrides([a.removeprefix('--config.').partition('=')[0] for a in overrides], per_trial_fields,
                             source)


def create(config_arg: str, overrides: list[str], directory: str, trials: list[sweeps.Trial]) -> Study:
  """The study of `trials`, every trial's config built and checked before anything runs."""
  check_overrides(overrides, [f for trial in trials for f in trial.overrides], 'the sweep')
  names = sweeps.names(trials)
  study = Study(os.path.abspath(directory), portable_config_arg(config_arg), list(overrides),
                {n: t.overrides for n, t in zip(names, trials)})
  base = load_config(config_arg, overrides)
  for name, trial in zip(names, trials):
    expected = experiment.apply(base, trial.overrides)
    try:
      got = study.config(name)
    except Exception as e:  # noqa: BLE001  absl and ml_collections raise several kinds for a bad value.
      raise ValueError(f'trial {name}: {e}') from e
    if got.to_json_best_effort() != expected.to_json_best_effort():
      raise ValueError(f'trial {name}: its command line does not reproduce its overrides '
                       f'{trial.overrides}; use values that read back as themselves')
    try:
      experiment.check(got)
    except experiment.ConfigError as e:
      raise ValueError(f'trial {name}: {e}') from e
  return study


def load(directory: str) -> Study:
  """The study saved in `directory`."""
  path = os.path.join(directory, SWEEP_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f'{directory} holds no sweep ({SWEEP_FILE} is missing)')
  with open(path) as f:
    record = json.load(f)
  return Study(os.path.abspath(directory), record['config'], record['overrides'], record['trials'])
