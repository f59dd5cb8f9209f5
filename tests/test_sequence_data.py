"""Tests of the sequence datasets (jaxnets.data.sequences) against independent truth: the mnist1d package,
the raw statsmodels series, Python arithmetic and string reversal, the echo identity, TF's word hashing."""

import random
import unittest.mock

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from jaxnets import data
from jaxnets.data import sequences, source

# Hand-picked (time, raw value) pairs from the statsmodels tables: the first train target, the last train
# target, the first test target, one inside the test stretch, the last one.
RAW_POINTS = {
    'sunspots': [(1732.0, 11.0), (1958.0, 184.8), (1959.0, 159.0), (1989.0, 157.6), (2008.0, 2.9)],
    'co2': [(1960 + 85 / 366, 317.7), (1998 + 2 / 365, 365.2), (1998 + 9 / 365, 365.3), (2001 + 362 / 365, 371.5)],
}
BOUNDARY = {'sunspots': 1959.0, 'co2': 1998 + 9 / 365}  # The held-out stretch's first target time.


def _raw(name):
  """(times, values with NaN gaps) read straight from statsmodels, times as decimal years."""
  from statsmodels import datasets  # noqa: PLC0415
  if name == 'sunspots':
    frame = datasets.sunspots.load_pandas().data
    return frame['YEAR'].to_numpy(), frame['SUNACTIVITY'].to_numpy()
  series = datasets.co2.load_pandas().data['co2']
  times = [d.year + (d.dayofyear - 1) / (366 if d.is_leap_year else 365) for d in series.index]
  return np.array(times), series.to_numpy()


def _decode(ids, symbols, first_id):
  """The text of ids (symbols[k] = first_id + k) up to the first id below first_id (PAD or <eos>)."""
  text = ''
  for i in ids:
    if i < first_id:
      break
    text += symbols[i - first_id]
  return text


def test_select_split_reads_tfds_split_strings():
  splits = {'train': {'x': np.arange(10)}, 'test': {'x': np.arange(10, 14)}}
  read = unittest.mock.Mock(side_effect=splits.__getitem__)
  picked = source.select_split('train[:3]+test[50%:]', {'train': 10, 'test': 4}, read)
  np.testing.assert_array_equal(picked['x'], [0, 1, 2, 12, 13])
  with pytest.raises(ValueError, match="Unknown split 'validation'"):
    source.select_split('validation', {'train': 10, 'test': 4}, read)


def test_specs_follow_the_sequence_conventions():
  expected = {
      'mnist1d': ({'inputs': ((40, 1), np.float32), 'label': ((), np.int32)}, {'label': tuple('0123456789')}, {}),
      'addition': ({'inputs': ((7,), np.int32), 'length': ((), np.int32), 'targets': ((5,), np.int32)},
                   {'targets': ('<pad>', '<eos>', *'0123456789')},
                   {'vocab_size': 12, 'source_tokens': ('<pad>', *'0123456789+')}),
      'reversal': ({'inputs': ((24,), np.int32), 'length': ((), np.int32), 'targets': ((25,), np.int32)},
                   {'targets': ('<pad>', '<eos>', *'abcdefghij')},
                   {'vocab_size': 11, 'source_tokens': ('<pad>', *'abcdefghij')}),
      'echo': ({'inputs': ((256,), np.int32), 'targets': ((256,), np.int32)}, {'targets': tuple('01234567')},
               {'vocab_size': 9, 'delay': 16}),
      'imdb': ({'inputs': ((256,), np.int32), 'length': ((), np.int32), 'label': ((), np.int32)},
               {'label': ('neg', 'pos')}, {'vocab_size': 2 ** 15}),
  }
  for name, (features, classes, meta) in expected.items():
    spec = data.spec(name)
    assert (spec.features, spec.classes, spec.meta) == (features, classes, meta), name
    assert (spec.train_split, spec.test_split) == ('train', 'test')
  for name, length, season in (('sunspots', 32, 11), ('co2', 104, 52)):
    spec = data.spec(name)
    assert spec.features == {'inputs': ((length, 1), np.float32), 'target': ((1,), np.float32),
                             'time': ((), np.float32)}
    assert spec.classes == {'target': ('t+1',)} and spec.meta['season'] == season
  assert data.spec('mnist').meta == {}  # The default for datasets without facts to add.


