"""Whole splits as dicts of numpy arrays; TFDS datasets prepared offline when possible, failing fast when not.

A split is held in host memory, or, for a TFDS dataset read `on_disk` (ImageNet's 193 GB), written
once as one .npy file per feature under `<data_dir>/jaxnets_splits/` and memory-mapped: batches then
read their rows from disk, and the deterministic (seed, step) batches and exact resumes work unchanged.

A TFDS dataset read as (image, label) pairs keeps its decoded named splits there too, stamped with the
prepared files they came from: later processes read them with numpy instead of importing TensorFlow and
decoding every record again (6.7 of the 15 s a warm-cache run took to its first step on Fashion-MNIST).
"""

import dataclasses
import functools
import os
import re
import shutil
import tempfile
import threading
import time
import types
from typing import Callable
import urllib.error
import urllib.request

import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from jaxnets.data import augment, offline
from jaxnets.data.specs import spec
from jaxnets.train.record import read_json, write_json

# Where TFDS fetches prepared datasets from (try_download_gcs); reaching it means downloads can work.
TFDS_HOST = 'https://storage.googleapis.com'
PROBE_TIMEOUT_S = 3.0
DISK_ARRAYS_DIR = 'jaxnets_splits'  # Under data_dir: on_disk splits, one <feature>.npy each.
WRITE_BATCH = 1024  # Examples per tf.data batch while writing an on_disk split.
WRITE_LOG_EVERY = 50  # Batches between progress lines while writing.
DECODED_STAMP = 'prepared_files.json'  # In a decoded split's directory: the prepared files it was read from.
# TFDS's own reader; tfds.testing.mock_data swaps it for fake examples, which must never be cached or shadowed.
_TFDS_AS_DATASET = vars(tfds.core.DatasetBuilder)['as_dataset']


@functools.cache
def host_tensorflow():
  """TensorFlow, imported on first need with the GPUs hidden from it: tf.data runs on the host, and TensorFlow
  would otherwise claim the accelerator memory JAX needs. A run whose splits are decoded already never imports
  it (2 s of its start)."""
  import tensorflow as tf  # noqa: PLC0415
  try:
    tf.config.set_visible_devices([], 'GPU')
  except RuntimeError as e:  # Something ran TensorFlow before jaxnets read data: its devices are fixed.
    logging.warning('TensorFlow may use the GPUs alongside JAX: %s', e)
  return tf


class DatasetUnavailableError(RuntimeError):
  """A dataset is not in the data_dir and this host can neither build it locally nor download it."""


def resolve_data_dir(data_dir: str | None = None) -> str:
  """The TFDS data_dir to use: the argument, else $TFDS_DATA_DIR, else TFDS's ~/tensorflow_datasets."""
  return os.path.expanduser(
      data_dir or os.environ.get('TFDS_DATA_DIR') or '~/tensorflow_datasets')


def load(name: str, split: str, data_dir: str | None = None) -> dict[str, np.ndarray]:
  """Split `split` (a TFDS split string) of dataset `name` as {feature: array}, preparing it if missing.

  Splits are cached per process (read-only), so the runs of one experiment read the data once.
  """
  return _load_cached(name, split, resolve_data_dir(data_dir))


