"""One-step-ahead forecasting of a real series: recurrent and 1D-convolutional forecasters against the
persistence and seasonal-naive baselines. Here: yearly sunspot numbers 1700-2008 (statsmodels); the
forecasters read 32 years and predict the next; the last 50 years are held out; the seasonal naive
baseline uses the ~11-year solar cycle. configs/co2.py runs the same study on weekly CO2.

Each forecaster reads the series' last window (standardized by the training stretch) and predicts the
next value by squared error. results.md gives MSE and MAE in the series' own units on the held-out
final stretch for every model and, on the same examples, for the baselines; forecast.png draws the
forecasts against the truth over that stretch.
"""

import ml_collections

from experiments.configs import default


def forecasting_config(dataset: str, steps: int, batch_size: int, features: int, dilations: tuple,
                       relative: bool = False):
  """The study on `dataset`: every variant three seeds, `steps` steps of Adam (cosine decay from 0.003);
  `relative`: windows relative to their last value (see jaxnets.tasks.sequences.Forecast)."""
  c = default.sequence_config(dataset, batch_size=batch_size, lr=0.003)
  c.task = ml_collections.ConfigDict({'name': 'forecast', 'relative': relative})
  c.model = ml_collections.ConfigDict({'name': 'rnn'})
  default.train_for(c, steps=steps, log_every=50, eval_every=steps // 4)
  rnn = f'model.name=rnn model.features={features}'
  variants = {
      'simple_rnn': f'{rnn} model.cell=simple',
      'lstm': f'{rnn} model.cell=lstm',
      'gru': f'{rnn} model.cell=gru',
      'wavenet': f'model.name=wavenet model.channels={features} model.dilations=({",".join(map(str, dilations))})',
      'cnn': f'model.name=cnn1d model.widths=({features},{features})',
  }
  c.experiment.variants = '; '.join(f'{name}: {fields}' for name, fields in variants.items())
  c.experiment.sweep = 'seed=0,1,2'
  c.experiment.columns = 'model.name'
  c.experiment.report = 'forecast'
  return c


def get_config(arg: str | None = None):
  default.no_variants(arg, 'sunspots')
  return forecasting_config('sunspots', steps=1000, batch_size=32, features=32, dilations=(1, 2, 4, 8, 16))
