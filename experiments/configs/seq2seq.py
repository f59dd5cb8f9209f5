"""Encoder-decoder RNNs without attention, with additive (Bahdanau) and with dot-product (Luong) attention,
on a procedurally generated seq2seq task with a held-out test set: `:addition` (the default; "381+14" ->
"395", as in Flax's seq2seq example) or `:reversal` (strings of 8-24 symbols reversed, where a fixed-size
summary of the source must hold the whole string and attention can look each symbol up instead).

Decoding at evaluation is greedy from the model's own outputs. results.md gives exact match (every token
through <eos> right) and token error rates; attention.png the attention weights on a test example.
"""

import ml_collections

from experiments.configs import default

TASKS = {'addition': 3000, 'reversal': 2000}  # dataset -> training steps


def get_config(arg: str | None = None):
  dataset = arg or 'addition'
  if dataset not in TASKS:
    raise ValueError(f'unknown variant {arg!r} of seq2seq; valid choices: {", ".join(TASKS)}')
  c = default.sequence_config(dataset, batch_size=128, lr=0.003, clip_norm=1.0)
  c.task = ml_collections.ConfigDict({'name': 'seq2seq'})
  c.model = ml_collections.ConfigDict({'name': 'seq2seq', 'features': 128, 'attention': 'none'})
  steps = TASKS[dataset]
  default.train_for(c, steps=steps, log_every=50, eval_every=steps // 4)
  c.experiment.sweep = 'model.attention=none,additive,dot'
  c.experiment.columns = 'model.attention'
  c.experiment.report = 'attention'
  return c
