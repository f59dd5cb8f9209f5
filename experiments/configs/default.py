"""Every config field with its default; experiment configs import this and change a few.

The embedded default trains a small residual net on Fashion-MNIST, which is available offline.
`model`, `task` and the optimizer's own settings are open groups: besides `name` they hold only the
fields a config sets, and the registry entry named gives the rest their defaults (so
`--config.model.name=NAME` works from any config whose model fields NAME takes). A field the entry does
not take is an error naming its valid fields; every other field must be one of those below.
"""

import ml_collections


def get_config(arg: str | None = None):
  del arg  # The default has no variants.
  c = ml_collections.ConfigDict()
  c.seed = 0
  # Any name in jaxnets.tasks.names(); other fields are its arguments (e.g. segmentation's dice_weight).
  c.task = ml_collections.ConfigDict({'name': 'classification'})
  # Any name in jaxnets.models.names(); other fields are its arguments (defaults: the model's own).
  c.model = ml_collections.ConfigDict({'name': 'cifar_resnet'})

  c.data = ml_collections.ConfigDict()
  c.data.name = 'fashion_mnist'
  c.data.data_dir = ''  # '' = $TFDS_DATA_DIR or ~/tensorflow_datasets.
  c.data.train_split = ''  # '' = the dataset's own train / test split.
  c.data.test_split = ''
  c.data.val_split = ''  # A TFDS split scored every train.eval_every steps ('' = none), e.g. 'train[50000:]'.
  # Keep only these classes of the dataset's labels, relabelled 0..k-1 in this order, e.g. 'Sandal,Shirt'
  # ('' = all); the test and validation splits are cut alike.
  c.data.classes = ''
  c.data.batch_size = 128  # Global, over all devices and hosts.
  c.data.eval_batch_size = 1000
  # Images as the model sees them: 'standard' ((x - mean) / std, the training set's channel statistics),
  # 'unit' (x / 255 in [0, 1]) or 'binary' (x / 255 > 0.5, MNIST-style binarization).
  c.data.normalize = 'standard'
  c.data.augment = 'crop,flip'  # Comma-separated names (crop, flip, rotate, brightness); '' for none.
  c.data.crop_padding = 4
  c.data.pad_to = 0  # Zero-pad (after normalization) images to at least pad_to x pad_to; 0 = as stored.
  c.data.rotate_degrees = 15.0  # rotate: angle uniform in [-d, d].
  c.data.brightness = 0.2  # brightness: offset uniform in [-b, b] of the full [0, 255] range.
  # Truncated BPTT: train on consecutive windows of this many steps, the recurrent state carried from one
  # to the next without gradient (0: whole sequences, full BPTT). Evaluation reads whole sequences.
  c.data.window = 0
  c.data.train_eval_examples = 10000  # Fixed training subset scored in eval mode at the end; 0 = all.
  c.data.test_curve_examples = 2000  # Test subset scored every train.eval_every steps; 0 = all.

  c.optimizer = ml_collections.ConfigDict()
  # Any name in jaxnets.optim.names(). Its own settings (momentum, b1, b2, eps, rho,
  # initial_accumulator: see jaxnets/optim.py) take their defaults there unless a config sets them.
  c.optimizer.name = 'momentum'
  c.optimizer.lr = 0.1
  c.optimizer.weight_decay = 1e-4
  c.optimizer.weight_decay_mode = 'l2'
  c.optimizer.l1 = 0.0
  c.optimizer.clip_value = 0.0
  c.optimizer.clip_norm = 0.0
  # Parameter groups: 'pattern=multiplier ...', a regex on parameter paths (e.g. 'backbone/.*=0.1
  # head/.*=1'); the learning-rate multiplier of the first matching group, 0 or 'frozen' to freeze.
  c.optimizer.param_groups = ''
  c.optimizer.schedule = ml_collections.ConfigDict()
  c.optimizer.schedule.name = 'step'
  c.optimizer.schedule.warmup_steps = 0
  c.optimizer.schedule.boundaries = (0.5, 0.75)
  c.optimizer.schedule.decay_factor = 0.1

  # Initial weights from elsewhere (transfer learning; see jaxnets/train/warm_start.py): a run directory,
  # 'run:NAME' (a run of the same experiment) or a torchvision .pth / .safetensors file ('' = none); the
  # variables whose path fully matches `load` and not `skip` (e.g. 'head/.*') are taken from it.
  c.init = ml_collections.ConfigDict({'checkpoint': '', 'load': '.*', 'skip': ''})

  c.train = ml_collections.ConfigDict()
  c.train.steps = 400
  c.train.log_every = 20
  c.train.eval_every = 100
  c.train.checkpoint_every = 100
  c.train.keep_checkpoints = 2
  # Stop after this many evaluations without a better validation score (the task's headline: a lower
  # error, a higher mIoU or AP) and keep the best network (0 = off; needs data.val_split).
  c.train.early_stopping_patience = 0
  # Weight of the task's loss on outputs a model sows as 'aux_outputs' (GoogLeNet's auxiliary classifiers).
  c.train.aux_loss_weight = 0.3
  # The dtype the model computes in: 'float32', or 'bfloat16' (mixed precision: parameters, optimizer and
  # BatchNorm state, loss and gradients stay float32; see jaxnets/train/precision.py).
  c.train.compute_dtype = 'float32'

  # Several runs from one config: whitespace-separated 'field=v1,v2' axes, crossed (see jaxnets.experiment).
  c.experiment = ml_collections.ConfigDict()
  c.experiment.sweep = ''
  # Named runs setting several fields each, crossed with the sweep: 'name: a.b=v c.d=w; name2: ...'.
  c.experiment.variants = ''
  c.experiment.columns = 'model.name'  # Config fields shown beside the results in results.md.
  c.experiment.report = 'curves'  # Plot in the workdir: a name in jaxnets.plots.names().
  return c


def no_variants(arg: str | None, name: str) -> None:
  """The check of a config file that has no variants: any argument is an error naming the valid one."""
  if arg not in (None, ''):
    raise ValueError(f"unknown variant {arg!r} of {name}; valid choices: '' (default)")


def sequence_config(dataset: str, batch_size: int, lr: float, clip_norm: float = 0.0):
  """The sequence studies' recipe on `dataset`: no image augmentation; Adam at `lr`, cosine decay, no weight
  decay, gradients clipped to global norm `clip_norm` (0: not clipped)."""
  c = get_config()
  c.data.name = dataset
  c.data.augment = ''
  c.data.batch_size = batch_size
  c.optimizer.name = 'adam'
  c.optimizer.lr = lr
  c.optimizer.weight_decay = 0.0
  c.optimizer.clip_norm = clip_norm
  c.optimizer.schedule.name = 'cosine'
  return c


def train_for(c, steps: int, log_every: int, eval_every: int) -> None:
  """c.train: `steps` steps, logged every log_every, evaluated and checkpointed every eval_every."""
  c.train.steps = steps
  c.train.log_every = log_every
  c.train.eval_every = c.train.checkpoint_every = eval_every
