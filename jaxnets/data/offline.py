"""Prepares datasets in a TFDS data_dir from files already on this machine, for hosts without internet.

Fashion-MNIST: Debian's `dataset-fashion-mnist` ships the original IDX files. They are fed to TFDS's
own `fashion_mnist` builder (version 3.0.1) through a subclass whose only change is where
`_split_generators` gets its files, so the examples, features, split names and on-disk layout are the
ones TFDS writes after a download, and `tfds.builder('fashion_mnist', data_dir=...)` reads them as
usual. TFDS's download cache cannot be used instead: Debian recompressed the .gz files, so their
checksums differ from the ones TFDS registers and it rejects them.
"""

import gzip
import os
import shutil
import tempfile
import zlib

import tensorflow_datasets as tfds

FASHION_MNIST_IDX_DIR = '/usr/share/datasets/fashion-mnist'
_IDX_FILES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte',
              't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')


class DamagedFileError(RuntimeError):
  """A local source file cannot be read to its end; the message names the file and how to replace it."""


class _LocalFiles:
  """Stands in for the download manager: maps each URL's file name to a local, extracted file."""

  def __init__(self, paths: dict[str, str]):
    self._paths = paths

  def download_and_extract(self, urls: dict[str, str]) -> dict[str, str]:
    """The local decompressed file for each URL the builder asks for, matched by file name."""
    return {key: self._paths[url.rsplit('/', 1)[-1]] for key, url in urls.items()}


class _FashionMnistFromIdx(tfds.builder_cls('fashion_mnist'), skip_registration=True):
  """TFDS's `fashion_mnist` builder reading its four source files from local paths."""
  name = 'fashion_mnist'
  # Nothing is downloaded, so no URL checksums: this also skips locating the builder's source file,
  # which needs the optional package importlib_resources for a builder defined outside TFDS.
  url_infos = None

  def __init__(self, *, paths: dict[str, str], **kwargs):
    super().__init__(**kwargs)
    self._paths = paths

  def _split_generators(self, dl_manager):
    # The builder's documented override point; the parent's split logic runs unchanged.
    del dl_manager
    return super()._split_generators(_LocalFiles(self._paths))


def prepare_fashion_mnist(data_dir: str, idx_dir: str = FASHION_MNIST_IDX_DIR) -> bool:
  """Writes `fashion_mnist` into data_dir from the IDX .gz files in idx_dir; False if they are absent."""
  sources = [os.path.join(idx_dir, f + '.gz') for f in _IDX_FILES]
  if not all(os.path.isfile(s) for s in sources):
    return False
  os.makedirs(data_dir, exist_ok=True)
  with tempfile.TemporaryDirectory(dir=data_dir, prefix='fashion_mnist_idx.') as tmp:
    paths = {}
    for name, source in zip(_IDX_FILES, sources):
      # The builder reads raw IDX bytes, as TFDS's download manager leaves them after extraction.
      paths[name + '.gz'] = os.path.join(tmp, name)
      _decompress(source, paths[name + '.gz'])
    builder = _FashionMnistFromIdx(paths=paths, data_dir=data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  return True


def _decompress(source: str, destination: str) -> None:
  """Writes the bytes the .gz file `source` holds; a truncated or corrupt file is a DamagedFileError."""
  try:
    with gzip.open(source, 'rb') as src, open(destination, 'wb') as dst:
      shutil.copyfileobj(src, dst)
  except (EOFError, gzip.BadGzipFile, zlib.error) as e:
    raise DamagedFileError(f'{source} is damaged ({e}); {_repair(source)}') from e


def _repair(path: str) -> str:
  """How to get a good copy of the IDX file at `path`: Debian's package for its files, else delete it."""
  if os.path.dirname(os.path.realpath(path)) == os.path.realpath(FASHION_MNIST_IDX_DIR):
    return "reinstall Debian's package: apt-get install --reinstall dataset-fashion-mnist"
  return (f"delete or replace this copy (Debian's dataset-fashion-mnist installs good ones in "
          f'{FASHION_MNIST_IDX_DIR})')


# TFDS name -> function(data_dir) preparing it from local files, returning False when it cannot.
LOCAL_SOURCES = {'fashion_mnist': prepare_fashion_mnist}
