"""One builder from a config to everything a run needs: the training loop, benchmarks and tests all use it.

`build(config)` resolves every name the config gives (dataset, task, model, optimizer, augmentations),
checks every field, and traces the model on a sample batch of the dataset's own shapes and dtypes,
all before any data is read. The data-dependent parts (the input normalization) and the jitted steps
come after, from the same object.
"""

import dataclasses

import jax
import numpy as np

from jaxnets import data, models, optim, tasks
from jaxnets.data.preprocess import Preprocess, parse_augment
from jaxnets.train import diagnostics, precision, sharding
from jaxnets.train.state import TrainState, init_state
from jaxnets.train.step import jit_predict_step, jit_steps


def fields(group) -> dict:
  """A config group's fields other than its name: the arguments of the registry entry it names."""
  return {k: v for k, v in group.items() if k != 'name'}


@dataclasses.dataclass(frozen=True)
class Setup:
  """A config resolved: dataset spec, task, model, optimizer chain, and the model's sample input."""
  config: object
  spec: data.DatasetSpec
  task: tasks.Task
  model: object
  tx: object
  schedule: object
  sample_input: object  # One model input of the shape and dtype the model sees (after preprocessing).
  layers: diagnostics.Layers  # The model's top-level modules, input to output, and first kernel.

  def preprocess(self, stats: tuple | None = None) -> Preprocess:
    """The device-side preprocessing, normalizing by `stats` (mean, std) or the training split's own."""
    if stats is None and 'image' in self.spec.features:
      d = self.config.data
      stats = data.channel_stats(self.spec.name, d.train_split or self.spec.train_split, d.data_dir or None)
    return Preprocess.from_config(self.config.data, stats or (None, None))

  def init_state(self, mesh) -> TrainState:
    """The initial state from config.seed, replicated over the mesh."""
    return jax.jit(lambda: init_state(self.model, self.tx, self.config.seed, self.sample_input),
                   out_shardings=sharding.replicated(mesh))()

  def jit_steps(self, preprocess: Preprocess, mesh):
    """(train_step, eval_step), jitted for the mesh."""
    return jit_steps(self.model, self.task, self.tx, self.schedule, self.config.optimizer, preprocess,
                     self.layers, mesh, self.config.train.aux_loss_weight, self.config.train.compute_dtype)

  def jit_predict_step(self, preprocess: Preprocess, mesh):
    """predict_step(state, batch): the task's predictions, jitted for the mesh."""
    return jit_predict_step(self.model, self.task, preprocess, mesh, self.config.train.compute_dtype)


def sample_batch(spec: data.DatasetSpec) -> dict:
  """One example of zeros with the dataset's feature shapes and dtypes, as a batch."""
  return {k: np.zeros((1,) + tuple(shape), dtype) for k, (shape, dtype) in spec.features.items()}


def build(config) -> Setup:
  """Resolve and check everything `config` names, and trace the model, without reading data."""
  spec = data.spec(config.data.name)
  target = tasks.target(config.task.name)
  spec.num_classes(target)  # An error naming the dataset's targets if it lacks this task's.
  classes = spec.classes[target]
  for group, field in (('task', 'classes'), ('model', 'num_classes')):
    if field in config[group]:
      raise ValueError(f'{group}.{field} comes from the dataset ({len(classes)} classes of {config.data.name!r} '
                       f'{target!r}); remove it from the config')
  task = tasks.create(config.task.name, classes, **fields(config.task))
  model_fields = fields(config.model)
  if 'num_classes' in models.MODELS.fields(config.model.name):
    model_fields['num_classes'] = len(classes)
  model = models.create(config.model.name, **model_fields)
  tx, schedule = optim.create(config.optimizer, config.train.steps)
  parse_augment(config.data.augment)
  precision.check(config.train.compute_dtype)
  channels = spec.image_shape[-1] if 'image' in spec.features else 0
  unit_stats = (np.zeros(channels, np.float32), np.ones(channels, np.float32))
  shapes_only = Preprocess.from_config(config.data, unit_stats)
  abstract = task.inputs(jax.eval_shape(shapes_only.eval, sample_batch(spec)))
  sample_input = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), abstract)
  found = []

  def traced_init():
    state = init_state(model, tx, config.seed, sample_input)
    found.append(diagnostics.layers_of(state.params))
    return state

  # One abstract trace of the initial state; it also checks what needs the parameters' names
  # (optimizer.param_groups).
  jax.eval_shape(traced_init)
  return Setup(config, spec, task, model, tx, schedule, sample_input, found[0])
