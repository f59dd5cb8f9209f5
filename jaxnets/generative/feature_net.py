"""The Fashion-MNIST classifier whose features and predictions score image generators offline (see
jaxnets.generative.scores): trained once by the normal training loop into the data_dir, then restored
from that run's final checkpoint by every later caller.

  python -m jaxnets.generative.feature_net [--data_dir=DIR]

trains it if the data_dir does not hold it yet (into DIR/jaxnets_feature_net/fashion_mnist/) and prints its
test accuracy and where it lives.
"""

if __name__ == '__main__':  # The command: jaxnets' XLA and compilation-cache settings, before JAX starts.
  import os
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # TensorFlow serves only TFDS here.
  from jaxnets import xla_env
  xla_env.configure()

import dataclasses  # noqa: E402
import os  # noqa: E402
from typing import Callable  # noqa: E402

import jax  # noqa: E402
import ml_collections  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from experiments.config_files import fail, quiet_libraries  # noqa: E402
from experiments.configs import default  # noqa: E402
from jaxnets import data  # noqa: E402
from jaxnets.train import lock, record, sharding  # noqa: E402
from jaxnets.train.checkpoint import Checkpointer  # noqa: E402

RUN_DIR = os.path.join('jaxnets_feature_net', 'fashion_mnist')  # The training run, under the data_dir.
# simple_cnn's penultimate (dense) layer, read before its ReLU: no dead (always zero) units to make the
# features' covariance singular, and closer to the Gaussian a Frechet distance assumes.
FEATURE_LAYER = 'hidden'


def feature_net_config() -> ml_collections.ConfigDict:
  """The feature net's recipe: simple_cnn (conv 32, conv 64, dense 'hidden' 128) on Fashion-MNIST without
  augmentation, Adam 1e-3 with cosine decay, 2,400 steps of batch 64 (2.6 epochs). On this project's
  2-core CPU: test error 0.0985 after 185 s of training (another job sharing the CPU, ~850 img/s)."""
  c = default.get_config()
  c.model = ml_collections.ConfigDict({'name': 'simple_cnn', 'widths': (32, 64), 'convs_per_stage': 1,
                                       'hidden': 128})
  c.data.augment = ''
  c.data.batch_size = 64
  c.optimizer.name = 'adam'
  c.optimizer.lr = 1e-3
  c.optimizer.weight_decay = 0.0
  c.optimizer.schedule.name = 'cosine'
  default.train_for(c, steps=2400, log_every=100, eval_every=800)
  return c


def workdir(data_dir: str | None = None) -> str:
  """Where the feature net's training run lives: <data_dir>/jaxnets_feature_net/fashion_mnist."""
  return os.path.join(data.resolve_data_dir(data_dir), RUN_DIR)


@dataclasses.dataclass(frozen=True)
class FeatureNet:
  """The trained classifier on images float32 [N, 28, 28, 1] in [0, 1] (its input normalization inside)."""
  workdir: str
  summary: dict  # The training run's summary.json: test_error, steps, wall_seconds, ...
  variables: dict  # The network's trained variables ({'params': ...}).
  apply: Callable  # Jitted (variables, images) -> (features [N, hidden], probabilities [N, 10]).

  def outputs(self, images):
    """(features, probabilities) of `images`: the penultimate layer's outputs and the softmax."""
    return self.apply(self.variables, images)

  def features(self, images):
    """The 'hidden' dense layer's outputs before its ReLU, [N, hidden]."""
    return self.outputs(images)[0]

  def probabilities(self, images):
    """The predicted class probabilities, [N, 10]."""
    return self.outputs(images)[1]


def ensure(data_dir: str | None = None, config=None) -> FeatureNet:
  """The feature net of `data_dir`, trained there first by the training loop unless that run finished (an
  interrupted one resumes; one another process is training is refused, lock.WorkdirBusyError).

  `config` (default feature_net_config()) replaces the recipe, e.g. a shorter one in tests. A finished run
  is reused while every field its config.json holds is unchanged: fields added to the defaults since it
  was trained do not retrain it (the loop would refuse the run for them); any other change is a ValueError.
  """
  run = workdir(data_dir)
  config = (config or feature_net_config()).copy_and_resolve_references()
  config.data.data_dir = data.resolve_data_dir(data_dir)
  if os.path.exists(os.path.join(run, 'summary.json')):
    changed = _changed_fields(record.read_json(os.path.join(run, 'config.json')), record.resolved_config(config))
    if changed:
      raise ValueError(f'{run} holds a feature net of another recipe ({", ".join(changed)}); move it away '
                       'to train this one')
    summary = record.read_json(os.path.join(run, 'summary.json'))
  else:
    logging.info('training the Fashion-MNIST feature net once into %s; later runs reuse it', run)
    from jaxnets.train.loop import train_and_evaluate  # noqa: PLC0415  (see _restore)
    summary = train_and_evaluate(config, run)
  return _restore(config, run, summary)


def _changed_fields(saved: dict, current: dict, prefix: str = '') -> list[str]:
  """'field: old -> new' for each field of `saved` (a run's config) that `current` changes or lacks."""
  changed = []
  for key, old in saved.items():
    new = current.get(key)
    if isinstance(old, dict) and isinstance(new, dict):
      changed += _changed_fields(old, new, f'{prefix}{key}.')
    elif key not in current or new != old:
      changed.append(f'{prefix}{key}: {old!r} -> {new!r}')
  return changed


def _restore(config, run: str, summary: dict) -> FeatureNet:
  """The FeatureNet of the finished run in `run`, from its final checkpoint."""
  # Imported here: the task registry the builder (and the loop) import holds the GAN task, which imports
  # this module.
  from jaxnets.train.builder import build  # noqa: PLC0415
  setup = build(config)
  checkpointer = Checkpointer(os.path.join(run, 'checkpoints'), config.train.keep_checkpoints)
  try:
    state, _ = checkpointer.restore(summary['steps'], setup.init_state(sharding.data_mesh()))
  finally:
    checkpointer.close()
  preprocess, model = setup.preprocess(), setup.model

  @jax.jit
  def apply(variables, images):
    inputs = preprocess.eval({'image': images * 255.0})['image']  # Its statistics are in [0, 255] units.
    logits, captured = model.apply(variables, inputs, train=False,
                                   capture_intermediates=lambda module, _: module.name == FEATURE_LAYER)
    return captured['intermediates'][FEATURE_LAYER]['__call__'][0], jax.nn.softmax(logits)

  return FeatureNet(run, summary, {'params': state.params, **state.model_state}, apply)


def main(argv):
  """Train the feature net unless it is there, then say how good it is and where it lives."""
  del argv
  quiet_libraries()
  try:
    net = ensure(flags.FLAGS.data_dir)
  except lock.WorkdirBusyError as e:
    fail(str(e), lock.EXIT_CODE)
  except ValueError as e:  # The data_dir holds a feature net of another recipe.
    fail(str(e))
  print(f'Fashion-MNIST feature net: test accuracy {1 - net.summary["test_error"]:.4f} '
        f'({net.summary["steps"]} steps, {net.summary["wall_seconds"]:.0f} s of training) in {net.workdir}')


if __name__ == '__main__':
  flags.DEFINE_string('data_dir', None, 'The TFDS data_dir holding Fashion-MNIST and the feature net '
                      '(default: $TFDS_DATA_DIR, else ~/tensorflow_datasets).')
  app.run(main)
