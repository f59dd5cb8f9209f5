"""Move a run's checkpoints between the unrolled and the scanned layout of its model (model.scan).

The parameters, batch statistics and optimizer state of a scanned stage are its unrolled blocks stacked
(jaxnets.models.stack.convert), so a run trained either way resumes the other way with the same weights.
The old checkpoints are kept beside the new ones, in checkpoints.<old layout>/, and config.json records
the new model.scan, which the resuming command line must then set too.
"""

import os

import jax

from jaxnets.models import stack
from jaxnets.train import record
from jaxnets.train.builder import build
from jaxnets.train.checkpoint import Checkpointer
from jaxnets.train.lock import workdir_lock
from jaxnets.train.state import init_state


def _abstract_state(config):
  """The run's TrainState as shapes and dtypes, without computing anything."""
  setup = build(config)
  return jax.eval_shape(lambda: init_state(setup.model, setup.tx, config.seed, setup.sample_input))


def _layout(scanned: bool) -> str:
  return 'scanned' if scanned else 'unrolled'


def _convert_dir(directory: str, old_like, new_like, scan: bool) -> list[int]:
  """Write every checkpoint of `directory` converted into `directory`.new; the steps converted."""
  source, target = Checkpointer(directory, keep=1 << 30), Checkpointer(directory + '.new', keep=1 << 30)
  steps = source.steps()
  for step in steps:
    state, meta = source.restore(step, old_like)
    state = state.replace(**{k: stack.convert(getattr(state, k), scan) for k in ('params', 'model_state', 'opt_state')})
    if jax.tree.structure(state) != jax.tree.structure(new_like):
      raise ValueError(f'checkpoint {step} of {directory} does not convert to the {_layout(scan)} layout')
    target.save(step, state, meta)
  source.close()
  target.close()
  return steps


def relayout(config, workdir: str, scan: bool) -> list[int]:
  """Rewrite the checkpoints of the run `config` trained in `workdir` in the layout `scan` asks; their steps.

  `config` must be the run's own (the one in workdir/config.json): anything else is refused, as a resume is.
  """
  new_config = config.copy_and_resolve_references()
  new_config.model.scan = scan
  old_like, new_like = _abstract_state(config), _abstract_state(new_config)
  old_name = _layout(not scan)
  with workdir_lock(workdir):
    record.claim_config(workdir, config)
    if stack.is_scanned(old_like.params) == stack.is_scanned(new_like.params):
      raise ValueError(f'nothing to convert: {config.model.name} is {_layout(stack.is_scanned(old_like.params))} '
                       f'with model.scan={config.model.get("scan")} and with model.scan={scan}')
    directories = [d for d in ('checkpoints', 'checkpoints_best') if os.path.isdir(os.path.join(workdir, d))]
    for d in directories:
      if os.path.exists(os.path.join(workdir, f'{d}.{old_name}')):
        raise ValueError(f'{os.path.join(workdir, f"{d}.{old_name}")} exists: move it away first')
    steps = [_convert_dir(os.path.join(workdir, d), old_like, new_like, scan) for d in directories]
    for d in directories:  # Only once every directory converted: a failure above leaves the run as it was.
      os.replace(os.path.join(workdir, d), os.path.join(workdir, f'{d}.{old_name}'))
      os.replace(os.path.join(workdir, f'{d}.new'), os.path.join(workdir, d))
    record.write_json(os.path.join(workdir, 'config.json'), record.resolved_config(new_config))
  return steps[0] if steps else []
