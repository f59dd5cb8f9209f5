"""Full against truncated back-propagation through time on a long series: the delayed echo (256 steps; the
target at step t is the input symbol of step t - 16), learned by a GRU tagger.

Full BPTT trains on whole sequences. Truncated BPTT cuts each batch of sequences into windows of 32 or
8 steps and trains on them in order, the recurrent state carried from one window to the next with no
gradient across the boundary. Every variant sees the same sequences the same number of times (steps x
window is constant). A window shorter than the delay gives no gradient linking a target to its source,
so that net cannot learn the task, however long it trains. Each window's loss is the mean over its scored
steps (the first 16 steps of a sequence have no target: of 8-step windows, the first two score nothing
and train nothing). results.md gives the per-step test error
(whole test sequences, from a zero state) and each run's training speed; curves.png the curves.
"""

import ml_collections

from experiments.configs import default

SEQUENCE_STEPS = 256
PASSES = 2000  # Training steps of full BPTT; a window of w takes 256 / w times as many.
WINDOWS = (0, 32, 8)  # 0: full BPTT


def echo_config(model: dict):
  """A recurrent tagger `model` learning the delayed echo (configs/clipping.py uses it too): batches of 32
  sequences, per-step error on the 200 test sequences; Adam at 0.003, clipped to norm 1."""
  c = default.sequence_config('echo', batch_size=32, lr=0.003, clip_norm=1.0)
  c.data.eval_batch_size = 200
  c.task = ml_collections.ConfigDict({'name': 'sequence_labeling'})
  c.model = ml_collections.ConfigDict({'name': 'rnn_tagger', **model})
  return c


def get_config(arg: str | None = None):
  default.no_variants(arg, 'tbptt')
  c = echo_config({'cell': 'gru', 'features': 64})
  default.train_for(c, steps=PASSES, log_every=50, eval_every=400)
  variants = []
  for window in WINDOWS:
    factor = SEQUENCE_STEPS // window if window else 1
    name = f'window{window}' if window else 'full'
    variants.append(f'{name}: data.window={window} train.steps={PASSES * factor} '
                    f'train.eval_every={400 * factor} train.checkpoint_every={400 * factor}')
  c.experiment.variants = '; '.join(variants)
  c.experiment.columns = 'data.window,train.steps'
  c.experiment.report = 'curves'
  return c
