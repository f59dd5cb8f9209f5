"""Sequence models and tasks through the one training loop: a real train step, an eval, a checkpoint and the
report files for each new model and task, on the offline sequence datasets; truncated BPTT resumes exactly.
"""

import json
import os

import jax
import ml_collections
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from experiments.configs import default
from jaxnets import experiment
from jaxnets.train import builder, sharding
from jaxnets.train.loop import train_and_evaluate
from tests.tiny import mock_data


def _config(dataset: str, task: str, model: dict, steps: int = 2, **data_fields) -> ml_collections.ConfigDict:
  """A few steps of `model` on a small part of `dataset`, evaluated and checkpointed every 2 steps."""
  c = default.get_config()
  c.data.update({'name': dataset, 'augment': '', 'batch_size': 8, 'eval_batch_size': 16,
                 'train_split': 'train[:64]', 'test_split': 'test[:16]', 'train_eval_examples': 16,
                 'test_curve_examples': 16, **data_fields})
  c.task = ml_collections.ConfigDict({'name': task})
  c.model = ml_collections.ConfigDict(model)
  c.optimizer.name = 'adam'
  c.optimizer.lr = 1e-3
  c.optimizer.schedule.name = 'constant'
  c.train.update({'steps': steps, 'log_every': 1, 'eval_every': 2, 'checkpoint_every': 2})
  return c


SMALL_RNN = {'features': 8, 'embed_dim': 4}
CASES = {
    'mnist1d-lstm-bidirectional': ('mnist1d', 'classification',
                                   {'name': 'rnn', 'cell': 'lstm', 'layers': 2, 'bidirectional': True,
                                    'dropout': 0.1, **SMALL_RNN}),
    'mnist1d-simple': ('mnist1d', 'classification', {'name': 'rnn', 'cell': 'simple', 'features': 8}),
    'mnist1d-cnn1d': ('mnist1d', 'classification', {'name': 'cnn1d', 'widths': (4, 4)}),
    'mnist1d-conv_rnn': ('mnist1d', 'classification', {'name': 'conv_rnn', 'widths': (4,), 'features': 8}),
    'sunspots-gru': ('sunspots', 'forecast', {'name': 'rnn', 'cell': 'gru', 'features': 8}),
    'co2-wavenet': ('co2', 'forecast', {'name': 'wavenet', 'channels': 4, 'dilations': (1, 2)}),
    'addition-seq2seq': ('addition', 'seq2seq', {'name': 'seq2seq', 'attention': 'additive', 'features': 8,
                                                  'embed_dim': 4}),
    'reversal-seq2seq': ('reversal', 'seq2seq', {'name': 'seq2seq', 'attention': 'dot', 'features': 8,
                                                  'embed_dim': 4}),
    'echo-tagger': ('echo', 'sequence_labeling', {'name': 'rnn_tagger', 'cell': 'gru', **SMALL_RNN}),
    'echo-wavenet': ('echo', 'sequence_labeling', {'name': 'wavenet', 'channels': 4, 'dilations': (1, 2),
                                                   'per_step': True}),
}


@pytest.mark.parametrize('case', list(CASES))
def test_trains_evaluates_and_checkpoints(case, tmp_path):
  dataset, task, model = CASES[case]
  summary = train_and_evaluate(_config(dataset, task, model), str(tmp_path))
  headline = builder.build(_config(dataset, task, model)).task.headline.name
  assert summary['steps'] == 2 and np.isfinite(summary[f'test_{headline}'])
  assert os.listdir(tmp_path / 'checkpoints') == ['2']
  with np.load(tmp_path / 'predictions.npz') as saved:
    assert any(k.startswith('predicted_') for k in saved)


def test_imdb_through_tfds_mock_data(tmp_path):
  """The TFDS text set (mock data here: this machine cannot download it) with padded lengths."""
  with mock_data():
    summary = train_and_evaluate(
        _config('imdb', 'classification', {'name': 'rnn', 'cell': 'gru', **SMALL_RNN},
                train_split='train', test_split='test'), str(tmp_path))
  assert summary['steps'] == 2 and 0 <= summary['test_error'] <= 1