def test_mnist1d_is_make_dataset_with_its_default_arguments():
  from mnist1d import data as mnist1d_data  # noqa: PLC0415
  made = mnist1d_data.make_dataset(mnist1d_data.get_dataset_args())
  train, test = data.load('mnist1d', 'train'), data.load('mnist1d', 'test')
  assert train['inputs'].shape == (4000, 40, 1) and test['inputs'].shape == (1000, 40, 1)
  assert train['inputs'].dtype == np.float32 and train['label'].dtype == np.int32
  np.testing.assert_array_equal(train['inputs'][..., 0], made['x'].astype(np.float32))
  np.testing.assert_array_equal(test['inputs'][..., 0], made['x_test'].astype(np.float32))
  np.testing.assert_array_equal(train['label'], made['y'])
  np.testing.assert_array_equal(test['label'], made['y_test'])
  counts = np.bincount(train['label'], minlength=10)
  assert counts.sum() == 4000 and counts.min() > 340 and counts.max() < 460, counts  # 500 each before the split.
  part = data.load('mnist1d', 'train[:1000]')
  np.testing.assert_array_equal(part['inputs'], train['inputs'][:1000])
  both = data.load('mnist1d', 'train[-10:]+test[50%:]')
  np.testing.assert_array_equal(both['label'], np.concatenate([train['label'][-10:], test['label'][500:]]))


def test_mnist1d_is_generated_once_per_process_and_keeps_the_global_generators():
  from mnist1d import data as mnist1d_data  # noqa: PLC0415
  sequences.mnist1d_splits.cache_clear()
  data.clear_cache()
  np.random.seed(5)
  random.seed(5)
  expected = np.random.random(), random.random()
  np.random.seed(5)
  random.seed(5)
  with unittest.mock.patch.object(mnist1d_data, 'make_dataset', wraps=mnist1d_data.make_dataset) as spy:
    data.load('mnist1d', 'train[:10]')
    data.load('mnist1d', 'test[:10]')
  assert spy.call_count == 1
  assert (np.random.random(), random.random()) == expected


@pytest.mark.parametrize('name', ['sunspots', 'co2'])
def test_stored_targets_are_the_raw_values_standardized_by_the_training_stretch(name):
  spec = data.spec(name)
  offset, scale = spec.meta['target_offset'], spec.meta['target_scale']
  times, values = _raw(name)
  before = values[times < BOUNDARY[name] - 1e-6]
  np.testing.assert_allclose((offset, scale), (np.nanmean(before), np.nanstd(before)), rtol=1e-12)
  splits = [data.load(name, 'train'), data.load(name, 'test')]
  for time, value in RAW_POINTS[name]:
    hits = [(s['target'][i, 0], s['time'][i]) for s in splits for i in np.flatnonzero(np.abs(s['time'] - time) < 1e-3)]
    assert len(hits) == 1, (time, hits)
    target, stored_time = hits[0]
    np.testing.assert_allclose(target * scale + offset, value, atol=1e-3)
    np.testing.assert_allclose(stored_time, time, atol=1e-4)
  for split in splits:  # Every target, by its time.
    index = np.abs(times[None, :] - split['time'][:, None]).argmin(1)
    np.testing.assert_allclose(split['target'][:, 0] * scale + offset, values[index], rtol=1e-5)


