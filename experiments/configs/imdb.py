"""Sentiment of IMDB reviews (TFDS imdb_reviews, network needed once): a bidirectional GRU over the embedded
words against a 1D CNN whose features are averaged over the review's words, both reading the first 256
words (hashed to 32,768 ids; see jaxnets.data.sequences). Tested on TFDS mock data only.
"""

import ml_collections

from experiments.configs import default

VARIANTS = {
    'bigru': 'model.name=rnn model.cell=gru model.features=64 model.bidirectional=True',
    'cnn': 'model.name=cnn1d model.widths=(64,64) model.stride=1 model.kernel=5 model.pool=mean',
}


def get_config(arg: str | None = None):
  default.no_variants(arg, 'imdb')
  c = default.sequence_config('imdb', batch_size=64, lr=0.001, clip_norm=1.0)
  c.data.eval_batch_size = 500
  c.model = ml_collections.ConfigDict({'name': 'rnn'})
  default.train_for(c, steps=2000, log_every=50, eval_every=500)
  c.experiment.variants = '; '.join(f'{name}: {fields}' for name, fields in VARIANTS.items())
  c.experiment.columns = 'model.name'
  c.experiment.report = 'curves'
  return c