def channel_stats(name: str, split: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Per-channel mean and std of a split's images, cached like the split: the runs of one experiment
  share them (for an on_disk split each computation reads every image from disk)."""
  return _channel_stats_cached(name, split, resolve_data_dir(data_dir))


def num_examples(split: dict) -> int:
  """The number of examples in a split (or batch) dict."""
  return len(next(iter(split.values())))


def take(split: dict, count: int) -> dict:
  """The first `count` examples of a split (all of them if count is 0): a fixed subset."""
  return split if not count else {k: v[:count] for k, v in split.items()}


def select_split(split: str, sizes: dict[str, int], read: Callable[[str], dict]) -> dict[str, np.ndarray]:
  """The examples a TFDS split string ('train[:1000]', 'train+test[50%:]') selects from splits made in
  jaxnets: `sizes` holds each split's example count, `read(name)` returns a whole split."""
  infos = {name: types.SimpleNamespace(num_examples=count) for name, count in sizes.items()}
  parts = []
  for instruction in tfds.core.ReadInstruction.from_spec(split).to_absolute(infos):
    whole = read(instruction.splitname)
    parts.append({k: v[instruction.from_:instruction.to] for k, v in whole.items()})
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def clear_cache() -> None:
  """Forget cached splits (tests that swap the data behind a name, e.g. tfds.testing.mock_data)."""
  _load_cached.cache_clear()
  _channel_stats_cached.cache_clear()


@functools.lru_cache(maxsize=4)
def _channel_stats_cached(name: str, split: str, data_dir: str) -> tuple[np.ndarray, np.ndarray]:
  """channel_stats() for a resolved data_dir, cached."""
  return augment.channel_stats(_load_cached(name, split, data_dir)['image'])


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, split: str, data_dir: str) -> dict[str, np.ndarray]:
  """load() for a resolved data_dir, cached and read-only; each array cast to the spec's dtype."""
  dataset_spec = spec(name)
  arrays = dataset_spec.source(dataset_spec, split, data_dir)
  if set(arrays) != set(dataset_spec.features):
    raise ValueError(f'dataset {name!r} split {split!r} has features {sorted(arrays)}, its spec '
                     f'declares {sorted(dataset_spec.features)}')
  for key, (shape, dtype) in dataset_spec.features.items():
    if arrays[key].shape[1:] != tuple(shape):
      raise ValueError(f'dataset {name!r} split {split!r}: {key!r} has shape {arrays[key].shape[1:]}, '
                       f'its spec declares {tuple(shape)}')
    if not isinstance(arrays[key], np.memmap):
      arrays[key] = arrays[key].astype(dtype, copy=False)
      arrays[key].flags.writeable = False  # Shared through the cache.
  return arrays


@dataclasses.dataclass(frozen=True)
class Tfds:
  """A dataset read through TFDS, prepared offline when possible and failing fast when not.

  `example` maps a TFDS example dict to the feature dict inside tf.data (None: TFDS's supervised
  (image, label) pairs). `on_disk` keeps each split in memory-mapped .npy files rather than in RAM.
  """
  tfds_name: str
  example: Callable | None = None
  on_disk: bool = False

  def __call__(self, dataset_spec, split: str, data_dir: str) -> dict[str, np.ndarray]:
    """Reads the split, preparing the dataset first if data_dir lacks it."""
    try:
      return self._read(dataset_spec, split, data_dir)
    except AssertionError:  # How TFDS's as_dataset reports that data_dir holds no prepared data.
      try:
        _prepare(dataset_spec.name, self.tfds_name, data_dir)
      except FileExistsError:  # Another process (of a multi-host run) finished preparing it first.
        pass
    return self._read(dataset_spec, split, data_dir)

  def _read(self, dataset_spec, split: str, data_dir: str) -> dict[str, np.ndarray]:
    """Reads a prepared split (from .npy files if on_disk or already decoded); a fresh builder sees data prepared
    since."""
    builder = tfds.builder(self.tfds_name, data_dir=data_dir)
    directory = disk_arrays_dir(data_dir, dataset_spec.name, str(builder.version), split)
    if self.on_disk and os.path.isdir(directory):
      return _open_npy(directory, dataset_spec.features)
    stamp = _prepared_stamp(builder) if self.example is None and not self.on_disk else None
    named = stamp and _single_shard_split(builder, split)
    if named:
      sizes = {named: builder.info.splits[named].num_examples}
      return select_split(split, sizes, lambda name: _decoded_split(
          disk_arrays_dir(data_dir, dataset_spec.name, str(builder.version), name), stamp,
          dataset_spec.features, lambda: _decode(self._dataset(builder, name))))
    dataset = self._dataset(builder, split)
    if self.on_disk:
      _write_npy(dataset, directory, dataset_spec.features)
      return _open_npy(directory, dataset_spec.features)
    return _decode(dataset)

  def _dataset(self, builder, split: str):
    """The split as a tf.data pipeline of feature dicts."""
    host_tensorflow()
    if self.example is None:
      return builder.as_dataset(split=split, as_supervised=True).map(
          lambda image, label: {'image': image, 'label': label})
    return builder.as_dataset(split=split).map(self.example)


