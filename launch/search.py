"""Bayesian search: optuna's TPE sampler proposes each trial from the config file's get_search(h).

The study lives in DIR/optuna.journal (optuna's file journal), so workers on a shared filesystem, here
or in SLURM tasks, need no database: each runs `python -m launch.sweep --search=tpe ...` and they share
the study. A worker asks for a trial only while fewer than --trials exist, under a file lock, so the
study ends with exactly that many and none twice. Each trial is an ordinary run directory
DIR/<name>, added to DIR/sweep.json as it is asked (launch.report reads it like a grid's).
"""

import contextlib
import fcntl
import json
import os
import threading

import optuna
from absl import logging

from jaxnets import experiment, sweeps, tasks
from launch import local, study as study_lib

JOURNAL = 'optuna.journal'
SAMPLER_SEED = 0  # The same study asks the same first trials (TPE's random start-up draws).


@contextlib.contextmanager
def _locked(directory: str):
  """An exclusive lock on DIR/optuna.lock for the body (asking for a trial and recording it)."""
  fd = os.open(os.path.join(directory, 'optuna.lock'), os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield
  finally:
    os.close(fd)


def _record(directory: str, config_arg: str, overrides: list, space, name=None, trial=None) -> dict:
  """sweep.json's record, created or checked against this search, with `name` -> `trial` added."""
  path = os.path.join(directory, study_lib.SWEEP_FILE)
  search = [vars(d) | {'values': list(d.values)} for d in space]
  record = {'config': config_arg, 'overrides': overrides, 'search': search, 'trials': {}}
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    if {k: saved.get(k) for k in ('config', 'overrides', 'search')} != json.loads(json.dumps(
        {k: record[k] for k in ('config', 'overrides', 'search')})):
      raise ValueError(f'{directory} holds a different study; use a new --sweep_dir, or the same command')
    record = saved
  if name is not None:
    record['trials'][name] = trial
  with open(path + '.tmp', 'w') as f:
    json.dump(record, f, indent=2)
  os.replace(path + '.tmp', path)
  return record


def _ask(study, optuna_study, space, n_trials: int):
  """(optuna trial, name, overrides) of a new trial, or None once the study has `n_trials`."""
  with _locked(study.directory):
    if len(optuna_study.trials) >= n_trials:
      return None
    trial = optuna_study.ask()
    overrides = {d.field: d.suggest(trial) for d in space}
    name = f'{trial.number:03d}-' + sweeps.names([sweeps.Trial(overrides)])[0]
    study.trials[name] = overrides
    _record(study.directory, study.config_arg, study.overrides, space, name, overrides)
    return trial, name


def _worker(study, optuna_study, space, n_trials: int, headline, slot: dict) -> None:
  """Ask, train, tell, until the study has `n_trials`."""
  while (asked := _ask(study, optuna_study, space, n_trials)) is not None:
    trial, name = asked
    try:
      experiment.check(study.config(name))
    except experiment.ConfigError as e:
      logging.error('trial %s: %s', name, e)
      optuna_study.tell(trial, state=optuna.trial.TrialState.FAIL)
      continue
    local.start(study, name, slot).wait()
    if study.status(name) == 'done':
      with open(os.path.join(study.run_dir(name), 'summary.json')) as f:
        value = json.load(f)[f'test_{headline.name}']
      optuna_study.tell(trial, value)
      logging.info('trial %s: test %s %.4f', name, headline.name, value)
    else:
      optuna_study.tell(trial, state=optuna.trial.TrialState.FAIL)
      logging.error('trial %s ended %s', name, study.status(name))


def run(config_arg: str, overrides: list, directory: str, n_trials: int, workers: int, executor: str) -> int:
  """Run this worker's share of the TPE study in `directory` with `workers` trials at a time; exit code."""
  if executor != 'local':
    raise ValueError(f'--search=tpe runs with --executor=local (got {executor!r}); on SLURM, start the '
                     'same command in each task of a job: the workers share DIR/optuna.journal')
  space = study_lib.search_space(config_arg)
  base = study_lib.load_config(config_arg, overrides)
  headline = tasks.headline(base.task.name)
  os.makedirs(directory, exist_ok=True)
  with _locked(directory):
    record = _record(directory, config_arg, overrides, space)
  study = study_lib.Study(directory, config_arg, overrides, dict(record['trials']))
  storage = optuna.storages.JournalStorage(
      optuna.storages.journal.JournalFileBackend(os.path.join(directory, JOURNAL)))
  optuna_study = optuna.create_study(
      study_name='jaxnets', storage=storage, load_if_exists=True,
      direction='maximize' if headline.higher_is_better else 'minimize',
      sampler=optuna.samplers.TPESampler(seed=SAMPLER_SEED))
  threads = [threading.Thread(target=_worker, args=(study, optuna_study, space, n_trials, headline, slot))
             for slot in local.slots(workers)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  best = optuna_study.best_trial if any(t.value is not None for t in optuna_study.trials) else None
  logging.info('%d trials; best: %s', len(optuna_study.trials),
               f'#{best.number} {best.params} -> {best.value:.4f}' if best else 'none finished')
  return 0
