"""The task interface: what a model's outputs are scored against, in training and over a whole split.

A batch is a dict of arrays ({'image', 'label'}, {'image', 'mask'}, {'image', 'boxes', 'classes',
'box_mask'}, ...). A task owns
  - `inputs(batch)`: what the model is applied to;
  - `loss(outputs, batch)`: the per-example data term of the objective, shape [B];
  - `train_metrics(outputs, batch)`: jittable per-batch means for the training log;
  - `eval_outputs(outputs, batch, mask)`: jittable; {'sums': {...}} that add up exactly over batches and
    devices, and optionally {'examples': {...}} of per-example arrays for metrics that are no sums (mAP);
  - `accumulator()`: the host-side object that adds up a split's eval outputs and gives its metrics;
  - `predict(outputs, batch)`: jittable per-example predictions (a class, a mask in the mask's frame,
    scored boxes with a keep flag), which runs save for a few test examples and reports draw;
  - `headline`: the metric that ranks runs (early stopping, tables, plots), and which way is better.
Nothing outside a task names a metric.

Sequence tasks (forecasting, seq2seq, per-step labeling) read {'inputs', 'length', ...} batches. A seq2seq
model decodes from its own outputs when called with train=False, which is what the eval and predict
steps do. A recurrent model trained by truncated BPTT keeps its state between windows in the 'carry'
collection, which the train step returns and the TrainState keeps, shards by batch and checkpoints
(`model_state`); evaluation runs whole sequences. A VAE gives its KL term as an output; a
transfer-learning run loads weights with config.init and freezes or slows groups with
optimizer.param_groups. A GAN's two networks are one params dict of two ('networks'), each updated in turn
with its own optimizer state inside the one jitted step.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Headline:
  """The metric that ranks runs: a key of the accumulator's result, and whether higher is better."""
  name: str
  higher_is_better: bool

  def better(self, a: float, b: float) -> bool:
    """Whether value `a` is strictly better than `b`."""
    return a > b if self.higher_is_better else a < b


class Accumulator:
  """Adds up one split's eval outputs on the host; `finish` turns the totals into named metrics.

  The default keeps only the sums (in float64, so thousands of batches add up exactly); tasks whose
  metrics are no sums (detection's mAP) also collect `outputs['examples']`.
  """

  def __init__(self, finish):
    self._finish = finish
    self.sums = None

  def add(self, outputs: dict) -> None:
    """One eval batch's `eval_outputs`, already on the host."""
    sums = {k: np.asarray(v, np.float64) for k, v in outputs['sums'].items()}
    self.sums = sums if self.sums is None else {k: self.sums[k] + v for k, v in sums.items()}

  def result(self) -> dict:
    """The split's metrics, {name: float}."""
    return {k: float(v) for k, v in self._finish(self.sums).items()}

  def write(self, directory: str, split: str) -> None:
    """Files a person or a standard tool reads (e.g. COCO JSON); nothing for sum-only tasks."""
    del directory, split


class Task:
  """Defaults shared by tasks whose model reads batch['image'] or a sequence, and whose metrics are sums."""
  headline: Headline
  # The batch keys a sequence model reads (see jaxnets.models.recurrent); a seq2seq task adds 'targets'.
  sequence_keys = ('inputs', 'length', 'start')
  # Test examples whose predictions a run saves for its report (0: the whole test split, e.g. a forecast).
  prediction_examples = 8
  # A task that trains several networks in turn (a GAN's discriminator, then its generator) names them, in
  # the order they step: each is a top-level part of the parameters with its own optimizer state, and
  # `network_loss` gives its objective (see jaxnets.train.step.make_alternating_train_step).
  networks: tuple = ()
  # Whether each evaluation during training also writes the accumulator's files (a GAN's samples), under
  # the name step<N>.
  curve_files = False

  def inputs(self, batch: dict):
    """The model's input: the image; else the sequence 'inputs' alone, or a dict of every sequence key the
    batch has when there is more than 'inputs' (lengths, window starts, decoder targets)."""
    if 'image' in batch:
      return batch['image']
    present = [k for k in self.sequence_keys if k in batch]
    return batch['inputs'] if present == ['inputs'] else {k: batch[k] for k in present}

  def loss(self, outputs, batch: dict):
    """Per-example loss [B]."""
    raise NotImplementedError

  def metric_sums(self, outputs, batch: dict, mask) -> dict:
    """Jittable sums over the examples where mask is 1; must include 'loss' and 'count'."""
    raise NotImplementedError

  def metrics(self, sums: dict) -> dict:
    """Named metrics from sums added up over any number of batches (numpy or jax arrays alike)."""
    raise NotImplementedError

  def train_metrics(self, outputs, batch: dict) -> dict:
    """This training batch's metrics (jittable): by default the split metrics of the batch alone."""
    batch_size = jax.tree.leaves(batch)[0].shape[0]
    return self.metrics(self.metric_sums(outputs, batch, jnp.ones(batch_size, jnp.float32)))

  def predict(self, outputs, batch: dict) -> dict:
    """Per-example predictions, keyed like the batch's targets (e.g. {'label': classes})."""
    raise NotImplementedError

  def network_loss(self, network: str, apply, variables: dict, batch: dict, key):
    """A several-network task's objective for `network`'s step: (scalar loss, (metrics, model state after it)).
    `apply` is the model's apply; `key` this step's randomness for that network."""
    raise NotImplementedError

  def eval_outputs(self, outputs, batch: dict, mask) -> dict:
    """Jittable per-batch outputs the accumulator adds up."""
    return {'sums': self.metric_sums(outputs, batch, mask)}

  def accumulator(self) -> Accumulator:
    """A fresh accumulator for one split."""
    return Accumulator(self.metrics)