def _decode(dataset) -> dict[str, np.ndarray]:
  """A whole tf.data split as numpy arrays."""
  # One batch of the split's known length: batch_size=-1 would batch by the split metadata, which
  # tfds.testing.mock_data lacks (TensorFlow then aborts allocating sys.maxsize examples).
  return dict(tfds.as_numpy(dataset.batch(len(dataset)).get_single_element()))


def _prepared_stamp(builder) -> dict[str, list[int]] | None:
  """{file: [size, mtime_ns]} of the builder's prepared files, or None when there are none to read or
  TFDS's reader is mocked: what a decoded split must have been read from to stand in for them."""
  if vars(tfds.core.DatasetBuilder)['as_dataset'] is not _TFDS_AS_DATASET:
    return None
  directory = os.fspath(builder.data_path)
  if not os.path.isfile(os.path.join(directory, 'dataset_info.json')):
    return None
  stats = {entry.name: entry.stat() for entry in os.scandir(directory) if entry.is_file()}
  return {name: [stat.st_size, stat.st_mtime_ns] for name, stat in sorted(stats.items())}


def _single_shard_split(builder, split: str) -> str | None:
  """The named split that `split` slices, if it slices one split stored in one shard: then TFDS reads it in
  file order and cutting the decoded whole gives TFDS's examples in TFDS's order. None otherwise ('a+b'
  interleaves the splits, and a sliced multi-shard split is cut by shard before interleaving)."""
  splits = builder.info.splits
  infos = {name: types.SimpleNamespace(num_examples=info.num_examples) for name, info in splits.items()}
  instructions = tfds.core.ReadInstruction.from_spec(split).to_absolute(infos)
  name = instructions[0].splitname
  return name if len(instructions) == 1 and splits[name].num_shards == 1 else None


def _decoded_split(directory: str, stamp: dict, features: dict, decode: Callable[[], dict]) -> dict[str, np.ndarray]:
  """A named split's arrays: from the .npy files in `directory` if they were decoded from the prepared files
  `stamp` describes, else from decode(), then written there (atomically, as on_disk splits are)."""
  try:
    if read_json(os.path.join(directory, DECODED_STAMP)) == stamp:
      return {key: np.load(os.path.join(directory, f'{key}.npy')) for key in features}
  except (OSError, ValueError):  # Not written yet, or unreadable: decode again.
    pass
  arrays = decode()
  partial = None
  try:
    partial = _partial_dir(directory)
    for key, array in arrays.items():
      np.save(os.path.join(partial, f'{key}.npy'), array)
    write_json(os.path.join(partial, DECODED_STAMP), stamp)
  except OSError as e:  # A read-only or full data_dir: the arrays are read all the same, only not kept.
    logging.warning('could not keep the decoded split in %s (%s); later runs will decode it again', directory, e)
    if partial:
      shutil.rmtree(partial, ignore_errors=True)
    return arrays
  shutil.rmtree(directory, ignore_errors=True)  # A stale copy, from files prepared again since.
  _publish(partial, directory)
  return arrays


def _publish(partial: str, directory: str) -> None:
  """Rename a finished `partial` directory into place, atomically; if another process got there first, keep
  theirs and discard ours."""
  try:
    os.rename(partial, directory)
  except OSError:
    shutil.rmtree(partial)


