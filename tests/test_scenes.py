"""Tests of jaxnets.data.scenes: determinism, exact masks and boxes, layout, item counts, resizing, errors."""

import gzip
import os

import numpy as np
import pytest

from jaxnets.data import scenes

IDX_DIR = '/usr/share/datasets/fashion-mnist'
INTENSITY = 100 + 15 * np.arange(10)  # Source k is a rectangle of this brightness with class k.


def _rectangles() -> tuple[np.ndarray, np.ndarray]:
  """Ten synthetic items [10, 28, 28, 1]: a uniform rectangle each, with its own margins, class = index."""
  images = np.zeros((10, 28, 28, 1), np.uint8)
  for k in range(10):
    images[k, 2 + k % 3:26 - k % 4, 3 + k % 2:25 - k % 5] = INTENSITY[k]
  return images, np.arange(10)


def _fashion_mnist(count: int) -> tuple[np.ndarray, np.ndarray]:
  """The first `count` real test-split items and labels, read from the gzipped IDX files."""
  if not os.path.isdir(IDX_DIR):
    pytest.skip(f'Debian package dataset-fashion-mnist is not installed ({IDX_DIR})')
  with gzip.open(f'{IDX_DIR}/t10k-images-idx3-ubyte.gz') as f:
    images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28, 1)
  with gzip.open(f'{IDX_DIR}/t10k-labels-idx1-ubyte.gz') as f:
    labels = np.frombuffer(f.read(), np.uint8, offset=8)
  return images[:count], labels[:count].astype(np.int64)


def _tight_box(pixels: np.ndarray) -> list[int]:
  """(x1, y1, x2, y2), right/bottom exclusive, of the True pixels of a [H, W] array."""
  ys, xs = np.nonzero(pixels)
  return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_shapes_and_dtypes():
  out = scenes.compose(*_rectangles(), 5, 0, canvas=48, max_items=3, min_size=10, max_size=20)
  expected = {'image': ((5, 48, 48, 1), np.uint8), 'mask': ((5, 48, 48), np.uint8),
              'boxes': ((5, 3, 4), np.float32), 'classes': ((5, 3), np.int32), 'box_mask': ((5, 3), bool)}
  assert {k: (v.shape, v.dtype) for k, v in out.items()} == expected


def test_same_seed_same_scenes_other_seed_different():
  images, labels = _rectangles()
  first, again, other = (scenes.compose(images, labels, 20, seed) for seed in (3, 3, 4))
  for key in first:
    np.testing.assert_array_equal(first[key], again[key])
  assert not np.array_equal(first['image'], other['image'])
  assert not np.array_equal(first['boxes'], other['boxes'])


def test_images_with_or_without_channel_axis_give_the_same_scenes():
  images, labels = _rectangles()
  with_axis, without = scenes.compose(images, labels, 8, 1), scenes.compose(images[..., 0], labels, 8, 1)
  for key in with_axis:
    np.testing.assert_array_equal(with_axis[key], without[key])


@pytest.mark.parametrize('source', ['rectangles', 'fashion_mnist'])
def test_masks_and_boxes_are_exact(source):
  images, labels = _rectangles() if source == 'rectangles' else _fashion_mnist(500)
  threshold = 16
  out = scenes.compose(images, labels, 60, 7, threshold=threshold)
  for image, mask, boxes, classes, real in zip(*(out[k] for k in ('image', 'mask', 'boxes', 'classes',
                                                                   'box_mask'))):
    n = real.sum()
    assert 1 <= n <= 4 and real[:n].all() and not real[n:].any()  # Real items first, then padding.
    assert not boxes[n:].any() and not classes[n:].any()
    # An item's own pixels, not its square: labelled exactly where brighter than the threshold.
    np.testing.assert_array_equal(mask > 0, image[..., 0] > threshold)
    boxes, classes = boxes[:n].astype(int), classes[:n]
    assert set(np.unique(mask)) == {0} | set(classes + 1)
    for c in set(classes):
      # The tight box of a class's mask pixels: its one item's box, or the hull of its items' boxes.
      own = boxes[classes == c]
      hull = [*own[:, :2].min(0), *own[:, 2:].max(0)]
      assert _tight_box(mask == c + 1) == hull
    if source == 'rectangles':  # The brightest pixel in each box is the source of the box's class.
      for (x1, y1, x2, y2), c in zip(boxes, classes):
        assert image[y1:y2, x1:x2].max() == INTENSITY[c]


