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
from jaxnets.data import batching
from jaxnets.data.preprocess import Preprocess, parse_augment
from jaxnets.train import diagnostics, precision, sharding, warm_start
from jaxnets.train.state import CARRIED, TrainState, init_state
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
  abstract_state: TrainState  # The initial state's shapes and dtypes.
  label_subset: tuple = ()  # The dataset's labels that data.classes keeps (see jaxnets.data.subsets); () all.

  def load(self, split: str) -> dict:
    """A split of the dataset (a TFDS split string), cut to data.classes if that is set."""
    return data.keep_classes(data.load(self.spec.name, split, self.config.data.data_dir or None), self.label_subset)

  def preprocess(self, stats: tuple | None = None) -> Preprocess:
    """The device-side preprocessing, normalizing by `stats` (mean, std) or the training split's own."""
    if stats is None and 'image' in self.spec.features and self.config.data.normalize == 'standard':
      d = self.config.data
      stats = data.channel_stats(self.spec.name, d.train_split or self.spec.train_split, d.data_dir or None)
    return Preprocess.from_config(self.config.data, stats or (None, None))

  def _init(self) -> TrainState:
    """The initial state from config.seed."""
    return init_state(self.model, self.tx, self.config.seed, self.sample_input, self.task.networks)

  def state_sharding(self, mesh):
    """How the state lies on the mesh: replicated, but a carried recurrent state split by batch."""
    return sharding.state_sharding(mesh, self.abstract_state)

  def init_state(self, mesh) -> TrainState:
    """The initial state from config.seed, laid out over the mesh."""
    return jax.jit(self._init, out_shardings=self.state_sharding(mesh))()

  def jit_steps(self, preprocess: Preprocess, mesh):
    """(train_step, eval_step), jitted for the mesh."""
    return jit_steps(self.model, self.task, self.tx, self.schedule, self.config.optimizer, preprocess,
                     self.layers, mesh, self.config.train.aux_loss_weight, self.config.train.compute_dtype,
                     self.state_sharding(mesh))

  def jit_predict_step(self, preprocess: Preprocess, mesh):
    """predict_step(state, batch): the task's predictions, jitted for the mesh."""
    return jit_predict_step(self.model, self.task, preprocess, mesh, self.config.train.compute_dtype)


def sample_batch(spec: data.DatasetSpec, window: int = 0, batch_size: int = 1) -> dict:
  """A batch of zeros with the dataset's feature shapes and dtypes; with a truncated-BPTT `window`, one
  window of the whole training batch (the carried state the model initializes has the batch's shape)."""
  if not window:
    return {k: np.zeros((1,) + tuple(shape), dtype) for k, (shape, dtype) in spec.features.items()}
  whole = {k: np.zeros((batch_size,) + tuple(shape), dtype) for k, (shape, dtype) in spec.features.items()}
  return batching.gather_window(whole, np.arange(batch_size), 0, window)


def with_dataset_facts(group: str, given: dict, accepted: list, facts: dict) -> dict:
  """`given` fields plus the dataset's facts (its classes' count, vocabulary size, target scale...) that
  the entry takes; a config setting one of them is an error, since the dataset decides it."""
  out = dict(given)
  for name, value in facts.items():
    if name in given:
      raise ValueError(f'{group}.{name} comes from the dataset ({value!r}); remove it from the config')
    if name in accepted:
      out[name] = value
  return out


def build(config) -> Setup:
  """Resolve and check everything `config` names, and trace the model, without reading data."""
  spec = data.spec(config.data.name)
  target = tasks.target(config.task.name)
  if not (target == 'image' and 'image' in spec.features):  # An image target (an autoencoder's) has no classes.
    spec.num_classes(target)  # An error naming the dataset's targets if it lacks this task's.
  subset = data.label_subset(spec, config.data.classes)
  classes = data.class_names(spec, target, subset)
  if 'classes' in config.task:
    raise ValueError(f'task.classes comes from the dataset ({len(classes)} classes of {config.data.name!r} '
                     f'{target!r}); remove it from the config')
  task_facts = {**spec.meta, 'dataset': spec.name, 'data_dir': config.data.data_dir,
                'data_classes': config.data.classes}
  task_fields = with_dataset_facts('task', fields(config.task), tasks.TASKS.fields(config.task.name), task_facts)
  task = tasks.create(config.task.name, classes, **task_fields)
  warm_start.compile_patterns(config.init.load, config.init.skip)
  if task.networks and config.optimizer.param_groups:
    raise ValueError(f'optimizer.param_groups={config.optimizer.param_groups!r}: task {config.task.name!r} trains '
                     f'{" and ".join(task.networks)} with an optimizer state each; parameter groups are not '
                     'supported there')
  if getattr(task, 'unit_images', False) and config.data.normalize == 'standard':
    raise ValueError(f"task {config.task.name!r} scores images in [0, 1]: set data.normalize to 'unit' or "
                     "'binary', not 'standard'")
  model_fields = with_dataset_facts('model', fields(config.model), models.MODELS.fields(config.model.name),
                                    {'num_classes': len(classes), **spec.meta})
  model = models.create(config.model.name, **model_fields)
  tx, schedule = optim.create(config.optimizer, config.train.steps)
  parse_augment(config.data.augment)
  precision.check(config.train.compute_dtype)
  channels = spec.image_shape[-1] if 'image' in spec.features else 0
  unit_stats = (np.zeros(channels, np.float32), np.ones(channels, np.float32))
  shapes_only = Preprocess.from_config(config.data, unit_stats)
  batching.check_window(spec, config.data.window)
  sample = sample_batch(spec, config.data.window, config.data.batch_size)
  abstract = jax.eval_shape(lambda batch: task.inputs(shapes_only.eval(batch)), sample)
  sample_input = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), abstract)
  found = []

  def traced_init():
    state = init_state(model, tx, config.seed, sample_input, task.networks)
    found.append(diagnostics.layers_of(state.params))
    return state

  # One abstract trace of the initial state; it also checks what needs the parameters' names
  # (optimizer.param_groups).
  abstract_state = jax.eval_shape(traced_init)
  if config.data.window and not any(k in abstract_state.model_state for k in CARRIED):
    raise ValueError(f'data.window={config.data.window}: model {config.model.name!r} carries no state from one '
                     'window to the next; truncated BPTT needs a recurrent model (rnn, rnn_tagger)')
  return Setup(config, spec, task, model, tx, schedule, sample_input, found[0], abstract_state, subset)