@pytest.mark.parametrize('name, length, test_count', [('sunspots', 32, 50), ('co2', 104, 208)])
def test_held_out_stretch_gaps_and_windows(name, length, test_count):
  spec = data.spec(name)
  offset, scale = spec.meta['target_offset'], spec.meta['target_scale']
  times, values = _raw(name)
  train, test = data.load(name, 'train'), data.load(name, 'test')
  assert (test['time'] >= BOUNDARY[name] - 1e-3).all() and (train['time'] < BOUNDARY[name] - 1e-3).all()
  assert len(test['time']) == test_count  # Neither held-out stretch has gaps.
  for split in (train, test):
    assert (np.diff(split['time']) > 0).all()  # In time order.
  # The raw index of each target: every observed value with `length` values before it, and no gap.
  steps = np.abs(times[None, :] - np.concatenate([train['time'], test['time']])[:, None]).argmin(1)
  np.testing.assert_array_equal(steps, np.flatnonzero(~np.isnan(values[length:])) + length)
  count = len(train['time'])
  for split, targets in ((train, steps[:count]), (test, steps[count:])):
    # The window of the target at raw index j holds the values j - length .. j - 1.
    windows = np.stack([values[j - length:j] for j in targets])
    observed = ~np.isnan(windows)
    np.testing.assert_allclose(split['inputs'][..., 0][observed] * scale + offset, windows[observed], atol=1e-3)
    # Consecutive steps: the window shifts by one and takes in the previous target.
    shift = np.flatnonzero(np.diff(targets) == 1)
    assert len(shift) > 0.8 * len(targets)
    np.testing.assert_array_equal(split['inputs'][shift + 1, :-1], split['inputs'][shift, 1:])
    np.testing.assert_array_equal(split['inputs'][shift + 1, -1], split['target'][shift])


def test_co2_gaps_are_filled_linearly_in_inputs_and_never_targets():
  times, values = _raw('co2')
  gaps = np.flatnonzero(np.isnan(values))
  assert len(gaps) == 59 and list(gaps[19:22]) == [230, 231, 232]  # 1962-08-25 .. 1962-09-08
  train = data.load('co2', 'train')
  assert len(train['time']) == 2284 - 104 - 208 - np.sum(gaps >= 104)
  assert np.abs(train['time'][:, None] - times[gaps][None, :]).min() > 0.015  # A week is 0.019 years.
  # The target of 1962-09-15 (raw 316.6) follows the gap, bridged from 317.4 (1962-08-18) in four equal steps.
  k = np.flatnonzero(np.abs(train['time'] - times[233]) < 1e-3)[0]
  spec = data.spec('co2')
  last = train['inputs'][k, -4:, 0] * spec.meta['target_scale'] + spec.meta['target_offset']
  np.testing.assert_allclose(last, [317.4, 317.2, 317.0, 316.8], atol=1e-3)


def test_a_series_that_changed_names_the_statistics_to_record(monkeypatch):
  monkeypatch.setitem(sequences.SERIES, 'sunspots', sequences.SERIES['sunspots']._replace(offset=46.0))
  with pytest.raises(ValueError, match=r"^series 'sunspots': its training stretch has mean 46.258\d* and std "
                     r"37.756\d*, but SERIES records offset 46.0 and scale 37.756\d*; record the new values$"):
    sequences.forecast_splits.__wrapped__('sunspots')


def _sources(split, symbols):
  """The source texts of a seq2seq split."""
  return [_decode(row, symbols, 1) for row in split['inputs']]


def _check_seq2seq(name, source_symbols, target_symbols, solve):
  """Every example's source decodes to its length, the target to solve(source) then <eos> then <pad>;
  test sources are distinct and none is in train. Returns the splits' sources."""
  spec = data.spec(name)
  assert spec.classes['targets'][2:] == tuple(target_symbols)
  sources = {}
  for split_name, count in (('train', 50000), ('test', 1000)):
    split = data.load(name, split_name)
    texts = _sources(split, source_symbols)
    assert len(texts) == count and (split['inputs'] < spec.meta['vocab_size']).all()
    np.testing.assert_array_equal(split['length'], [len(t) for t in texts])
    positions = np.arange(split['inputs'].shape[1])
    assert (split['inputs'][positions >= split['length'][:, None]] == 0).all()
    assert (split['inputs'][positions < split['length'][:, None]] > 0).all()
    for text, target in zip(texts, split['targets']):
      answer = solve(text)
      assert _decode(target, target_symbols, 2) == answer
      assert target[len(answer)] == 1 and (target[len(answer) + 1:] == 0).all()
    sources[split_name] = texts
  assert len(set(sources['test'])) == 1000 and not set(sources['test']) & set(sources['train'])
  return sources