def test_forecast_metrics_are_in_series_units_beside_the_baselines(tmp_path):
  """Persistence's test MSE equals the one computed by hand from the raw statsmodels-derived split."""
  from jaxnets import data  # noqa: PLC0415
  summary = train_and_evaluate(_config('sunspots', 'forecast', {'name': 'rnn', 'features': 8},
                                       test_split='test'), str(tmp_path))
  split, meta = data.load('sunspots', 'test'), data.spec('sunspots').meta
  truth = split['target'][:, 0] * meta['target_scale'] + meta['target_offset']
  last = split['inputs'][:, -1, 0] * meta['target_scale'] + meta['target_offset']
  np.testing.assert_allclose(summary['test_persistence_mse'], np.mean((truth - last) ** 2), rtol=1e-4)
  season = split['inputs'][:, -meta['season'], 0] * meta['target_scale'] + meta['target_offset']
  np.testing.assert_allclose(summary['test_seasonal_naive_mae'], np.mean(np.abs(truth - season)), rtol=1e-4)
  with np.load(tmp_path / 'predictions.npz') as saved:
    assert len(saved['time']) == len(truth)  # The whole held-out stretch, for the forecast plot.
    np.testing.assert_allclose(saved['predicted_truth'][:, 0], truth, rtol=1e-5)


def _tbptt_config(steps: int):
  return _config('echo', 'sequence_labeling', {'name': 'rnn_tagger', 'cell': 'lstm', **SMALL_RNN}, steps=steps,
                 window=64)


def test_truncated_bptt_resumes_exactly(tmp_path):
  """Stopped after the second of four windows of a batch and resumed (the carried state restored from the
  checkpoint), a run ends where an uninterrupted one does, to the bit."""
  whole = train_and_evaluate(_tbptt_config(6), str(tmp_path / 'whole'))
  assert train_and_evaluate(_tbptt_config(6), str(tmp_path / 'resumed'), stop_after=2) is None
  resumed = train_and_evaluate(_tbptt_config(6), str(tmp_path / 'resumed'))
  assert resumed['test_error'] == whole['test_error'] and resumed['test_loss'] == whole['test_loss']
  lines = [json.loads(l) for l in open(tmp_path / 'whole' / 'metrics.jsonl')]
  again = [json.loads(l) for l in open(tmp_path / 'resumed' / 'metrics.jsonl')]
  losses = lambda records: [r['train/loss'] for r in records if 'train/loss' in r]
  assert losses(again) == losses(lines)


def test_carried_state_is_sharded_by_batch():
  setup = builder.build(_tbptt_config(2))
  mesh = sharding.data_mesh()
  layout = setup.state_sharding(mesh)
  carry = jax.tree.leaves(layout.model_state['carry'])
  assert carry and all(s.spec == P(sharding.DATA_AXIS) for s in carry)
  assert all(s.spec == P() for s in jax.tree.leaves(layout.params))
  state = setup.init_state(mesh)
  assert all(x.shape[0] == 8 for x in jax.tree.leaves(state.model_state['carry']))  # One row per example.


def test_bad_window_names_the_valid_ones():
  with pytest.raises(experiment.ConfigError, match=r'data.window=48 does not divide the 256 steps of '
                                                   r"'echo'; valid choices: 1, 2, 4, 8, 16, 32, 64, 128, 256"):
    experiment.check(_config('echo', 'sequence_labeling', {'name': 'rnn_tagger'}, window=48))
  with pytest.raises(experiment.ConfigError, match='truncated BPTT needs a dataset of unpadded sequences'):
    experiment.check(_config('addition', 'seq2seq', {'name': 'seq2seq'}, window=1))
  with pytest.raises(experiment.ConfigError, match=r"truncated BPTT needs a target at every step; 'mnist1d'"):
    experiment.check(_config('mnist1d', 'classification', {'name': 'rnn'}, window=8))
  with pytest.raises(experiment.ConfigError, match=r"model 'wavenet' carries no state from one window"):
    experiment.check(_config('echo', 'sequence_labeling', {'name': 'wavenet', 'per_step': True}, window=8))
  with pytest.raises(experiment.ConfigError, match=r'model.vocab_size comes from the dataset \(9\)'):
    experiment.check(_config('echo', 'sequence_labeling', {'name': 'rnn_tagger', 'vocab_size': 5}))
