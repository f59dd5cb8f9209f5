"""The SLURM executor: a study's trials as one job array, submitted through submitit.

Each array task runs its trial's ordinary command in a child process (TrialJob). Preemption and time
limits go through the run's own checkpoint at a step boundary:
  - SIGUSR2 (submitit asks SLURM for it 90 s before the time limit, and sends it on preemption):
    submitit calls TrialJob.checkpoint, which sends SIGTERM to the trial; the trial checkpoints at its
    next step and exits; submitit then requeues the task, which resumes from that checkpoint.
  - SIGTERM (SLURM preempting in requeue mode, `scontrol requeue`): every process of the task gets it,
    the trial checkpoints and exits 75, and the task exits with it, writing no result; SLURM requeues
    such a task itself. (A SIGTERM with no requeue, e.g. scancel, leaves the trial preempted: the
    same launch.sweep command resumes it.)
A trial that is already done when its task starts (a requeue after the end) returns its summary at once.
"""

import json
import os
import shlex
import signal
import subprocess
import sys

import submitit
from absl import logging

from jaxnets.train import preemption
from launch import study as study_lib

STOP_WAIT_S = 80  # A step and a checkpoint must fit in submitit's 90 s warning.


def parameters(f) -> dict:
  """submitit's parameters from launch.sweep's flags."""
  params = {'slurm_partition': f.partition, 'timeout_min': f.time_min, 'cpus_per_task': f.cpus_per_task,
            'slurm_array_parallelism': f.array_parallelism, 'name': 'jaxnets-sweep'}
  if f.gpus_per_task:
    params['slurm_gpus_per_task'] = f.gpus_per_task
  return {k: v for k, v in params.items() if v is not None}


class TrialJob(submitit.helpers.Checkpointable):
  """One array task: trains trial `name` of the study in `directory` (resuming it), returns its summary."""

  def __init__(self, directory: str, name: str):
    self.directory, self.name = directory, name
    self._process = None

  def __call__(self) -> dict:
    study = study_lib.load(self.directory)
    run_dir = study.run_dir(self.name)
    if study.status(self.name) != 'done':
      os.makedirs(run_dir, exist_ok=True)
      with open(os.path.join(run_dir, 'output.log'), 'a') as log:
        self._process = subprocess.Popen(study.command(self.name), cwd=study_lib.REPO, stdout=log,
                                         stderr=subprocess.STDOUT)
      code = self._process.wait()
      if code == preemption.EXIT_CODE:
        sys.exit(code)  # Stopped by SIGTERM with a checkpoint: no result (a requeue reruns the task).
      if code:
        raise RuntimeError(f'trial {self.name} ended {study.status(self.name)} (exit {code}); see '
                           f'{os.path.join(run_dir, "output.log")}')
    with open(os.path.join(run_dir, 'summary.json')) as f:
      return json.load(f)

  def checkpoint(self, *args, **kwargs):
    """On submitit's SIGUSR2: stop the trial at its next step (it checkpoints there), then resubmit."""
    if self._process is not None and self._process.poll() is None:
      self._process.send_signal(signal.SIGTERM)
      try:
        self._process.wait(timeout=STOP_WAIT_S)
      except subprocess.TimeoutExpired:
        logging.error('trial %s did not stop within %d s; it resumes from its last periodic checkpoint',
                      self.name, STOP_WAIT_S)
    self._process = None  # Not pickled into the resubmission.
    return super().checkpoint(*args, **kwargs)


def executor(directory: str, params: dict) -> submitit.AutoExecutor:
  """A submitit SLURM executor writing its files under DIR/submitit."""
  ex = submitit.AutoExecutor(folder=os.path.join(directory, 'submitit', '%j'), cluster='slurm')
  ex.update_parameters(**params)
  return ex


def submit(study, names: list[str], params: dict, wait: bool) -> list:
  """Submit `names` as one job array; with `wait`, block until every task ends. The jobs."""
  if not names:
    logging.info('nothing to submit: every trial is done or running')
    return []
  # The tasks import launch/ and jaxnets/ from this checkout (sbatch passes the environment on).
  os.environ['PYTHONPATH'] = os.pathsep.join(filter(None, [study_lib.REPO, os.environ.get('PYTHONPATH')]))
  ex = executor(study.directory, params)
  with ex.batch():
    jobs = [ex.submit(TrialJob(study.directory, name)) for name in names]
  logging.info('submitted %d trials as SLURM array %s', len(jobs), jobs[0].job_id.split('_')[0])
  if wait:
    for name, job in zip(names, jobs):
      try:
        job.result()
      except Exception as e:  # noqa: BLE001  A failed trial is reported by its status, the rest go on.
        logging.error('trial %s: %s', name, str(e).splitlines()[0] if str(e) else type(e).__name__)
  return jobs


def describe(study, names: list[str], params: dict) -> str:
  """What `submit` would do: the array's parameters and its tasks' commands."""
  lines = [f'slurm: one array of {len(names)} tasks through submitit, parameters {params}']
  lines += [f'  task {i}: {shlex.join(study.command(name))}' for i, name in enumerate(names)]
  return '\n'.join(lines)