def test_addition_is_arithmetic_on_unseen_test_problems():
  sources = _check_seq2seq('addition', '0123456789+', '0123456789', lambda t: str(sum(map(int, t.split('+')))))
  operands = np.array([[int(x) for x in t.split('+')] for t in sources['train']])
  assert operands.min() == 0 and operands.max() == 999 and abs(operands.mean() - 499.5) < 5
  assert all(x == str(int(x)) for t in sources['train'] for x in t.split('+'))  # No leading zeros.


def test_reversal_reverses_unseen_test_strings():
  sources = _check_seq2seq('reversal', 'abcdefghij', 'abcdefghij', lambda t: t[::-1])
  lengths = np.bincount([len(t) for t in sources['train']])
  assert np.flatnonzero(lengths).tolist() == list(range(8, 25)) and lengths[8:].min() > 2500  # 50000 / 17 each.


def test_echo_targets_are_the_inputs_delayed():
  spec = data.spec('echo')
  delay = spec.meta['delay']
  train, test = data.load('echo', 'train'), data.load('echo', 'test')
  assert len(train['inputs']) == 2000 and len(test['inputs']) == 200
  for split in (train, test):
    assert split['inputs'].min() == 1 and split['inputs'].max() == 8
    assert (split['targets'][:, :delay] == data.MASK_IGNORE).all()
    np.testing.assert_array_equal(split['targets'][:, delay:], split['inputs'][:, :-delay] - 1)
  assert not np.array_equal(train['inputs'][:200], test['inputs'])
  np.testing.assert_array_equal(sequences.echo_splits.__wrapped__()['test']['inputs'], test['inputs'])


def _hash_ids(words):
  """The ids the spec promises for `words`: 1 + TF's fast hash into 2**15 - 1 buckets."""
  return (1 + tf.strings.to_hash_bucket_fast(words, 2 ** 15 - 1)).numpy().tolist()


def test_imdb_tokenizer_on_known_text():
  example = sequences.imdb_example({'text': tf.constant('A movie<br />that rocks!'), 'label': tf.constant(1, tf.int64)})
  assert int(example['length']) == 4 and int(example['label']) == 1
  assert example['inputs'].shape == (256,) and example['inputs'].dtype == tf.int32
  assert example['inputs'].numpy()[:4].tolist() == _hash_ids(['a', 'movie', 'that', 'rocks'])
  assert not example['inputs'].numpy()[4:].any()
  words = ' '.join(f'Word{i}' for i in range(300))
  example = sequences.imdb_example({'text': tf.constant(f"Don't, (said) Café.<br /><br />{words}"),
                                    'label': tf.constant(0, tf.int64)})
  expected = _hash_ids(['dont', 'said', 'café'] + [f'word{i}' for i in range(253)])
  assert int(example['length']) == 256 and example['inputs'].numpy().tolist() == expected


def test_imdb_under_mock_data(tmp_path):
  data.clear_cache()
  with tfds.testing.mock_data(num_examples=6):
    split = data.load('imdb', 'test', str(tmp_path))
  data.clear_cache()
  assert split['inputs'].shape == (6, 256) and split['inputs'].dtype == np.int32
  assert split['length'].dtype == np.int32 and split['label'].dtype == np.int32
  assert (split['length'] > 0).all() and set(split['label']) <= {0, 1}
  positions = np.arange(256)
  assert (split['inputs'][positions >= split['length'][:, None]] == 0).all()
  kept = split['inputs'][positions < split['length'][:, None]]
  assert (kept >= 1).all() and (kept < data.spec('imdb').meta['vocab_size']).all()
