"""Tests of jaxnets.data: offline Fashion-MNIST, TFDS loading, fast offline failure, batching, augmentation."""

import dataclasses
import gzip
import os
import struct
import time

import unittest.mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxnets import data
from jaxnets.data import augment, batching, offline, source
from jaxnets.data.preprocess import Preprocess, input_shape
from jaxnets.registry import UnknownNameError

IDX_DIR = offline.FASHION_MNIST_IDX_DIR


def _parse_idx(path):
  """An independent reader of a gzipped IDX file (big-endian header: magic, then each dimension)."""
  with gzip.open(path, 'rb') as f:
    raw = f.read()
  _, _, dtype_code, ndim = struct.unpack('>BBBB', raw[:4])
  assert dtype_code == 0x08  # unsigned byte
  shape = struct.unpack('>' + 'I' * ndim, raw[4:4 + 4 * ndim])
  return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _sorted_rows(images, labels):
  """Each example's pixels and label as one byte string, sorted: equal iff the same examples."""
  rows = np.concatenate([images.reshape(len(images), -1), labels[:, None].astype(np.uint8)], axis=1)
  return np.sort(np.ascontiguousarray(rows).view(np.dtype((np.void, rows.shape[1]))).ravel())


@pytest.fixture(scope='module')
def fashion_mnist(tmp_path_factory):
  if not os.path.isdir(IDX_DIR):
    pytest.skip(f'Debian package dataset-fashion-mnist is not installed ({IDX_DIR})')
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  return data_dir, data.load('fashion_mnist', 'train', data_dir), data.load('fashion_mnist', 'test', data_dir)


def test_fashion_mnist_prepared_offline_equals_idx_files(fashion_mnist):
  data_dir, train, test = fashion_mnist
  for arrays, prefix, n in ((train, 'train', 60000), (test, 't10k', 10000)):
    assert arrays.images.shape == (n, 28, 28, 1) and arrays.images.dtype == np.uint8
    assert arrays.labels.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(arrays.labels), [n // 10] * 10)
    images = _parse_idx(f'{IDX_DIR}/{prefix}-images-idx3-ubyte.gz')
    labels = _parse_idx(f'{IDX_DIR}/{prefix}-labels-idx1-ubyte.gz')
    # TFDS stores examples in its own (deterministic) shuffled order: compare as multisets of rows.
    np.testing.assert_array_equal(_sorted_rows(arrays.images[..., 0], arrays.labels),
                                  _sorted_rows(images, labels))


def test_fashion_mnist_is_a_normal_tfds_dataset_prepared_once(fashion_mnist):
  data_dir, _, _ = fashion_mnist
  builder = tfds.builder('fashion_mnist', data_dir=data_dir)
  assert builder.is_prepared() and str(builder.version) == '3.0.1'
  assert builder.info.features['image'].shape == (28, 28, 1)
  assert builder.info.features['label'].num_classes == 10
  info_file = os.path.join(builder.data_dir, 'dataset_info.json')
  before = os.stat(info_file).st_mtime_ns
  assert len(data.load('fashion_mnist', 'test[:10]', data_dir).labels) == 10
  assert os.stat(info_file).st_mtime_ns == before


def test_load_under_mock_data(tmp_path):
  with tfds.testing.mock_data(num_examples=6):
    arrays = data.load('cifar10', 'train[:6]', str(tmp_path))
  assert arrays.images.shape == (6, 32, 32, 3) and arrays.images.dtype == np.uint8
  assert arrays.labels.shape == (6,) and arrays.labels.dtype == np.int32
  assert ((0 <= arrays.labels) & (arrays.labels < 10)).all()


def test_missing_dataset_fails_fast_offline(tmp_path, monkeypatch):
  monkeypatch.setattr(source, 'TFDS_HOST', 'http://127.0.0.1:9')  # Offline even where there is network.
  start = time.monotonic()
  with pytest.raises(data.DatasetUnavailableError) as error:
    data.load('cifar100', 'train', str(tmp_path))
  assert time.monotonic() - start < 15
  assert 'cifar100' in str(error.value) and str(tmp_path) in str(error.value)


def test_data_dir_resolution(monkeypatch):
  monkeypatch.setenv('TFDS_DATA_DIR', '/from/env')
  assert data.resolve_data_dir('/given') == '/given'
  assert data.resolve_data_dir() == '/from/env'
  monkeypatch.delenv('TFDS_DATA_DIR')
  assert data.resolve_data_dir() == os.path.expanduser('~/tensorflow_datasets')


def test_specs_and_unknown_name():
  assert data.names() == ['celeb_a', 'cifar10', 'cifar100', 'fashion_mnist', 'imagenet2012', 'mnist']
  assert data.spec('cifar100').num_classes == 100
  assert data.spec('mnist').image_shape == (28, 28, 1)
  for bad_call in (lambda: data.spec('imagenet'), lambda: data.load('imagenet', 'train')):
    valid = 'celeb_a, cifar10, cifar100, fashion_mnist, imagenet2012, mnist'
    with pytest.raises(UnknownNameError, match=f"'imagenet'.*{valid}"):
      bad_call()


def test_train_indices_are_deterministic_epochs():
  n, b = 103, 10  # 10 batches per epoch, 3 examples dropped each epoch
  def epoch(e):
    return [batching.train_indices(n, b, seed=7, step=s) for s in range(10 * e, 10 * e + 10)]
  np.testing.assert_array_equal(batching.train_indices(n, b, 7, 23), batching.train_indices(n, b, 7, 23))
  first = np.concatenate(epoch(0))
  assert len(np.unique(first)) == 100 and first.min() >= 0 and first.max() < n
  assert not np.array_equal(first, np.concatenate(epoch(1)))
  assert not np.array_equal(batching.train_indices(n, b, 8, 0), batching.train_indices(n, b, 7, 0))


def test_eval_batches_cover_once_with_mask():
  arrays = data.Arrays(images=np.arange(7 * 2).reshape(7, 1, 2, 1).astype(np.uint8),
                       labels=np.arange(7, dtype=np.int32))
  batches = list(batching.eval_batches(arrays, 3))
  assert [x.shape for x, _, _ in batches] == [(3, 1, 2, 1)] * 3
  labels = np.concatenate([y for _, y, _ in batches])
  mask = np.concatenate([m for _, _, m in batches])
  np.testing.assert_array_equal(mask, [1] * 7 + [0] * 2)
  np.testing.assert_array_equal(labels[mask == 1], arrays.labels)


def test_process_slice():
  assert batching.process_slice(8) == slice(0, 8)
  assert batching.process_slice(12, process_index=2, process_count=4) == slice(6, 9)
  with pytest.raises(ValueError, match='not divisible'):
    batching.process_slice(10, process_index=0, process_count=4)


@pytest.fixture
def images():
  return np.random.default_rng(0).integers(0, 256, (64, 8, 6, 3), dtype=np.uint8)


def test_random_flip_reverses_width_where_chosen(images):
  out = np.asarray(augment.random_flip(jax.random.key(0), images))
  flipped = (out == images[:, :, ::-1]).all(axis=(1, 2, 3))
  kept = (out == images).all(axis=(1, 2, 3))
  assert (flipped ^ kept).all() and 10 < flipped.sum() < 54


def test_random_crop_is_a_window_of_the_zero_padded_image(images):
  np.testing.assert_array_equal(augment.random_crop(jax.random.key(0), images, pad=0), images)
  pad = 2
  out = np.asarray(jax.jit(augment.random_crop, static_argnums=2)(jax.random.key(1), images, pad))
  padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  offsets = set()
  for image, crop in zip(padded, out):
    matches = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
               if np.array_equal(image[dy:dy + 8, dx:dx + 6], crop)]
    assert len(matches) == 1
    offsets.add(matches[0])
  assert len(offsets) > 10


