"""Small scenes composed from real Fashion-MNIST items: segmentation and detection data that runs offline.

`compose` pastes resized items at random, non-overlapping square places on a black canvas and returns
the split dict of specs.py: 'image', a per-pixel class 'mask' (0 background, 1 + class where an item's
own pixels are brighter than `threshold`) and detection 'boxes' / 'classes' / 'box_mask'. Boxes are
(x1, y1, x2, y2) pixels with exclusive right/bottom edges, the tight box of the item's mask pixels: pixel
columns a..b and rows c..d give (a, c, b + 1, d + 1). Train scenes must be composed from Fashion-MNIST's
train split and test scenes from its test split (the caller's job), so no test item is seen in training.
"""

import numpy as np

from jaxnets.data.specs import MASK_IGNORE


def compose(images: np.ndarray, labels: np.ndarray, count: int, seed: int, *, canvas: int = 64,
            max_items: int = 4, min_size: int = 14, max_size: int = 28,
            threshold: int = 16) -> dict[str, np.ndarray]:
  """`count` scenes of 1..max_items items each, a pure function of the arguments and `seed`.

  Each scene draws its item count uniformly in 1..max_items; each item a uniform source image, a side
  uniform in [min_size, max_size] and a position uniform among those where its square meets no earlier
  item's square. An item with no such position is dropped (the first always fits, so no scene is empty).
  """
  images = _validated(images, labels, count, canvas, max_items, min_size, max_size, threshold)
  rng = np.random.default_rng(seed)
  counts = rng.integers(1, max_items + 1, count)
  sources = rng.integers(0, len(images), (count, max_items))
  sizes = rng.integers(min_size, max_size + 1, (count, max_items))
  spots = rng.random((count, max_items))
  weights = {s: (_bilinear(images.shape[1], s), _bilinear(images.shape[2], s))
             for s in range(min_size, max_size + 1)}
  out = {
      'image': np.zeros((count, canvas, canvas, 1), np.uint8),
      'mask': np.zeros((count, canvas, canvas), np.uint8),
      'boxes': np.zeros((count, max_items, 4), np.float32),
      'classes': np.zeros((count, max_items), np.int32),
      'box_mask': np.zeros((count, max_items), bool),
  }
  for i in range(count):
    placed = []
    for j in range(counts[i]):
      source, size = sources[i, j], sizes[i, j]
      corner = _free_corner(placed, size, canvas, spots[i, j])
      if corner is None:
        continue
      rows, cols = weights[size]
      item = np.rint(rows @ images[source] @ cols.T).astype(np.uint8)
      if item.max() <= threshold:
        raise ValueError(f'threshold {threshold} leaves no pixel of images[{source}] resized to {size}')
      _paste(out, i, len(placed), item, corner, labels[source], threshold)
      placed.append(corner + (size,))
  return out


def items(scenes: dict, size: int = 28) -> dict[str, np.ndarray]:
  """Every item of `scenes` as a classification example: its box cut out, centred in a square of zeros and
  resized to size x size (uint8 [N, size, size, 1]), with its class as 'label' [N].

  A classifier trained on these measures how well the scenes' items can be told apart at their scenes'
  scales: an upper reference for segmenting and detecting them.
  """
  crops, labels = [], []
  for i, j in zip(*np.nonzero(scenes['box_mask'])):
    x1, y1, x2, y2 = scenes['boxes'][i, j].astype(int)
    crop = scenes['image'][i, y1:y2, x1:x2, 0]
    side = max(crop.shape)
    square = np.zeros((side, side), np.float32)
    top, left = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
    square[top:top + crop.shape[0], left:left + crop.shape[1]] = crop
    resize = _bilinear(side, size)
    crops.append(np.rint(resize @ square @ resize.T).astype(np.uint8))
    labels.append(scenes['classes'][i, j])
  return {'image': np.stack(crops)[..., None], 'label': np.asarray(labels, np.int32)}


def _validated(images, labels, count, canvas, max_items, min_size, max_size, threshold) -> np.ndarray:
  """The images as [N, H, W] after checking every argument; a ValueError names the bad value."""
  images = np.asarray(images)
  labels = np.asarray(labels)
  if images.ndim == 4 and images.shape[-1] == 1:
    images = images[..., 0]
  if images.dtype != np.uint8 or images.ndim != 3 or not len(images):
    raise ValueError(f'images {images.dtype} {images.shape} must be uint8 [N, H, W] or [N, H, W, 1], N >= 1')
  if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f'labels {labels.dtype} {labels.shape} must be integers [N] = [{len(images)}]')
  if labels.min() < 0 or labels.max() >= MASK_IGNORE - 1:  # Mask values 1 + label stay below it.
    raise ValueError(f'labels in [{labels.min()}, {labels.max()}] must be in [0, {MASK_IGNORE - 2}]')
  if count < 1:
    raise ValueError(f'count {count} must be >= 1')
  if max_items < 1:
    raise ValueError(f'max_items {max_items} must be >= 1')
  if not 1 <= min_size <= max_size:
    raise ValueError(f'min_size {min_size} must be in [1, max_size={max_size}]')
  if max_size > canvas:
    raise ValueError(f'max_size {max_size} must be in [min_size={min_size}, canvas={canvas}]')
  if not 0 <= threshold < 255:
    raise ValueError(f'threshold {threshold} must be in [0, 254]')
  return images


def _bilinear(src: int, dst: int) -> np.ndarray:
  """[dst, src] weights of a bilinear resize whose triangle widens when shrinking (antialiased, as PIL)."""
  scale = src / dst
  centers = (np.arange(dst) + 0.5) * scale
  distance = np.arange(src) + 0.5 - centers[:, None]
  weights = np.maximum(0.0, 1.0 - np.abs(distance) / max(scale, 1.0))
  return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def _free_corner(placed: list, size: int, canvas: int, spot: float) -> tuple[int, int] | None:
  """The (y, x) corner at uniform `spot` in [0, 1) among those whose size square meets no placed square."""
  free = np.ones((canvas - size + 1,) * 2, bool)
  for y, x, side in placed:  # Squares meet iff y - size < y' < y + side, and the same across.
    free[max(0, y - size + 1):y + side, max(0, x - size + 1):x + side] = False
  corners = np.flatnonzero(free)
  if not corners.size:
    return None
  y, x = divmod(int(corners[int(spot * corners.size)]), free.shape[1])
  return y, x


def _paste(out: dict, i: int, k: int, item: np.ndarray, corner: tuple, label: int, threshold: int) -> None:
  """Writes item (uint8 [s, s]) at corner (y, x) of scene i as its k-th: pixels, mask, tight box, class."""
  y, x = corner
  visible = item > threshold
  rows, cols = np.flatnonzero(visible.any(axis=1)), np.flatnonzero(visible.any(axis=0))
  out['image'][i, y:y + len(item), x:x + len(item), 0] = item
  out['mask'][i, y:y + len(item), x:x + len(item)] = visible * np.uint8(label + 1)
  out['boxes'][i, k] = x + cols[0], y + rows[0], x + cols[-1] + 1, y + rows[-1] + 1
  out['classes'][i, k] = label
  out['box_mask'][i, k] = True
