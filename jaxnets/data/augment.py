"""Augmentation as jittable JAX functions on whole batch dicts, one key drawing every example's randomness.

The training loop keeps uint8 images on device and runs normalize, then the configured augmentations
(random_crop, random_flip, random_rotate, random_brightness) there. Each transforms the whole example:
a segmentation 'mask' moves with its image (nearest neighbour; pixels from outside are MASK_IGNORE) and
detection 'boxes' (x1, y1, x2, y2 pixels) move with it too, clipped to the image and dropped from
'box_mask' when they leave it. Image pixels from outside are 0; after normalize that is the mean.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.data.specs import MASK_IGNORE


def normalize(images: jax.Array, mean, std) -> jax.Array:
  """(images - mean) / std per channel, as float32; mean and std are in the images' [0, 255] units."""
  mean = jnp.asarray(mean, jnp.float32)
  std = jnp.asarray(std, jnp.float32)
  return (images.astype(jnp.float32) - mean) / std


def random_crop(key: jax.Array, batch: dict, pad: int = 4) -> dict:
  """Zero-pads `pad` pixels on each side and crops each example back to H x W at a random offset.

  The CIFAR augmentation of He et al. (2016). Offsets are uniform in [0, 2 * pad] on each axis. A mask
  is cropped with the image (padding unlabelled, MASK_IGNORE); boxes move with it, are clipped to the
  crop and dropped when nothing of them is left. A dynamic_slice under vmap; it measured 2-10x faster on
  CPU than one-hot matmuls or masked selects.
  """
  n, h, w, _ = batch['image'].shape
  offsets = jax.random.randint(key, (n, 2), 0, 2 * pad + 1)

  def crop(x, fill):
    padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad)) + ((0, 0),) * (x.ndim - 3), constant_values=fill)
    window = lambda image, offset: jax.lax.dynamic_slice(
        image, (offset[0], offset[1]) + (0,) * (x.ndim - 3), (h, w) + x.shape[3:])
    return jax.vmap(window)(padded, offsets)

  out = dict(batch, image=crop(batch['image'], 0))
  if 'mask' in batch:
    out['mask'] = crop(batch['mask'], MASK_IGNORE)
  if 'boxes' in batch:
    shift = (pad - offsets[:, ::-1]).astype(jnp.float32)  # (dx, dy) per example.
    out.update(_clipped(batch, batch['boxes'] + jnp.tile(shift, 2)[:, None, :], h, w))
  return out


def random_flip(key: jax.Array, batch: dict) -> dict:
  """Reverses the width axis of each example (image, mask and boxes together) with probability 1/2."""
  n, _, w, _ = batch['image'].shape
  flip = jax.random.bernoulli(key, 0.5, (n, 1, 1, 1))
  out = dict(batch, image=jnp.where(flip, batch['image'][:, :, ::-1], batch['image']))
  if 'mask' in batch:
    out['mask'] = jnp.where(flip[..., 0], batch['mask'][:, :, ::-1], batch['mask'])
  if 'boxes' in batch:
    x1, y1, x2, y2 = jnp.moveaxis(batch['boxes'], -1, 0)
    mirrored = jnp.stack([w - x2, y1, w - x1, y2], axis=-1)
    out['boxes'] = jnp.where(flip[:, :, :, 0], mirrored, batch['boxes'])
  return out


def random_rotate(key: jax.Array, batch: dict, max_degrees: float) -> dict:
  """Rotates each example about its centre by an angle uniform in [-max_degrees, max_degrees].

  Images bilinear, pixels from outside the image 0; masks nearest-neighbour, outside MASK_IGNORE;
  a box becomes the bounding box of its rotated corners, clipped to the image.
  """
  n, h, w, _ = batch['image'].shape
  angles = jnp.deg2rad(jax.random.uniform(key, (n,), minval=-max_degrees, maxval=max_degrees))
  rows, cols = jnp.meshgrid(jnp.arange(h) - (h - 1) / 2, jnp.arange(w) - (w - 1) / 2, indexing='ij')

  def rotate(image, angle, order, fill):
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    # Each output pixel samples the input at the inversely rotated position (positive angles turn the
    # image counterclockwise as displayed, as np.rot90 and PIL do).
    src_rows = cos * rows + sin * cols + (h - 1) / 2
    src_cols = -sin * rows + cos * cols + (w - 1) / 2
    channel = lambda c: jax.scipy.ndimage.map_coordinates(c, [src_rows, src_cols], order=order, cval=fill)
    return jax.vmap(channel, in_axes=2, out_axes=2)(image)

  out = dict(batch, image=jax.vmap(lambda x, a: rotate(x, a, 1, 0.0))(batch['image'], angles))
  if 'mask' in batch:
    masks = batch['mask'][..., None].astype(jnp.float32)
    rotated = jax.vmap(lambda x, a: rotate(x, a, 0, float(MASK_IGNORE)))(masks, angles)
    out['mask'] = rotated[..., 0].astype(batch['mask'].dtype)
  if 'boxes' in batch:
    out.update(_clipped(batch, _rotated_boxes(batch['boxes'], angles, h, w), h, w))
  return out