def test_normalize_with_channel_stats(images):
  mean, std = augment.channel_stats(images, chunk=5)
  np.testing.assert_allclose(mean, images.mean(axis=(0, 1, 2)), rtol=1e-5)
  np.testing.assert_allclose(std, images.std(axis=(0, 1, 2)), rtol=1e-5)
  out = np.asarray(augment.normalize(images, mean, std))
  assert out.dtype == np.float32
  np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-4)
  np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1, atol=1e-4)


def test_random_rotate_by_a_quarter_turn_is_rot90():
  square = np.random.default_rng(1).normal(size=(3, 7, 7, 2)).astype(np.float32)
  np.testing.assert_allclose(augment.random_rotate(jax.random.key(0), square, 0.0), square, atol=1e-5)
  # The output at (r, c) samples the input rotated back: +90 degrees is numpy's rot90 with k=1 on (H, W).
  np.testing.assert_allclose(_rotate_exact(square, 90.0), np.rot90(square, k=1, axes=(1, 2)), atol=1e-4)


def _rotate_exact(images, degrees):
  """random_rotate with its angle pinned to `degrees` (uniform over [d, d])."""
  with unittest.mock.patch.object(jax.random, 'uniform', lambda key, shape, **_: jnp.full(shape, degrees)):
    return np.asarray(augment.random_rotate(jax.random.key(0), jnp.asarray(images), degrees))


def test_random_rotate_keeps_shape_and_varies_per_example(images):
  x = images.astype(np.float32)
  out = np.asarray(augment.random_rotate(jax.random.key(3), jnp.asarray(x), 30.0))
  assert out.shape == x.shape
  changed = [not np.allclose(o, i) for o, i in zip(out, x)]
  assert sum(changed) > 60  # Angle 0 has probability 0.


