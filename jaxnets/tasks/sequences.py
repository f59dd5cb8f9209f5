"""Sequence tasks: forecasting a series' next values, translating token sequences (seq2seq), and labeling every
step of a sequence. Batches are the sequence dicts of jaxnets.data.sequences.
"""

import jax.numpy as jnp
import optax

from jaxnets.data.specs import MASK_IGNORE, PAD_ID
from jaxnets.tasks.base import Headline, Task


class Forecast(Task):
  """Forecasts [B, H] of a standardized series' next H values against 'target' [B, H], trained by squared
  error. Metrics are in the series' own units (errors times `target_scale`), beside two baselines scored
  on the same examples: persistence (every future value equals the last input) and, when the input window
  covers a season, seasonal naive (the value one season before the target).

  With `relative`, the model sees each window minus its last value and predicts the change from it: a
  trending series (CO2) then never shows the model a level outside the training range.
  """
  target = 'target'
  headline = Headline('mse', higher_is_better=False)
  prediction_examples = 0  # The whole held-out stretch, for the forecast-vs-truth plot.

  def __init__(self, classes: tuple, target_scale: float = 1.0, target_offset: float = 0.0, season: int = 0,
               relative: bool = False):
    self.classes = classes
    self.scale, self.offset, self.season, self.relative = target_scale, target_offset, season, relative

  def inputs(self, batch):
    """The input window, relative to its last value if `relative`."""
    series = batch['inputs']
    return series - series[:, -1:] if self.relative else series

  def forecast(self, outputs, batch):
    """The forecast (standardized units) from the model's outputs."""
    return outputs + batch['inputs'][:, -1:, 0] if self.relative else outputs

  def loss(self, outputs, batch):
    """Mean squared error over the horizon (standardized units)."""
    return jnp.mean((self.forecast(outputs, batch) - batch['target']) ** 2, axis=-1)

  def baselines(self, batch) -> dict:
    """{'persistence': [B, H]} and, if the window is at least a season long, {'seasonal_naive': [B, H]}."""
    series = batch['inputs'][..., 0]
    horizon = batch['target'].shape[-1]
    out = {'persistence': jnp.repeat(series[:, -1:], horizon, axis=-1)}
    if self.season and series.shape[1] >= self.season:
      # The value one season before target step h (h = 0, 1, ...) is input step T - season + h.
      steps = [series.shape[1] - self.season + h % self.season for h in range(horizon)]
      out['seasonal_naive'] = series[:, jnp.array(steps)]
    return out

  def metric_sums(self, outputs, batch, mask):
    """Squared and absolute errors (standardized) of the model and each baseline, and the count."""
    m = mask[:, None]
    sums = {'loss': jnp.sum(self.loss(outputs, batch) * mask), 'count': jnp.sum(mask)}
    for name, forecast in {'model': self.forecast(outputs, batch), **self.baselines(batch)}.items():
      error = forecast - batch['target']
      sums[f'{name}_sq'] = jnp.sum(error ** 2 * m)
      sums[f'{name}_abs'] = jnp.sum(jnp.abs(error) * m)
    return sums

  def metrics(self, sums):
    """MSE and MAE in the series' units, for the model and the baselines (per forecast value)."""
    values = sums['count'] * len(self.classes)
    out = {'mse': sums['model_sq'] / values * self.scale ** 2, 'mae': sums['model_abs'] / values * self.scale,
           'loss': sums['loss'] / sums['count']}
    for name in ('persistence', 'seasonal_naive'):
      if f'{name}_sq' in sums:
        out[f'{name}_mse'] = sums[f'{name}_sq'] / values * self.scale ** 2
        out[f'{name}_mae'] = sums[f'{name}_abs'] / values * self.scale
    return out

  def predict(self, outputs, batch):
    """The forecast in the series' units, with the truth and the persistence baseline in the same units."""
    unscale = lambda v: v * self.scale + self.offset
    return {'target': unscale(self.forecast(outputs, batch)), 'truth': unscale(batch['target']),
            'persistence': unscale(self.baselines(batch)['persistence'])}


def _token_scores(logits, targets, valid):
  """(per-example mean cross-entropy over valid steps, per-example wrong valid steps, valid steps)."""
  safe = jnp.where(valid, targets, 0)
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, safe)
  steps = jnp.sum(valid, axis=-1)
  wrong = jnp.sum((jnp.argmax(logits, -1) != safe) & valid, axis=-1)
  return jnp.sum(ce * valid, axis=-1) / jnp.maximum(steps, 1), wrong, steps


class Seq2Seq(Task):
  """Output token sequences: logits [B, T, V] (outputs['logits']) against 'targets' [B, T], padding
  (token 0) after each sequence's <eos> not scored. Exact match: every token through <eos> right. The
  model sees the targets for teacher forcing in training only (jaxnets.models.seq2seq)."""
  target = 'targets'
  headline = Headline('exact_match', higher_is_better=True)
  sequence_keys = ('inputs', 'length', 'targets')

  def __init__(self, classes: tuple):
    self.classes = classes

  def loss(self, outputs, batch):
    """Per-example mean token cross-entropy."""
    return _token_scores(outputs['logits'], batch['targets'], batch['targets'] != PAD_ID)[0]

  def metric_sums(self, outputs, batch, mask):
    """Sums of loss, exact matches, token errors, tokens and examples."""
    loss, wrong, steps = _token_scores(outputs['logits'], batch['targets'], batch['targets'] != PAD_ID)
    return {'loss': jnp.sum(loss * mask), 'exact': jnp.sum((wrong == 0) * mask),
            'token_errors': jnp.sum(wrong * mask), 'tokens': jnp.sum(steps * mask), 'count': jnp.sum(mask)}

  def metrics(self, sums):
    """Mean loss, exact-match rate and token error rate."""
    return {'exact_match': sums['exact'] / sums['count'], 'token_error': sums['token_errors'] / sums['tokens'],
            'loss': sums['loss'] / sums['count']}

  def predict(self, outputs, batch):
    """The decoded tokens and, with attention, its weights [T, S]."""
    out = {'targets': jnp.argmax(outputs['logits'], -1)}
    if 'attention' in outputs:
      out['attention'] = outputs['attention']
    return out


class SequenceLabeling(Task):
  """A class at every step: logits [B, T, K] against 'targets' [B, T]; steps labelled MASK_IGNORE (255) are
  not scored. The error rate is over scored steps."""
  target = 'targets'
  headline = Headline('error', higher_is_better=False)

  def __init__(self, classes: tuple):
    self.classes = classes

  def loss(self, outputs, batch):
    """Per-example mean cross-entropy over scored steps."""
    return _token_scores(outputs, batch['targets'], batch['targets'] != MASK_IGNORE)[0]

  def metric_sums(self, outputs, batch, mask):
    """Sums of loss, wrong steps, scored steps and examples."""
    loss, wrong, steps = _token_scores(outputs, batch['targets'], batch['targets'] != MASK_IGNORE)
    return {'loss': jnp.sum(loss * mask), 'errors': jnp.sum(wrong * mask), 'steps': jnp.sum(steps * mask),
            'count': jnp.sum(mask)}

  def metrics(self, sums):
    """Mean loss and per-step error rate."""
    return {'error': sums['errors'] / sums['steps'], 'loss': sums['loss'] / sums['count']}

  def predict(self, outputs, batch):
    """The most likely class at every step."""
    return {'targets': jnp.argmax(outputs, -1)}
