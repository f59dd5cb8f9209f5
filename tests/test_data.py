"""Tests of jaxnets.data: offline Fashion-MNIST, TFDS loading, fast offline failure, batching, augmentation."""

import dataclasses
import functools
import gzip
import os
import re
import shutil
import struct
import subprocess
import sys
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
  for split, prefix, n in ((train, 'train', 60000), (test, 't10k', 10000)):
    assert split['image'].shape == (n, 28, 28, 1) and split['image'].dtype == np.uint8
    assert split['label'].dtype == np.int32
    np.testing.assert_array_equal(np.bincount(split['label']), [n // 10] * 10)
    images = _parse_idx(f'{IDX_DIR}/{prefix}-images-idx3-ubyte.gz')
    labels = _parse_idx(f'{IDX_DIR}/{prefix}-labels-idx1-ubyte.gz')
    # TFDS stores examples in its own (deterministic) shuffled order: compare as multisets of rows.
    np.testing.assert_array_equal(_sorted_rows(split['image'][..., 0], split['label']),
                                  _sorted_rows(images, labels))


def test_fashion_mnist_is_a_normal_tfds_dataset_prepared_once(fashion_mnist):
  data_dir, _, _ = fashion_mnist
  builder = tfds.builder('fashion_mnist', data_dir=data_dir)
  assert builder.is_prepared() and str(builder.version) == '3.0.1'
  assert builder.info.features['image'].shape == (28, 28, 1)
  assert builder.info.features['label'].num_classes == 10
  info_file = os.path.join(builder.data_dir, 'dataset_info.json')
  before = os.stat(info_file).st_mtime_ns
  assert len(data.load('fashion_mnist', 'test[:10]', data_dir)['label']) == 10
  assert os.stat(info_file).st_mtime_ns == before


def test_decoded_splits_stand_in_for_tfds_until_the_prepared_files_change(fashion_mnist, monkeypatch):
  data_dir, train, _ = fashion_mnist  # Read through TFDS, which wrote each named split's decoded arrays.
  builder = tfds.builder('fashion_mnist', data_dir=data_dir)
  by_tfds = tfds.as_numpy(builder.as_dataset(split='train[10%:20%]', as_supervised=True).batch(10 ** 5))
  by_tfds_image, by_tfds_label = next(iter(by_tfds))
  decoded = source.disk_arrays_dir(data_dir, 'fashion_mnist', '3.0.1', 'train')
  assert sorted(os.listdir(decoded)) == ['image.npy', 'label.npy', source.DECODED_STAMP]
  decode = unittest.mock.Mock(wraps=source._decode)
  monkeypatch.setattr(source, '_decode', decode)
  data.clear_cache()
  sliced = data.load('fashion_mnist', 'train[10%:20%]', data_dir)
  assert decode.call_count == 0  # Neither TensorFlow nor TFDS's reader ran.
  np.testing.assert_array_equal(sliced['image'], by_tfds_image)  # TFDS's examples, in TFDS's order.
  np.testing.assert_array_equal(sliced['label'], by_tfds_label)
  assert sliced['label'].dtype == np.int32 and not sliced['image'].flags.writeable
  assert len(data.load('fashion_mnist', 'train+test', data_dir)['label']) == 70000
  assert decode.call_count == 1  # TFDS interleaves the splits of 'a+b': read through TFDS.
  with tfds.testing.mock_data(num_examples=5):  # Mocked reads neither use nor replace the decoded arrays.
    data.clear_cache()
    assert len(data.load('fashion_mnist', 'train', data_dir)['label']) == 5
  assert decode.call_count == 2
  data.clear_cache()
  np.testing.assert_array_equal(data.load('fashion_mnist', 'train', data_dir)['image'], train['image'])
  assert decode.call_count == 2
  record = os.path.join(builder.data_dir, 'fashion_mnist-train.tfrecord-00000-of-00001')
  os.utime(record, ns=(time.time_ns(), time.time_ns()))  # As if prepared again: decode again.
  with unittest.mock.patch.object(source, '_partial_dir', side_effect=OSError('read-only')):
    data.clear_cache()  # A data_dir that cannot be written still reads.
    np.testing.assert_array_equal(data.load('fashion_mnist', 'train', data_dir)['image'], train['image'])
  assert decode.call_count == 3
  data.clear_cache()
  np.testing.assert_array_equal(data.load('fashion_mnist', 'train', data_dir)['image'], train['image'])
  assert decode.call_count == 4
  data.clear_cache()
  data.load('fashion_mnist', 'train', data_dir)
  assert decode.call_count == 4 and not [n for n in os.listdir(os.path.dirname(decoded)) if 'partial' in n]


def test_decoded_splits_are_read_without_tensorflow_and_tfds_reads_hide_the_gpus(fashion_mnist, monkeypatch):
  data_dir, _, _ = fashion_mnist
  data.clear_cache()
  for split in ('train', 'test'):  # Each named split decoded (again, if an earlier test touched the files).
    data.load('fashion_mnist', split, data_dir)
  code = ('import sys; from jaxnets import data; data.load("fashion_mnist", "train", sys.argv[1]); '
          'data.load("fashion_mnist", "test[:50%]", sys.argv[1]); print("tensorflow" in sys.modules)')
  done = subprocess.run([sys.executable, '-c', code, data_dir], capture_output=True, text=True, check=True)
  assert done.stdout.split() == ['False']
  import tensorflow as tf  # noqa: PLC0415
  hide = unittest.mock.Mock()
  monkeypatch.setattr(tf.config, 'set_visible_devices', hide)
  source.host_tensorflow.cache_clear()
  data.clear_cache()
  assert len(data.load('fashion_mnist', 'train+test', data_dir)['label']) == 70000  # Through TFDS.
  hide.assert_called_once_with([], 'GPU')
  source.host_tensorflow.cache_clear()


def _idx_copy_with_truncated(tmp_path, name):
  """Debian's four IDX .gz files copied to tmp_path/idx, the file `name` cut to half its bytes."""
  if not os.path.isdir(IDX_DIR):
    pytest.skip(f'Debian package dataset-fashion-mnist is not installed ({IDX_DIR})')
  idx_dir = shutil.copytree(IDX_DIR, tmp_path / 'idx')
  bad = idx_dir / name
  bad.write_bytes(bad.read_bytes()[:bad.stat().st_size // 2])
  return str(idx_dir), str(bad)


def test_a_truncated_idx_file_is_one_line_naming_it_and_the_repair(tmp_path, monkeypatch):
  # The last file read: the three before it decompress, then the error; nothing is left in data_dir.
  idx_dir, bad = _idx_copy_with_truncated(tmp_path, 't10k-labels-idx1-ubyte.gz')
  data_dir = tmp_path / 'data'
  with pytest.raises(offline.DamagedFileError) as error:
    offline.prepare_fashion_mnist(str(data_dir), idx_dir)
  message = str(error.value)
  assert message.startswith(f'{bad} is damaged (') and '\n' not in message
  assert 'delete or replace this copy' in message and IDX_DIR in message
  assert os.listdir(data_dir) == []
  # The same file where Debian's package puts it: the repair is reinstalling the package.
  monkeypatch.setattr(offline, 'FASHION_MNIST_IDX_DIR', idx_dir)
  with pytest.raises(offline.DamagedFileError, match=f'^{re.escape(bad)} is damaged .*; reinstall Debian.s '
                     'package: apt-get install --reinstall dataset-fashion-mnist$'):
    offline.prepare_fashion_mnist(str(data_dir), idx_dir)


def test_loading_from_a_truncated_idx_file_names_it(tmp_path, monkeypatch):
  idx_dir, bad = _idx_copy_with_truncated(tmp_path, 'train-images-idx3-ubyte.gz')
  monkeypatch.setitem(offline.LOCAL_SOURCES, 'fashion_mnist',
                      functools.partial(offline.prepare_fashion_mnist, idx_dir=idx_dir))
  with pytest.raises(offline.DamagedFileError, match=f'^{re.escape(bad)} is damaged'):
    data.load('fashion_mnist', 'train', str(tmp_path / 'data'))


def test_load_under_mock_data(tmp_path):
  with tfds.testing.mock_data(num_examples=6):
    split = data.load('cifar10', 'train[:6]', str(tmp_path))
  assert split['image'].shape == (6, 32, 32, 3) and split['image'].dtype == np.uint8
  assert split['label'].shape == (6,) and split['label'].dtype == np.int32
  assert ((0 <= split['label']) & (split['label'] < 10)).all()


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
  names = ['addition', 'celeb_a', 'cifar10', 'cifar100', 'co2', 'echo', 'fashion_mnist', 'fashion_scene_items',
           'fashion_scenes', 'imagenet2012', 'imdb', 'mnist', 'mnist1d', 'oxford_iiit_pet', 'reversal', 'sunspots',
           'voc']
  assert data.names() == names
  assert data.spec('cifar100').num_classes('label') == 100
  assert data.spec('mnist').image_shape == (28, 28, 1)
  scenes = data.spec('fashion_scenes')
  assert scenes.num_classes('mask') == 11 and scenes.num_classes('classes') == 10
  with pytest.raises(ValueError, match=r"dataset 'mnist' has no 'mask' to predict; it has: label"):
    data.spec('mnist').num_classes('mask')
  for bad_call in (lambda: data.spec('imagenet'), lambda: data.load('imagenet', 'train')):
    valid = ', '.join(names)
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
  split = {'image': np.arange(7 * 2).reshape(7, 1, 2, 1).astype(np.uint8), 'label': np.arange(7, dtype=np.int32)}
  batches = list(batching.eval_batches(split, 3))
  assert [b['image'].shape for b, _ in batches] == [(3, 1, 2, 1)] * 3
  labels = np.concatenate([b['label'] for b, _ in batches])
  mask = np.concatenate([m for _, m in batches])
  np.testing.assert_array_equal(mask, [1] * 7 + [0] * 2)
  np.testing.assert_array_equal(labels[mask == 1], split['label'])


def test_process_slice():
  assert batching.process_slice(8) == slice(0, 8)
  assert batching.process_slice(12, process_index=2, process_count=4) == slice(6, 9)
  with pytest.raises(ValueError, match='not divisible'):
    batching.process_slice(10, process_index=0, process_count=4)


@pytest.fixture
def images():
  return np.random.default_rng(0).integers(0, 256, (64, 8, 6, 3), dtype=np.uint8)


def _image_only(transform, key, images, *args):
  """An augmentation applied to a batch holding only images; the transformed images."""
  return np.asarray(transform(key, {'image': jnp.asarray(images)}, *args)['image'])


def test_random_flip_reverses_width_where_chosen(images):
  out = _image_only(augment.random_flip, jax.random.key(0), images)
  flipped = (out == images[:, :, ::-1]).all(axis=(1, 2, 3))
  kept = (out == images).all(axis=(1, 2, 3))
  assert (flipped ^ kept).all() and 10 < flipped.sum() < 54


def test_random_crop_is_a_window_of_the_zero_padded_image(images):
  np.testing.assert_array_equal(_image_only(augment.random_crop, jax.random.key(0), images, 0), images)
  pad = 2
  out = _image_only(jax.jit(augment.random_crop, static_argnums=2), jax.random.key(1), images, pad)
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
  np.testing.assert_allclose(_image_only(augment.random_rotate, jax.random.key(0), square, 0.0), square, atol=1e-5)
  # The output at (r, c) samples the input rotated back: +90 degrees is numpy's rot90 with k=1 on (H, W).
  np.testing.assert_allclose(_rotate_exact(square, 90.0), np.rot90(square, k=1, axes=(1, 2)), atol=1e-4)


def _rotate_exact(batch, degrees):
  """random_rotate with its angle pinned to `degrees` (uniform over [d, d]); a batch dict or images."""
  with unittest.mock.patch.object(jax.random, 'uniform', lambda key, shape, **_: jnp.full(shape, degrees)):
    if isinstance(batch, dict):
      return jax.tree.map(np.asarray, augment.random_rotate(jax.random.key(0), batch, degrees))
    return _image_only(augment.random_rotate, jax.random.key(0), batch, degrees)


def test_random_rotate_keeps_shape_and_varies_per_example(images):
  x = images.astype(np.float32)
  out = _image_only(augment.random_rotate, jax.random.key(3), x, 30.0)
  assert out.shape == x.shape
  changed = [not np.allclose(o, i) for o, i in zip(out, x)]
  assert sum(changed) > 60  # Angle 0 has probability 0.


def test_random_brightness_shifts_each_example_by_one_bounded_offset(images):
  x = images.astype(np.float32)
  delta = np.array([10.0, 20.0, 30.0], np.float32)
  out = _image_only(augment.random_brightness, jax.random.key(4), x, delta)
  shift = out - x
  u = shift[..., 0:1] / delta[0]
  np.testing.assert_allclose(shift, np.broadcast_to(u * delta, shift.shape), rtol=1e-4, atol=1e-3)
  assert np.all(np.abs(u) <= 1) and np.ptp(u[:, 0, 0, 0]) > 1.0  # Spread over [-1, 1].


def test_brightness_config_is_a_fraction_of_the_full_range(images):
  pre = Preprocess(np.zeros(3, np.float32), np.full(3, 51.0, np.float32), ('brightness',), brightness=0.2)
  batch = {'image': images}
  out = np.asarray(pre.train(jax.random.key(5), batch)['image']) - np.asarray(pre.eval(batch)['image'])
  # 0.2 of 255 is 51 pixel units, i.e. 1.0 in units of this std of 51.
  assert np.abs(out).max() <= 1.0 + 1e-5 and np.abs(out).max() > 0.8


def test_pad_to_centres_the_image_in_mean_valued_padding():
  images = np.full((2, 28, 28, 1), 200, np.uint8)
  pre = Preprocess(np.array([100.0], np.float32), np.array([50.0], np.float32), pad_to=32)
  out = np.asarray(pre.eval({'image': images})['image'])
  assert out.shape == (2, 32, 32, 1)
  np.testing.assert_array_equal(out[:, 2:30, 2:30], 2.0)
  assert out[:, :2].sum() == out[:, 30:].sum() == out[:, :, :2].sum() == 0
  assert input_shape((28, 28, 1), 32) == (32, 32, 1) and input_shape((40, 40, 3), 32) == (40, 40, 3)
  with pytest.raises(ValueError, match='data.pad_to=-1'):
    input_shape((28, 28, 1), -1)


def test_celeba_reads_forty_binary_attributes_at_64x64(tmp_path):
  with tfds.testing.mock_data(num_examples=5):
    split = data.load('celeb_a', 'train', str(tmp_path))
  assert split['image'].shape == (5, 64, 64, 3) and split['image'].dtype == np.uint8
  assert split['label'].shape == (5, 40) and set(np.unique(split['label'])) <= {0, 1}
  assert data.spec('celeb_a').classes['label'] == tuple(sorted(tfds.builder('celeb_a').info.features['attributes']))


def test_eval_batches_pad_every_feature():
  split = {'image': np.zeros((5, 2, 2, 1), np.uint8), 'label': np.ones((5, 40), np.int32),
           'boxes': np.ones((5, 3, 4), np.float32), 'box_mask': np.ones((5, 3), bool)}
  batch, mask = list(batching.eval_batches(split, 4))[1]
  assert batch['label'].shape == (4, 40) and batch['label'][1:].sum() == 0 and mask.tolist() == [1, 0, 0, 0]
  assert batch['boxes'].shape == (4, 3, 4) and not batch['box_mask'][1:].any()


def test_on_disk_split_is_memory_mapped_and_equals_the_in_memory_read(tmp_path):
  imagenet = data.spec('imagenet2012')
  assert imagenet.source.on_disk
  data.clear_cache()
  with tfds.testing.mock_data(num_examples=3):
    mapped = data.load('imagenet2012', 'validation', str(tmp_path))
    in_memory = dataclasses.replace(imagenet.source, on_disk=False)(imagenet, 'validation', str(tmp_path))
  assert isinstance(mapped['image'], np.memmap) and not isinstance(in_memory['image'], np.memmap)
  np.testing.assert_array_equal(mapped['image'], in_memory['image'])
  np.testing.assert_array_equal(mapped['label'], in_memory['label'])
  directory = source.disk_arrays_dir(str(tmp_path), 'imagenet2012', str(tfds.builder('imagenet2012').version),
                                     'validation')
  assert sorted(os.listdir(directory)) == ['image.npy', 'label.npy']
  assert os.listdir(os.path.dirname(directory)) == [os.path.basename(directory)]  # No partial left.
  # Outside mock_data TFDS has nothing prepared here (and would fail offline): the .npy files serve.
  data.clear_cache()
  again = data.load('imagenet2012', 'validation', str(tmp_path))
  np.testing.assert_array_equal(batching.gather(again, [2, 0])['image'], in_memory['image'][[2, 0]])
  data.clear_cache()


def test_disk_arrays_dir_names_version_and_split_safely():
  path = source.disk_arrays_dir('/d', 'imagenet2012', '5.1.0', 'train[:90%]')
  assert path == '/d/jaxnets_splits/imagenet2012-5.1.0-train__90__'


def test_channel_stats_are_computed_once_per_split_and_equal_the_formula(tmp_path):
  data.clear_cache()
  with tfds.testing.mock_data(num_examples=6), \
       unittest.mock.patch.object(augment, 'channel_stats', wraps=augment.channel_stats) as spy:
    mean, std = data.channel_stats('cifar10', 'train', str(tmp_path))
    again = data.channel_stats('cifar10', 'train', str(tmp_path))
    images = data.load('cifar10', 'train', str(tmp_path))['image'].astype(np.float64)
  data.clear_cache()
  assert spy.call_count == 1 and again[0] is mean
  np.testing.assert_allclose(mean, images.mean(axis=(0, 1, 2)), rtol=1e-6)
  np.testing.assert_allclose(std, images.std(axis=(0, 1, 2)), rtol=1e-5)


def _objects_batch(n=32, size=16, seed=0):
  """Images with two rectangles each (values 100 and 200, the left and the right half), masks of their
  classes 1 and 2, exact boxes."""
  rng = np.random.default_rng(seed)
  images = np.zeros((n, size, size, 1), np.float32)
  masks = np.zeros((n, size, size), np.uint8)
  boxes = np.zeros((n, 3, 4), np.float32)
  for i in range(n):
    for j in range(2):
      w, h = rng.integers(2, 5, 2)
      x1 = j * size // 2 + rng.integers(0, size // 2 - w + 1)
      y1 = rng.integers(0, size - h + 1)
      region = (slice(y1, y1 + h), slice(x1, x1 + w))
      images[i][region] = 100 * (j + 1)
      masks[i][region] = j + 1
      boxes[i, j] = (x1, y1, x1 + w, y1 + h)
  return {'image': images, 'mask': masks, 'boxes': boxes, 'classes': np.tile([1, 2, 0], (n, 1)).astype(np.int32),
          'box_mask': np.tile([True, True, False], (n, 1))}


def _tight_box(mask, value):
  """(x1, y1, x2, y2) of the pixels equal to `value` (exclusive right/bottom edges), or None."""
  rows, cols = np.nonzero(mask == value)
  return None if not len(rows) else (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)


def _check_consistent(batch):
  """Each box is the tight box of its class's mask pixels, and a dropped box has no pixels left."""
  for i in range(len(batch['image'])):
    for j, value in enumerate((1, 2)):
      truth = _tight_box(batch['mask'][i], value)
      if truth is None:
        assert not batch['box_mask'][i, j]
      else:
        assert batch['box_mask'][i, j]
        np.testing.assert_allclose(batch['boxes'][i, j], truth, atol=1e-4)
        # The image moved with the mask: the object's pixels still hold its value.
        np.testing.assert_allclose(batch["image"][i, ..., 0][batch["mask"][i] == value], 100 * value, rtol=1e-5)


@pytest.mark.parametrize('name, transform', [
    ('flip', lambda key, b: augment.random_flip(key, b)),
    ('crop', lambda key, b: augment.random_crop(key, b, 6)),
    ('rotate90', lambda key, b: _rotate_exact(b, 90.0)),
    ('rotate-90', lambda key, b: _rotate_exact(b, -90.0)),
])
def test_joint_augmentation_moves_masks_and_boxes_with_the_image(name, transform):
  batch = _objects_batch()
  _check_consistent(batch)
  out = jax.tree.map(np.asarray, transform(jax.random.key(7), jax.tree.map(jnp.asarray, batch)))
  assert not np.array_equal(out['image'], batch['image'])
  _check_consistent(out)
  if name == 'crop':  # With padding 6 some objects leave a 16x16 image and are dropped.
    assert not out['box_mask'][:, :2].all() and (out['mask'] == data.MASK_IGNORE).any()
  if name == 'flip':
    flipped = [np.array_equal(o, m[:, ::-1]) for o, m in zip(out['mask'], batch['mask'])]
    assert 4 < sum(flipped) < 28
  if name == 'rotate90':
    np.testing.assert_array_equal(out['mask'], np.rot90(batch['mask'], k=1, axes=(1, 2)))


def test_rotated_boxes_enclose_the_rotated_objects():
  batch = _objects_batch(size=24)
  out = _rotate_exact(jax.tree.map(jnp.asarray, batch), 30.0)
  for i in range(len(batch['image'])):
    for j, value in enumerate((1, 2)):
      truth = _tight_box(out['mask'][i], value)
      if truth is not None and out['box_mask'][i, j]:
        x1, y1, x2, y2 = out['boxes'][i, j]
        assert x1 <= truth[0] + 0.5 and y1 <= truth[1] + 0.5 and x2 >= truth[2] - 0.5 and y2 >= truth[3] - 0.5


def test_pad_to_shifts_boxes_and_leaves_the_border_unlabelled():
  batch = _objects_batch()
  pre = Preprocess(np.zeros(1, np.float32), np.ones(1, np.float32), pad_to=20)
  out = jax.tree.map(np.asarray, pre.eval(jax.tree.map(jnp.asarray, batch)))
  assert out['image'].shape == (32, 20, 20, 1) and out['mask'].shape == (32, 20, 20)
  assert (out['mask'][:, :2] == data.MASK_IGNORE).all() and (out['mask'][:, :, -2:] == data.MASK_IGNORE).all()
  _check_consistent(out)


def test_training_preprocess_keeps_detection_batches_consistent():
  batch = _objects_batch()
  pre = Preprocess(np.zeros(1, np.float32), np.ones(1, np.float32), ('crop', 'flip'), crop_padding=3)
  out = jax.tree.map(np.asarray, jax.jit(pre.train)(jax.random.key(0), jax.tree.map(jnp.asarray, batch)))
  _check_consistent(out)


def test_pets_and_voc_read_as_segmentation_and_detection_dicts(tmp_path):
  with tfds.testing.mock_data(num_examples=4):
    pets = data.load('oxford_iiit_pet', 'train', str(tmp_path))
    voc = data.load('voc', 'test', str(tmp_path))
  assert pets['image'].shape == (4, 128, 128, 3) and pets['mask'].shape == (4, 128, 128)
  assert set(np.unique(pets['mask'])) <= {0, 1, data.MASK_IGNORE}
  assert voc['image'].shape == (4, 256, 256, 3) and voc['boxes'].shape == (4, 42, 4)
  boxes, valid = voc['boxes'][voc['box_mask']], voc['box_mask']
  assert valid.any() and (boxes >= 0).all() and (boxes <= 256).all()
  assert (voc['boxes'][~valid] == 0).all() and ((voc['classes'] >= 0) & (voc['classes'] < 20)).all()
