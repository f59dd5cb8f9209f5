"""Semantic segmentation: a class per pixel, scored by pixel accuracy and IoU from a confusion matrix.

The model gives logits [B, H, W, K] for masks [B, H, W] of class indices (MASK_IGNORE: not counted); a
model with unpadded convolutions (U-Net's 'VALID') is scored on the centre of the mask its output covers.
The loss is the per-pixel softmax cross-entropy averaged over an example's labelled pixels, plus
`dice_weight` times the soft Dice loss (1 - mean over classes of 2|P.T| / (|P| + |T|)), as used with U-Nets.

Metrics add up exactly over batches and devices as a K x K confusion matrix (rows: true class, columns:
predicted) over the whole split; IoU_k = C_kk / (row_k + column_k - C_kk), mIoU the mean over classes
that occur in the truth or the predictions (scenic's and VOC's convention), never a mean of per-batch IoUs.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnets.data.specs import MASK_IGNORE
from jaxnets.tasks.base import Headline, Task


class Segmentation(Task):
  """Logits [B, H, W, K] against masks [B, H, W]."""
  target = 'mask'
  headline = Headline('miou', higher_is_better=True)

  def __init__(self, classes: tuple, dice_weight: float = 0.0):
    if dice_weight < 0:
      raise ValueError(f'task.dice_weight={dice_weight} must be >= 0')
    self.classes, self.dice_weight = classes, dice_weight

  def _labels(self, outputs, batch):
    """(labels with ignored pixels as class 0, 0/1 weight of each pixel), checked against the logits."""
    mask = center_crop(batch['mask'], outputs.shape[1:3]).astype(jnp.int32)
    valid = mask != MASK_IGNORE
    return jnp.where(valid, mask, 0), valid.astype(jnp.float32)

  def loss(self, outputs, batch):
    """Per-example mean cross-entropy over labelled pixels, plus the weighted soft Dice loss."""
    labels, valid = self._labels(outputs, batch)
    pixels = jnp.maximum(jnp.sum(valid, axis=(1, 2)), 1.0)
    xent = jnp.sum(optax.softmax_cross_entropy_with_integer_labels(outputs, labels) * valid, axis=(1, 2))
    loss = xent / pixels
    if self.dice_weight:
      loss += self.dice_weight * self._dice_loss(outputs, labels, valid)
    return loss

  def _dice_loss(self, outputs, labels, valid):
    """1 - soft Dice per example, averaged over the classes present in its truth or (argmax) prediction."""
    k = outputs.shape[-1]
    probs = jax.nn.softmax(outputs) * valid[..., None]
    truth = jax.nn.one_hot(labels, k) * valid[..., None]
    predicted = jax.nn.one_hot(jnp.argmax(outputs, -1), k) * valid[..., None]
    overlap = jnp.sum(probs * truth, axis=(1, 2))
    total = jnp.sum(probs, axis=(1, 2)) + jnp.sum(truth, axis=(1, 2))
    present = (jnp.sum(truth + predicted, axis=(1, 2)) > 0).astype(jnp.float32)
    dice = jnp.sum(2 * overlap / jnp.maximum(total, 1e-6) * present, -1) / jnp.maximum(jnp.sum(present, -1), 1)
    return 1.0 - dice

  def predict(self, outputs, batch):
    """The most likely class of every pixel, in the mask's frame (MASK_IGNORE where a model with a
    smaller output, as U-Net's unpadded one, gives no score)."""
    predicted = jnp.argmax(outputs, -1).astype(jnp.uint8)
    (h, w), (full_h, full_w) = predicted.shape[1:], batch['mask'].shape[1:]
    top, left = (full_h - h) // 2, (full_w - w) // 2
    return {'mask': jnp.pad(predicted, ((0, 0), (top, full_h - h - top), (left, full_w - w - left)),
                            constant_values=MASK_IGNORE)}

  def metric_sums(self, outputs, batch, mask):
    """Sums over the unmasked examples: loss, count and the confusion matrix of labelled pixels."""
    labels, valid = self._labels(outputs, batch)
    k = outputs.shape[-1]
    weight = (valid * mask[:, None, None]).reshape(-1)
    truth = jax.nn.one_hot(labels.reshape(-1), k) * weight[:, None]
    predicted = jax.nn.one_hot(jnp.argmax(outputs, -1).reshape(-1), k)
    # Exact in float32 while a batch has under 2^24 pixels per cell (4M pixels of 1000 64x64 images).
    confusion = jnp.einsum('pt,pq->tq', truth, predicted, precision=jax.lax.Precision.HIGHEST)
    return {'loss': jnp.sum(self.loss(outputs, batch) * mask), 'count': jnp.sum(mask),
            'confusion': confusion}

  def metrics(self, sums):
    """Loss, pixel accuracy, mIoU and per-class IoU ('iou/<class>') from the summed confusion matrix."""
    xp = jnp if isinstance(sums['confusion'], jax.Array) else np
    confusion = sums['confusion']
    hits = xp.diagonal(confusion)
    union = confusion.sum(0) + confusion.sum(1) - hits
    iou = hits / xp.maximum(union, 1)
    present = union > 0
    out = {'loss': sums['loss'] / sums['count'],
           'pixel_accuracy': hits.sum() / xp.maximum(confusion.sum(), 1),
           'miou': xp.sum(xp.where(present, iou, 0)) / xp.maximum(present.sum(), 1)}
    out.update({f'iou/{name}': xp.where(present[i], iou[i], xp.nan) for i, name in enumerate(self.classes)})
    return out

  def train_metrics(self, outputs, batch):
    """The batch's loss and pixel accuracy (an IoU of one batch would mislead: see the module docstring)."""
    labels, valid = self._labels(outputs, batch)
    hits = jnp.sum((jnp.argmax(outputs, -1) == labels) * valid)
    return {'loss': jnp.mean(self.loss(outputs, batch)), 'pixel_accuracy': hits / jnp.maximum(jnp.sum(valid), 1)}


def center_crop(masks, size: tuple):
  """Masks [B, H, W] cropped to the centre `size` (h, w) of a model whose output is smaller than its
  input, as U-Net's unpadded convolutions give (its overlap-tile strategy); unchanged when equal."""
  (h, w), (full_h, full_w) = size, masks.shape[1:]
  if (full_h - h) % 2 or (full_w - w) % 2 or h > full_h or w > full_w:
    raise ValueError(f'segmentation logits of size {h}x{w} do not fit masks of size {full_h}x{full_w}: the '
                     f'model must give one score per class for every pixel, or for a centred crop')
  top, left = (full_h - h) // 2, (full_w - w) // 2
  return masks[:, top:top + h, left:left + w]
