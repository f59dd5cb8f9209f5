"""Box geometry for detection, pure and jittable: IoU, CenterNet's point encoding, its heatmap, NMS.

Boxes are (x1, y1, x2, y2) in input pixels with exclusive right/bottom edges (pixel i spans [i, i + 1)),
so a box's width is x2 - x1. A CenterNet (Zhou et al. 2019, "Objects as Points") at output stride R
predicts, in the output cell holding a box's centre, a class score peak, the centre's sub-cell offset
and the box size; `encode` / `decode` convert between the two descriptions.
"""

import jax
import jax.numpy as jnp


def area(boxes):
  """Area of [..., 4] boxes (0 for empty or inverted ones)."""
  return jnp.maximum(boxes[..., 2] - boxes[..., 0], 0) * jnp.maximum(boxes[..., 3] - boxes[..., 1], 0)


def pairwise_iou(a, b):
  """IoU of every box in a [N, 4] with every box in b [M, 4]: [N, M] (0 where both are empty)."""
  low = jnp.maximum(a[:, None, :2], b[None, :, :2])
  high = jnp.minimum(a[:, None, 2:], b[None, :, 2:])
  inter = jnp.prod(jnp.maximum(high - low, 0), axis=-1)
  union = area(a)[:, None] + area(b)[None, :] - inter
  return jnp.where(union > 0, inter / jnp.where(union > 0, union, 1), 0)


def encode(boxes, stride: float):
  """[..., 4] boxes -> (cell, offset, size), each [..., 2] in (x, y) order, at output stride `stride`.

  cell = floor(centre / stride) is the output cell holding the box centre (int32), offset = centre /
  stride - cell in [0, 1) its position inside that cell, and size = (width, height) in input pixels.
  """
  centre = (boxes[..., :2] + boxes[..., 2:]) / 2 / stride
  cell = jnp.floor(centre)
  return cell.astype(jnp.int32), centre - cell, boxes[..., 2:] - boxes[..., :2]


def decode(cell, offset, size, stride: float):
  """The inverse of `encode`: boxes [..., 4] centred at (cell + offset) * stride with size (w, h)."""
  centre = (cell + offset) * stride
  return jnp.concatenate([centre - size / 2, centre + size / 2], axis=-1)


def gaussian_radius(height, width, min_overlap: float = 0.7):
  """CenterNet's heatmap radius for a box of this size, as its code computes it (jittable).

  The formula is `gaussian_radius` in CenterNet's `src/lib/utils/image.py`, inherited from CornerNet
  (Law & Deng 2018): the smallest of three quadratic roots, one for each way the two corners of a box can
  move (one in and one out, both in, both out) while its IoU with the true box stays >= min_overlap.
  Reproduced as written, slips included (r1 and r2 take the larger root, r2 and r3 divide by 2 instead of
  2a, as discussed in both projects' issue trackers), since the paper's heatmaps and results come from it.
  """
  a1, b1 = 1, height + width
  c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
  r1 = (b1 + jnp.sqrt(b1 ** 2 - 4 * a1 * c1)) / 2
  a2, b2 = 4, 2 * (height + width)
  c2 = (1 - min_overlap) * width * height
  r2 = (b2 + jnp.sqrt(b2 ** 2 - 4 * a2 * c2)) / 2
  a3, b3 = 4 * min_overlap, -2 * min_overlap * (height + width)
  c3 = (min_overlap - 1) * width * height
  r3 = (b3 + jnp.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
  return jnp.minimum(jnp.minimum(r1, r2), r3)


def heatmap_target(boxes, classes, mask, shape: tuple, num_classes: int, stride: float,
                   min_overlap: float = 0.7):
  """One example's CenterNet heatmap [h, w, num_classes] for boxes [M, 4], classes [M] and mask [M].

  As the paper's `draw_umich_gaussian`: each real box (its centre inside the image) puts
  exp(-(dx^2 + dy^2) / (2 sigma^2)) on the cells within `radius` (Chebyshev distance) of its centre cell,
  sigma = (2 radius + 1) / 6, radius = floor(gaussian_radius(ceil(h / stride), ceil(w / stride))); a
  class channel takes the maximum over its boxes. So the value is exactly 1 at every centre cell and
  below 1 elsewhere. (The code's zeroing of values under float eps never applies: every value in the
  window is above exp(-9).)
  """
  cell, _, size = encode(boxes, stride)
  out_w, out_h = jnp.ceil(size[:, 0] / stride), jnp.ceil(size[:, 1] / stride)
  radius = jnp.maximum(jnp.floor(gaussian_radius(out_h, out_w, min_overlap)), 0)
  sigma = (2 * radius + 1) / 6
  dx = (jnp.arange(shape[1]) - cell[:, :1])[:, None, :]  # [M, 1, w]
  dy = (jnp.arange(shape[0]) - cell[:, 1:])[:, :, None]  # [M, h, 1]
  near = (jnp.maximum(jnp.abs(dx), jnp.abs(dy)) <= radius[:, None, None]) & mask[:, None, None]
  gauss = jnp.where(near, jnp.exp(-(dx ** 2 + dy ** 2) / (2 * sigma[:, None, None] ** 2)), 0)  # [M, h, w]
  one_hot = jax.nn.one_hot(classes, num_classes, dtype=jnp.bool_)  # [M, C]
  return jnp.max(jnp.where(one_hot[:, None, None, :], gauss[..., None], 0), axis=0, initial=0.0)


def class_nms(boxes, scores, classes, valid, iou_threshold: float):
  """Keep mask [K] of class-wise non-maximum suppression over K candidates (jittable).

  In order of decreasing score, a candidate is kept if it is valid and no kept candidate of the same
  class overlaps it with IoU > iou_threshold; a suppressed candidate suppresses nothing.
  """
  order = jnp.argsort(-jnp.asarray(scores), stable=True)
  boxes, classes, valid = (jnp.asarray(v)[order] for v in (boxes, classes, valid))
  suppresses = (pairwise_iou(boxes, boxes) > iou_threshold) & (classes[:, None] == classes[None, :])

  def visit(i, keep):
    # Only candidates before i can be kept yet, so this looks at higher-scored ones alone.
    return keep.at[i].set(valid[i] & ~jnp.any(keep & suppresses[i]))

  keep = jax.lax.fori_loop(0, scores.shape[0], visit, jnp.zeros(scores.shape, jnp.bool_))
  return jnp.zeros_like(keep).at[order].set(keep)