def _rotated_boxes(boxes: jax.Array, angles: jax.Array, h: int, w: int) -> jax.Array:
  """The bounding boxes of boxes [N, M, 4] turned by angles [N] about the image centre, as the pixels are."""
  x1, y1, x2, y2 = jnp.moveaxis(boxes, -1, 0)
  xs = jnp.stack([x1, x2, x1, x2], axis=-1) - w / 2  # Edge coordinates: the centre is at (w/2, h/2).
  ys = jnp.stack([y1, y1, y2, y2], axis=-1) - h / 2
  cos, sin = jnp.cos(angles)[:, None, None], jnp.sin(angles)[:, None, None]
  new_x = sin * ys + cos * xs + w / 2  # The inverse of the sampling map in `random_rotate`.
  new_y = cos * ys - sin * xs + h / 2
  return jnp.stack([new_x.min(-1), new_y.min(-1), new_x.max(-1), new_y.max(-1)], axis=-1)


def _clipped(batch: dict, boxes: jax.Array, h: int, w: int) -> dict:
  """Boxes clipped to the h x w image; a box with nothing left inside is dropped from box_mask."""
  x1, y1, x2, y2 = jnp.moveaxis(boxes, -1, 0)
  clipped = jnp.stack([jnp.clip(x1, 0, w), jnp.clip(y1, 0, h), jnp.clip(x2, 0, w), jnp.clip(y2, 0, h)], -1)
  inside = (clipped[..., 2] > clipped[..., 0]) & (clipped[..., 3] > clipped[..., 1])
  return {'boxes': clipped, 'box_mask': batch['box_mask'] & inside}


def random_brightness(key: jax.Array, batch: dict, max_delta: jax.Array) -> dict:
  """Adds to each example's image one offset per channel drawn as u * max_delta, u uniform in [-1, 1].

  `max_delta` is per channel (broadcast over H, W), in the units of the image.
  """
  images = batch['image']
  u = jax.random.uniform(key, (images.shape[0], 1, 1, 1), minval=-1.0, maxval=1.0)
  return dict(batch, image=images + u * jnp.asarray(max_delta, images.dtype))


def pad_to(batch: dict, height: int, width: int) -> dict:
  """Centres each example in a height x width frame: image padding 0, mask MASK_IGNORE, boxes shifted."""
  _, h, w, _ = batch['image'].shape
  top, left = (height - h) // 2, (width - w) // 2
  pads = ((0, 0), (top, height - h - top), (left, width - w - left))
  out = dict(batch, image=jnp.pad(batch['image'], pads + ((0, 0),)))
  if 'mask' in batch:
    out['mask'] = jnp.pad(batch['mask'], pads, constant_values=MASK_IGNORE)
  if 'boxes' in batch:
    out['boxes'] = batch['boxes'] + jnp.array([left, top, left, top], jnp.float32)
  return out


def channel_stats(images: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
  """Per-channel mean and std of uint8 images [N, H, W, C] in [0, 255], summed in float64 chunks."""
  total = np.zeros(images.shape[-1])
  total_sq = np.zeros(images.shape[-1])
  for start in range(0, len(images), chunk):
    block = images[start:start + chunk].astype(np.float64)
    total += block.sum(axis=(0, 1, 2))
    total_sq += np.square(block).sum(axis=(0, 1, 2))
  count = images.size // images.shape[-1]
  mean = total / count
  std = np.sqrt(total_sq / count - np.square(mean))
  return mean.astype(np.float32), std.astype(np.float32)
