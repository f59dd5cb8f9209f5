"""Sequence tasks against hand computations: forecast errors in series units and the baselines, seq2seq exact
match through <eos>, per-step labeling that skips unlabelled steps; seed means in the results table; the
sequence studies' configs."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.configs import clipping, co2, mnist1d, seq2seq, sunspots, tbptt
from jaxnets import experiment, tasks
from jaxnets.data.specs import MASK_IGNORE


def test_forecast_errors_in_series_units_and_baselines():
  task = tasks.create('forecast', ('t+1', 't+2'), target_scale=10.0, target_offset=5.0, season=2)
  inputs = np.array([[[0.0], [1.0], [2.0]], [[1.0], [0.5], [0.0]]], np.float32)  # Standardized series.
  batch = {'inputs': inputs, 'target': np.array([[2.5, 3.0], [0.0, -1.0]], np.float32)}
  outputs = np.array([[2.0, 3.0], [0.0, 0.0]], np.float32)
  mask = np.array([1.0, 1.0], np.float32)
  m = task.metrics(task.metric_sums(outputs, batch, mask))
  # Model errors (standardized): 0.5, 0, 0, 1 -> MSE 0.3125 * 100, MAE 0.375 * 10.
  np.testing.assert_allclose([m['mse'], m['mae']], [31.25, 3.75], rtol=1e-6)
  # Persistence: last inputs 2 and 0 -> errors 0.5, 1, 0, 1 -> MSE 2.25 / 4 * 100, MAE 2.5 / 4 * 10.
  np.testing.assert_allclose([m['persistence_mse'], m['persistence_mae']], [56.25, 6.25], rtol=1e-6)
  # Seasonal naive, season 2: target h comes from input step 3 - 2 + h -> (1, 2) and (0.5, 0).
  # errors 1.5, 1, 0.5, 1 -> MSE 4.5 / 4 * 100, MAE 4 / 4 * 10.
  np.testing.assert_allclose([m['seasonal_naive_mse'], m['seasonal_naive_mae']], [112.5, 10.0], rtol=1e-6)
  predicted = task.predict(outputs, batch)
  np.testing.assert_allclose(predicted['target'], outputs * 10 + 5)
  np.testing.assert_allclose(predicted['truth'], batch['target'] * 10 + 5)
  # A masked-out example changes nothing.
  padded = {k: np.concatenate([v, v[:1] + 7]) for k, v in batch.items()}
  m2 = task.metrics(task.metric_sums(np.concatenate([outputs, outputs[:1] - 3]), padded, np.array([1, 1, 0.0])))
  np.testing.assert_allclose(m2['mse'], m['mse'], rtol=1e-6)


def test_relative_forecast_reads_changes_and_adds_them_to_the_last_value():
  task = tasks.create('forecast', ('t+1',), target_scale=2.0, target_offset=1.0, relative=True)
  batch = {'inputs': np.array([[[3.0], [5.0]]], np.float32), 'target': np.array([[6.0]], np.float32)}
  np.testing.assert_array_equal(task.inputs(batch), [[[-2.0], [0.0]]])
  outputs = np.array([[0.5]], np.float32)  # A change of 0.5: forecast 5.5, error 0.5 standardized.
  np.testing.assert_allclose(task.loss(outputs, batch), [0.25])
  np.testing.assert_allclose(task.predict(outputs, batch)['target'], [[5.5 * 2 + 1]])
  np.testing.assert_allclose(task.metrics(task.metric_sums(outputs, batch, np.ones(1)))['mae'], 1.0)


def _one_hot_logits(tokens, classes=5):
  return jnp.asarray(np.eye(classes, dtype=np.float32)[tokens] * 10)


def test_seq2seq_exact_match_counts_tokens_through_eos_only():
  task = tasks.create('seq2seq', ('<pad>', '<eos>', 'a', 'b', 'c'))
  targets = np.array([[2, 3, 1, 0], [4, 1, 0, 0], [2, 2, 2, 1]])
  # Example 0 right through <eos> (junk after it), example 1 wrong at its <eos>, example 2 one token wrong.
  decoded = np.array([[2, 3, 1, 4], [4, 2, 0, 0], [2, 3, 2, 1]])
  sums = task.metric_sums({'logits': _one_hot_logits(decoded)}, {'targets': targets}, np.ones(3, np.float32))
  m = task.metrics(sums)
  np.testing.assert_allclose(m['exact_match'], 1 / 3)
  np.testing.assert_allclose(m['token_error'], 2 / 9)  # 3 + 2 + 4 scored tokens, 2 wrong.
  logits = jnp.asarray(np.random.default_rng(0).normal(size=(3, 4, 5)), jnp.float32)
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
  expected = [ce[0, :3].mean(), ce[1, :2].mean(), ce[2].mean()]
  np.testing.assert_allclose(task.loss({'logits': logits}, {'targets': targets}), expected, rtol=1e-6)


def test_sequence_labeling_skips_unlabelled_steps():
  task = tasks.create('sequence_labeling', ('0', '1', '2'))
  targets = np.array([[MASK_IGNORE, 1, 2, 0]])
  sums = task.metric_sums(_one_hot_logits(np.array([[0, 1, 0, 0]]), 3), {'targets': targets}, np.ones(1))
  np.testing.assert_allclose(task.metrics(sums)['error'], 1 / 3)
  logits = jnp.asarray(np.random.default_rng(1).normal(size=(1, 4, 3)), jnp.float32)
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, np.maximum(targets, 0) % 255)
  np.testing.assert_allclose(task.loss(logits, {'targets': targets}), [ce[0, 1:].mean()], rtol=1e-6)


def test_results_table_gives_mean_and_spread_over_seeds():
  rows = [{'name': f'gru-seed={s}', 'seed': s, 'test_error': e, 'test_examples': 10}
          for s, e in enumerate([0.1, 0.2, 0.3])]
  rows += [{'name': 'cnn-seed=0', 'seed': 0, 'test_error': 0.05}, {'name': 'cnn-seed=1', 'seed': 1,
                                                                   'status': 'diverged'}]
  text = experiment.markdown_table(rows)
  assert '| gru | 3 | 0.2 ± 0.1 |' in text  # mean 0.2, sample std sqrt(((-.1)^2 + 0 + .1^2) / 2) = 0.1
  assert '| cnn | 1 | 0.05 |' in text
  assert 'over seeds' not in experiment.markdown_table([{'name': 'a', 'test_error': 0.1}])


@pytest.mark.parametrize('module, runs', [(mnist1d, 21), (sunspots, 15), (co2, 15), (tbptt, 3), (clipping, 3)])
def test_sequence_studies_declare_their_runs(module, runs):
  assert len(experiment.check(module.get_config())[0]) == runs


def test_seq2seq_study_takes_a_task_and_names_the_valid_ones():
  for task in ('addition', 'reversal'):
    assert experiment.check(seq2seq.get_config(task))[0][0][1].data.name == task
  with pytest.raises(ValueError, match="unknown variant 'dates' of seq2seq; valid choices: addition, reversal"):
    seq2seq.get_config('dates')
