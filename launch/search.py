"""Bayesian search: optuna's TPE sampler proposes each trial from the config file's get_search(h).

The study lives in DIR/optuna.journal (optuna's file journal), so workers on a shared filesystem, here
or in SLURM tasks, need no database: each runs `python -m launch.sweep --search=tpe ...` and they share
the study. A worker asks for a trial only while fewer than --trials exist, under a file lock, so the
study ends with exactly that many and none twice. Each trial is an ordinary run directory
DIR/<name>, added to DIR/sweep.json as it is asked (launch.report reads it like a grid's). TPE
optimizes the validation metric where runs have one (data.val_split with early stopping), else the
test metric. A trial interrupted by a signal or a killed worker stays running in optuna; the next
worker to start (rerun the same command) resumes it from its checkpoint and tells its result.
"""

import contextlib
import fcntl
import json
import os
import socket
import threading

import optuna
from absl import logging

from jaxnets import experiment, sweeps, tasks
from jaxnets.train import preemption, record as record_lib
from launch import local, study as study_lib

JOURNAL = 'optuna.journal'
CLAIM_FILE = '.optuna_worker'  # In a trial's run directory: 'host pid' of the worker running it.
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
  record_lib.write_json(path, record, sort_keys=False)
  return record


def _claim(run_dir: str) -> bool:
  """Claim an interrupted trial for this worker (under the ask lock): False if a live worker has it."""
  path = os.path.join(run_dir, CLAIM_FILE)
  if os.path.exists(path):
    with open(path) as f:
      host, pid = f.read().split()
    if host != socket.gethostname() or _alive(int(pid)):  # Another host's worker: assumed alive.
      return False
  with open(path, 'w') as f:
    f.write(f'{socket.gethostname()} {os.getpid()}')
  return True


def _alive(pid: int) -> bool:
  """Whether process `pid` exists on this host."""
  try:
    os.kill(pid, 0)
    return True
  except ProcessLookupError:
    return False


def _ask(study, optuna_study, space, n_trials: int):
  """(optuna trial number, name) of the trial to run next: an interrupted one (still running in optuna,
  its run resumable and unclaimed), else a new one; None once the study has `n_trials`."""
  with _locked(study.directory):
    study.trials.update(study_lib.load(study.directory).trials)  # Other workers' trials too.
    by_number = {int(n.split('-', 1)[0]): n for n in study.trials}
    for trial in optuna_study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
      name = by_number.get(trial.number)
      if name and study.status(name) in study_lib.RESUMABLE and _claim(study.run_dir(name)):
        logging.info('resuming trial %s, interrupted before it was told', name)
        return trial.number, name
    if len(optuna_study.trials) >= n_trials:
      return None
    trial = optuna_study.ask()
    overrides = {d.field: d.suggest(trial) for d in space}
    name = f'{trial.number:03d}-' + sweeps.names([sweeps.Trial(overrides)])[0]
    study.trials[name] = overrides
    _record(study.directory, study.config_arg, study.overrides, space, name, overrides)
    os.makedirs(study.run_dir(name), exist_ok=True)
    _claim(study.run_dir(name))
    return trial.number, name


def objective(summary: dict, headline) -> float:
  """The value TPE optimizes: the validation split's headline metric where the run has one (with
  data.val_split and early stopping), else the test split's."""
  return summary.get(f'val_{headline.name}', summary[f'test_{headline.name}'])


def _worker(study, optuna_study, space, n_trials: int, headline, slot: dict, stop: threading.Event) -> None:
  """Ask, train, tell, until the study has `n_trials` or `stop` is set."""
  while not stop.is_set() and (asked := _ask(study, optuna_study, space, n_trials)) is not None:
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
        value = objective(json.load(f), headline)
      optuna_study.tell(trial, value)
      logging.info('trial %s: %s %.4f', name, headline.name, value)
    elif study.status(name) in study_lib.RESUMABLE:  # Stopped by a signal: left running in optuna,
      logging.warning('trial %s %s; the same command resumes it', name, study.status(name))  # resumed later.
      return
    else:
      optuna_study.tell(trial, state=optuna.trial.TrialState.FAIL)
      logging.error('trial %s ended %s', name, study.status(name))


def run(config_arg: str, overrides: list, directory: str, n_trials: int, workers: int, executor: str) -> int:
  """Run this worker's share of the TPE study in `directory` with `workers` trials at a time; exit code."""
  if executor != 'local':
    raise ValueError(f'--search=tpe runs with --executor=local (got {executor!r}); on SLURM, start the '
                     'same command in each task of a job: the workers share DIR/optuna.journal')
  space = study_lib.search_space(config_arg)
  study_lib.check_overrides(overrides, [d.field for d in space], 'get_search')
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
  stop = threading.Event()
  threads = [threading.Thread(target=_worker, args=(study, optuna_study, space, n_trials, headline, slot, stop))
             for slot in local.slots(workers)]
  for thread in threads:
    thread.start()
  try:
    for thread in threads:
      while thread.is_alive():
        thread.join(0.5)
  except KeyboardInterrupt:  # The trials got Ctrl-C too and checkpoint; ask for no new ones.
    stop.set()
    logging.warning('stopping: no new trials; waiting for the running ones to checkpoint')
    for thread in threads:
      thread.join()
    return preemption.EXIT_CODE
  best = optuna_study.best_trial if any(t.value is not None for t in optuna_study.trials) else None
  logging.info('%d trials; best: %s', len(optuna_study.trials),
               f'#{best.number} {best.params} -> {best.value:.4f}' if best else 'none finished')
  return 0
