"""Weekly CO2 at Mauna Loa 1958-2001 (statsmodels; gaps filled linearly in the inputs, never scored):
forecasters read two years (104 weeks) and predict the next week; the last four years are held out. The
series rises beyond its training range there, so the models read each window relative to its last value
and predict the change (task.relative).
Baselines: persistence and seasonal naive (52 weeks). The study is configs/sunspots.py's."""

from experiments.configs import default
from experiments.configs.sunspots import forecasting_config


def get_config(arg: str | None = None):
  default.no_variants(arg, 'co2')
  return forecasting_config('co2', steps=1000, batch_size=64, features=32, dilations=(1, 2, 4, 8, 16, 32, 64),
                            relative=True)
