"""Image augmentation as jittable JAX functions on whole batches, one key drawing every example's randomness.

The training loop keeps uint8 images on device and runs normalize, then the configured augmentations
(random_crop, random_flip, random_rotate, random_brightness) there. random_crop and random_rotate
fill with zeros in the space they are given; after normalize that is the per-channel mean.
"""

import jax
import jax.numpy as jnp
import numpy as np


def normalize(images: jax.Array, mean, std) -> jax.Array:
  """(images - mean) / std per channel, as float32; mean and std are in the images' [0, 255] units."""
  mean = jnp.asarray(mean, jnp.float32)
  std = jnp.asarray(std, jnp.float32)
  return (images.astype(jnp.float32) - mean) / std


def random_crop(key: jax.Array, images: jax.Array, pad: int = 4) -> jax.Array:
  """Zero-pads `pad` pixels on each side and crops each example back to H x W at a random offset.

  The CIFAR augmentation of He et al. (2016). Offsets are uniform in [0, 2 * pad] on each axis.
  A dynamic_slice under vmap; it measured 2-10x faster on CPU than one-hot matmuls or masked selects.
  """
  n, h, w, c = images.shape
  padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  offsets = jax.random.randint(key, (n, 2), 0, 2 * pad + 1)
  crop = lambda image, offset: jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (h, w, c))
  return jax.vmap(crop)(padded, offsets)


def random_flip(key: jax.Array, images: jax.Array) -> jax.Array:
  """Reverses the width axis of each example with probability 1/2."""
  flip = jax.random.bernoulli(key, 0.5, (images.shape[0], 1, 1, 1))
  return jnp.where(flip, images[:, :, ::-1], images)


def random_rotate(key: jax.Array, images: jax.Array, max_degrees: float) -> jax.Array:
  """Rotates each example about its centre by an angle uniform in [-max_degrees, max_degrees].

  Bilinear interpolation; pixels that come from outside the image are 0.
  """
  n, h, w, _ = images.shape
  angles = jnp.deg2rad(jax.random.uniform(key, (n,), minval=-max_degrees, maxval=max_degrees))
  rows, cols = jnp.meshgrid(jnp.arange(h) - (h - 1) / 2, jnp.arange(w) - (w - 1) / 2, indexing='ij')

  def rotate(image, angle):
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    # Each output pixel samples the input at the inversely rotated position (positive angles turn the
    # image counterclockwise as displayed, as np.rot90 and PIL do).
    src_rows = cos * rows + sin * cols + (h - 1) / 2
    src_cols = -sin * rows + cos * cols + (w - 1) / 2
    channel = lambda c: jax.scipy.ndimage.map_coordinates(c, [src_rows, src_cols], order=1, cval=0.0)
    return jax.vmap(channel, in_axes=2, out_axes=2)(image)

  return jax.vmap(rotate)(images, angles)


def random_brightness(key: jax.Array, images: jax.Array, max_delta: jax.Array) -> jax.Array:
  """Adds to each example one offset per channel drawn as u * max_delta, u uniform in [-1, 1].

  `max_delta` is per channel (broadcast over H, W), in the units of `images`.
  """
  u = jax.random.uniform(key, (images.shape[0], 1, 1, 1), minval=-1.0, maxval=1.0)
  return images + u * jnp.asarray(max_delta, images.dtype)


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