def test_random_brightness_shifts_each_example_by_one_bounded_offset(images):
  x = images.astype(np.float32)
  delta = np.array([10.0, 20.0, 30.0], np.float32)
  out = np.asarray(augment.random_brightness(jax.random.key(4), jnp.asarray(x), delta))
  shift = out - x
  u = shift[..., 0:1] / delta[0]
  np.testing.assert_allclose(shift, np.broadcast_to(u * delta, shift.shape), rtol=1e-4, atol=1e-3)
  assert np.all(np.abs(u) <= 1) and np.ptp(u[:, 0, 0, 0]) > 1.0  # Spread over [-1, 1].


def test_brightness_config_is_a_fraction_of_the_full_range(images):
  pre = Preprocess(np.zeros(3, np.float32), np.full(3, 51.0, np.float32), ('brightness',), brightness=0.2)
  out = np.asarray(pre.train(jax.random.key(5), images)) - np.asarray(pre.eval(images))
  # 0.2 of 255 is 51 pixel units, i.e. 1.0 in units of this std of 51.
  assert np.abs(out).max() <= 1.0 + 1e-5 and np.abs(out).max() > 0.8


def test_pad_to_centres_the_image_in_mean_valued_padding():
  images = np.full((2, 28, 28, 1), 200, np.uint8)
  pre = Preprocess(np.array([100.0], np.float32), np.array([50.0], np.float32), pad_to=32)
  out = np.asarray(pre.eval(images))
  assert out.shape == (2, 32, 32, 1)
  np.testing.assert_array_equal(out[:, 2:30, 2:30], 2.0)
  assert out[:, :2].sum() == out[:, 30:].sum() == out[:, :, :2].sum() == 0
  assert input_shape((28, 28, 1), 32) == (32, 32, 1) and input_shape((40, 40, 3), 32) == (40, 40, 3)
  with pytest.raises(ValueError, match='data.pad_to=-1'):
    input_shape((28, 28, 1), -1)


def test_celeba_reads_forty_binary_attributes_at_64x64(tmp_path):
  with tfds.testing.mock_data(num_examples=5):
    arrays = data.load('celeb_a', 'train', str(tmp_path))
  assert arrays.images.shape == (5, 64, 64, 3) and arrays.images.dtype == np.uint8
  assert arrays.labels.shape == (5, 40) and set(np.unique(arrays.labels)) <= {0, 1}
  assert data.spec('celeb_a').num_classes == 40


def test_eval_batches_pad_multilabel_targets():
  arrays = data.Arrays(images=np.zeros((5, 2, 2, 1), np.uint8), labels=np.ones((5, 40), np.int32))
  _, labels, mask = list(batching.eval_batches(arrays, 4))[1]
  assert labels.shape == (4, 40) and labels[1:].sum() == 0 and mask.tolist() == [1, 0, 0, 0]


def test_on_disk_split_is_memory_mapped_and_equals_the_in_memory_read(tmp_path):
  imagenet = data.spec('imagenet2012')
  assert imagenet.on_disk
  data.clear_cache()
  with tfds.testing.mock_data(num_examples=3):
    mapped = data.load('imagenet2012', 'validation', str(tmp_path))
    in_memory = source._read(dataclasses.replace(imagenet, on_disk=False), 'validation', str(tmp_path))
  assert isinstance(mapped.images, np.memmap) and not isinstance(in_memory.images, np.memmap)
  np.testing.assert_array_equal(mapped.images, in_memory.images)
  np.testing.assert_array_equal(mapped.labels, in_memory.labels)
  directory = source.disk_arrays_dir(str(tmp_path), 'imagenet2012', str(tfds.builder('imagenet2012').version),
                                     'validation')
  assert sorted(os.listdir(directory)) == ['images.npy', 'labels.npy']
  assert os.listdir(os.path.dirname(directory)) == [os.path.basename(directory)]  # No partial left.
  # Outside mock_data TFDS has nothing prepared here (and would fail offline): the .npy files serve.
  data.clear_cache()
  again = data.load('imagenet2012', 'validation', str(tmp_path))
  np.testing.assert_array_equal(again.images[[2, 0]], in_memory.images[[2, 0]])
  data.clear_cache()


def test_disk_arrays_dir_names_version_and_split_safely():
  path = source.disk_arrays_dir('/d', 'imagenet2012', '5.1.0', 'train[:90%]')
  assert path == '/d/jaxnets_arrays/imagenet2012-5.1.0-train__90__'


def test_channel_stats_are_computed_once_per_split_and_equal_the_formula(tmp_path):
  data.clear_cache()
  with tfds.testing.mock_data(num_examples=6), \
       unittest.mock.patch.object(augment, 'channel_stats', wraps=augment.channel_stats) as spy:
    mean, std = data.channel_stats('cifar10', 'train', str(tmp_path))
    again = data.channel_stats('cifar10', 'train', str(tmp_path))
    images = data.load('cifar10', 'train', str(tmp_path)).images.astype(np.float64)
  data.clear_cache()
  assert spy.call_count == 1 and again[0] is mean
  np.testing.assert_allclose(mean, images.mean(axis=(0, 1, 2)), rtol=1e-6)
  np.testing.assert_allclose(std, images.std(axis=(0, 1, 2)), rtol=1e-5)