def test_items_lie_inside_the_canvas_and_never_overlap():
  out = scenes.compose(*_rectangles(), 200, 11, canvas=40, max_items=5, min_size=8, max_size=24)
  counts = out['box_mask'].sum(1)
  assert counts.min() >= 1
  for boxes, n in zip(out['boxes'], counts):
    x1, y1, x2, y2 = boxes[:n].T
    assert (x1 >= 0).all() and (y1 >= 0).all() and (x2 <= 40).all() and (y2 <= 40).all()
    assert (x1 < x2).all() and (y1 < y2).all()
    for i in range(n):
      for j in range(i):
        assert x2[i] <= x1[j] or x2[j] <= x1[i] or y2[i] <= y1[j] or y2[j] <= y1[i]


def test_item_counts_are_uniform_when_everything_fits():
  # Items of at most 10 px on 64 x 64: three placed squares block too little to leave a fourth no room.
  out = scenes.compose(*_rectangles(), 400, 5, max_items=4, min_size=8, max_size=10)
  frequencies = np.bincount(out['box_mask'].sum(1), minlength=5)
  assert frequencies[0] == 0
  assert (70 <= frequencies[1:]).all() and (frequencies[1:] <= 130).all(), frequencies  # 100 +- 3.4 sd.


def test_items_that_find_no_room_are_dropped():
  # No two 16 px squares fit side by side on a 30 px canvas: each scene keeps only its first item.
  out = scenes.compose(*_rectangles(), 50, 2, canvas=30, max_items=3, min_size=16, max_size=16)
  np.testing.assert_array_equal(out['box_mask'].sum(1), 1)


def test_items_are_resized_bilinearly_as_pil_does():
  image_module = pytest.importorskip('PIL.Image')
  rng = np.random.default_rng(0)
  images = rng.integers(64, 256, (10, 28, 28, 1), dtype=np.uint8)  # Every pixel visible: box = square.
  out = scenes.compose(images, np.arange(10), 30, 9, min_size=9, max_size=40)
  sides = set()
  for image, boxes, classes, real in zip(out['image'], out['boxes'], out['classes'], out['box_mask']):
    for (x1, y1, x2, y2), c in zip(boxes[real].astype(int), classes[real]):
      side = x2 - x1
      expected = image_module.fromarray(images[c, ..., 0]).resize((side, side), image_module.BILINEAR)
      difference = image[y1:y2, x1:x2, 0].astype(int) - np.asarray(expected, int)
      assert np.abs(difference).max() <= 1  # PIL rounds in fixed point.
      sides.add(side)
  assert min(sides) < 28 < max(sides)  # Shrunk and enlarged items both checked.


@pytest.mark.parametrize('kwargs, message', [
    (dict(count=0), 'count 0 must be >= 1'),
    (dict(max_items=0), 'max_items 0 must be >= 1'),
    (dict(min_size=20, max_size=16), r'min_size 20 must be in \[1, max_size=16\]'),
    (dict(min_size=0), r'min_size 0 must be in \[1, max_size=28\]'),
    (dict(max_size=70), r'max_size 70 must be in \[min_size=14, canvas=64\]'),
    (dict(canvas=20), r'max_size 28 must be in \[min_size=14, canvas=20\]'),
    (dict(threshold=255), r'threshold 255 must be in \[0, 254\]'),
    (dict(labels=np.arange(9)), r'labels int64 \(9,\) must be integers \[N\] = \[10\]'),
    (dict(labels=np.arange(10) + 250), r'labels in \[250, 259\] must be in \[0, 253\]'),
    (dict(images=np.zeros((10, 28, 28, 3), np.uint8)), r'images uint8 \(10, 28, 28, 3\) must be uint8'),
    (dict(images=np.zeros((10, 28, 28), np.float32)), r'images float32 \(10, 28, 28\) must be uint8'),
    (dict(images=np.zeros((10, 28, 28), np.uint8)), r'threshold 16 leaves no pixel of images\[\d\]'),
])
def test_bad_arguments_are_named(kwargs, message):
  images, labels = _rectangles()
  args = dict(images=images, labels=labels, count=4, seed=0) | kwargs
  with pytest.raises(ValueError, match=message):
    scenes.compose(**args)
