"""Warm starts (config.init): a run's initial weights taken from another run's checkpoint or from PyTorch
(torchvision) weights, by name pattern, before training (transfer learning, as big_vision's `load`).

`init.checkpoint` names the source: a run directory (its newest checkpoint), 'run:NAME' (the run NAME of
the same experiment, which must have finished first), or a `.pth`/`.pt`/`.safetensors` file of a
torchvision model of the same family (see jaxnets.weights.torchvision). Of the new model's variables
('params', and 'batch_stats' with them), those whose path inside their collection ('encoder/conv0/kernel')
fully matches `init.load` and not `init.skip` are copied from the source; the rest keep their fresh
initialization (a new head of the target's class count, say). Every variable selected must exist in the
source with the same shape, and the patterns must select something: both are errors naming the variables.
The optimizer state starts fresh. Freezing and slower learning rates for loaded groups are
optimizer.param_groups'.
"""

import os
import re

import jax
import ml_collections
from absl import logging

from jaxnets import optim
from jaxnets.train import record
from jaxnets.train.checkpoint import Checkpointer

RUN_PREFIX = 'run:'
TORCH_SUFFIXES = ('.pth', '.pt', '.safetensors')
COLLECTIONS = ('params', 'batch_stats')


def source_dir(text: str, run_dir: str) -> str:
  """The path init.checkpoint names: 'run:NAME' is a sibling of this run's directory."""
  if text.startswith(RUN_PREFIX):
    return os.path.join(os.path.dirname(os.path.abspath(run_dir)), text[len(RUN_PREFIX):])
  return text


def _tuples(value):
  """JSON lists back as the tuples configs hold."""
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def run_variables(path: str) -> dict:
  """{'params', 'batch_stats', ...} of a finished run, read with its own config: the network its results
  are of (the best one of a run that stopped early, else its final one)."""
  from jaxnets.train.builder import build  # The builder imports this module.
  status_path = os.path.join(path, 'status.json')
  status = record.read_json(status_path)['status'] if os.path.exists(status_path) else 'missing'
  if status != 'done':
    raise ValueError(f'init.checkpoint: {path} is no finished run (status: {status}); run it first')
  try:
    setup = build(ml_collections.ConfigDict(_tuples(record.read_json(os.path.join(path, 'config.json')))))
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    raise ValueError(f'init.checkpoint: cannot rebuild the run in {path} from its config.json ({e}); a run '
                     'from an older jaxnets may lack newer fields') from e
  summary = record.read_json(os.path.join(path, 'summary.json'))
  best = 'best_step' in summary
  checkpointer = Checkpointer(os.path.join(path, 'checkpoints_best' if best else 'checkpoints'), keep=1000)
  try:
    like = jax.tree.map(lambda s: jax.numpy.zeros(s.shape, s.dtype), setup.abstract_state)
    state, _ = checkpointer.restore(summary['best_step'] if best else summary['steps'], like)
  finally:
    checkpointer.close()
  return {'params': state.params, **state.model_state}


def _leaves(variables: dict) -> dict:
  """{(collection, 'path/inside/it'): array} of the collections a warm start loads, in tree order."""
  out = {}
  for collection in COLLECTIONS:
    for key_path, leaf in jax.tree_util.tree_leaves_with_path(variables.get(collection, {})):
      out[(collection, optim.path_name(key_path))] = leaf
  return out


def compile_patterns(load: str, skip: str):
  """init.load and init.skip as regular expressions (skip None when empty); a bad one is a one-line error."""
  try:
    return re.compile(load), re.compile(skip) if skip else None
  except re.error as e:
    raise ValueError(f'init.load={load!r} / init.skip={skip!r}: bad regular expression ({e})') from e


def merge(variables: dict, source: dict, load: str, skip: str) -> tuple[dict, list[str]]:
  """`variables` with the selected leaves replaced by the source's, and the paths loaded."""
  pattern, skipped = compile_patterns(load, skip)
  found = _leaves(source)
  chosen, missing, misshapen = set(), [], []
  for key, leaf in _leaves(variables).items():
    if not pattern.fullmatch(key[1]) or (skipped and skipped.fullmatch(key[1])):
      continue
    if key not in found:
      missing.append('/'.join(key))
    elif found[key].shape != leaf.shape:
      misshapen.append(f'{"/".join(key)} {tuple(found[key].shape)} -> {tuple(leaf.shape)}')
    chosen.add(key)
  if missing or misshapen:
    problem = (f'the source lacks {", ".join(missing[:5])}' if missing
               else f'shapes differ: {", ".join(misshapen[:5])}')
    raise ValueError(f'init.load={load!r} (skip {skip!r}): {problem}; set init.skip for parts that differ '
                     '(e.g. a new head)')
  if not chosen:
    raise ValueError(f'init.load={load!r} (skip {skip!r}) selects no variable; the model\'s are named like '
                     f'{", ".join(k[1] for k in list(_leaves(variables))[:4])}, ...')

  merged = dict(variables)
  for collection in COLLECTIONS:
    if collection in variables:
      def take(key_path, leaf, collection=collection):
        key = (collection, optim.path_name(key_path))
        return found[key].astype(leaf.dtype) if key in chosen else leaf

      merged[collection] = jax.tree_util.tree_map_with_path(take, variables[collection])
  return merged, sorted('/'.join(k) for k in chosen)


def torch_variables(path: str, model_cfg, variables: dict, skip: str) -> dict:
  """torchvision weights in `path` converted for the model config.model names; a model built otherwise than
  its torchvision namesake computes (a v1 ResNet-50 for torchvision's v1.5) is an error naming the fix."""
  from jaxnets.weights import torchvision  # torch is needed for .pth files only.
  for field, value in torchvision.MODEL_KWARGS.get(model_cfg.name, {}).items():
    if model_cfg.get(field) != value:
      raise ValueError(f'init.checkpoint={path!r}: torchvision\'s {model_cfg.name} is model.{field}={value!r}; '
                       f'set it (the config has {model_cfg.get(field)!r})')
  keep = f'[^/]+/(?:{skip})' if skip else ''  # Its paths start with the collection ('params/head/kernel').
  return torchvision.convert(model_cfg.name, torchvision.read_state_dict(path), variables, keep=keep)


def source_variables(init_cfg, model_cfg, variables: dict, run_dir: str) -> dict:
  """The source's variables: a run's checkpoint, or torchvision weights converted for the model."""
  path = source_dir(init_cfg.checkpoint, run_dir)
  if path.endswith(TORCH_SUFFIXES):
    return torch_variables(path, model_cfg, variables, init_cfg.skip)
  if not os.path.isdir(path):
    raise ValueError(f'init.checkpoint={init_cfg.checkpoint!r}: {path} is neither a run directory nor a file '
                     f'ending in {", ".join(TORCH_SUFFIXES)}')
  return run_variables(path)


def apply(config, state, run_dir: str):
  """`state` with the weights config.init selects taken from its source (as it is without init.checkpoint)."""
  init_cfg = config.init
  if not init_cfg.checkpoint:
    return state
  variables = {'params': state.params, **state.model_state}
  source = source_variables(init_cfg, config.model, jax.device_get(variables), run_dir)
  merged, loaded = merge(variables, source, init_cfg.load, init_cfg.skip)
  logging.info('init: %d variables from %s (load %r, skip %r)', len(loaded), init_cfg.checkpoint, init_cfg.load,
               init_cfg.skip)
  shardings = jax.tree.map(lambda leaf: leaf.sharding, variables)
  merged = jax.device_put(merged, shardings)
  return state.replace(params=merged['params'], model_state={k: v for k, v in merged.items() if k != 'params'})