def _partial_dir(directory: str) -> str:
  """A new, uniquely named directory beside `directory` to write into before renaming it into place (unique
  across the hosts of a shared data_dir, whose processes may share a pid)."""
  os.makedirs(os.path.dirname(directory), exist_ok=True)
  return tempfile.mkdtemp(dir=os.path.dirname(directory), prefix=os.path.basename(directory) + '.partial-')


def disk_arrays_dir(data_dir: str, name: str, version: str, split: str) -> str:
  """Where an on_disk split's .npy files live: one directory per dataset, TFDS version and split string."""
  safe_split = re.sub(r'[^\w.-]', '_', split)  # 'train[:90%]' -> 'train__90__'
  return os.path.join(data_dir, DISK_ARRAYS_DIR, f'{name}-{version}-{safe_split}')


def _write_npy(dataset, directory: str, features: dict) -> None:
  """Streams examples into one <feature>.npy per feature, logging progress; then renames into place.

  The rename is atomic, so an interrupted write leaves no half split, and when several processes
  write the same split the first to finish wins and the others discard theirs.
  """
  total = len(dataset)
  if not total:
    raise ValueError(f'split for {directory!r} has no examples')
  partial = _partial_dir(directory)
  logging.info('writing %d examples to %s (once; later runs memory-map it)', total, directory)
  arrays = {key: np.lib.format.open_memmap(os.path.join(partial, f'{key}.npy'), 'w+', dtype,
                                           (total,) + tuple(shape))
            for key, (shape, dtype) in features.items()}
  start, since = 0, time.time()
  for i, batch in enumerate(tfds.as_numpy(dataset.batch(WRITE_BATCH))):
    count = len(batch['image'])
    for key, array in arrays.items():
      array[start:start + count] = batch[key]
    start += count
    if (i + 1) % WRITE_LOG_EVERY == 0 or start == total:
      rate = start / max(time.time() - since, 1e-9)
      logging.info('  %d/%d examples  %.0f img/s  ETA %.0f s', start, total, rate, (total - start) / rate)
  if start != total:
    raise ValueError(f'split for {directory!r} yielded {start} examples, its length says {total}')
  for array in arrays.values():
    array.flush()
  del arrays
  _publish(partial, directory)


def _open_npy(directory: str, features: dict) -> dict[str, np.ndarray]:
  """An on_disk split's arrays, memory-mapped read-only."""
  return {key: np.load(os.path.join(directory, f'{key}.npy'), mmap_mode='r') for key in features}


def _prepare(name: str, tfds_name: str, data_dir: str) -> None:
  """Builds the dataset from local files if there are any, else downloads it if the host is reachable."""
  host_tensorflow()
  local_source = offline.LOCAL_SOURCES.get(tfds_name)
  if local_source is not None and local_source(data_dir):
    return
  if not host_reachable(TFDS_HOST, PROBE_TIMEOUT_S):
    raise DatasetUnavailableError(
        f'dataset {name!r} (TFDS {tfds_name!r}) is not prepared in data_dir {data_dir!r}, and '
        f'{TFDS_HOST} cannot be reached to download it. On a machine with network access, run once\n'
        f'  python -c "import tensorflow_datasets as tfds; '
        f"tfds.builder('{tfds_name}', data_dir='{data_dir}').download_and_prepare()\"\n"
        f'then copy that data_dir here and point TFDS_DATA_DIR or --config.data.data_dir at it.')
  tfds.builder(tfds_name, data_dir=data_dir).download_and_prepare()


def host_reachable(url: str, timeout_s: float) -> bool:
  """Whether `url` answers an HTTP request within timeout_s, DNS included (TFDS would retry for minutes)."""
  answered = threading.Event()

  def probe():
    try:
      urllib.request.urlopen(urllib.request.Request(url, method='HEAD'), timeout=timeout_s)
      answered.set()
    except urllib.error.HTTPError:  # Any HTTP status means the host is there.
      answered.set()
    except OSError:
      pass

  thread = threading.Thread(target=probe, daemon=True)
  thread.start()
  thread.join(timeout_s)
  return answered.is_set()
