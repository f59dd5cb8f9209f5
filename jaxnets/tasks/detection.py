"""Object detection as points (CenterNet, Zhou et al. 2019), scored by COCO AP through pycocotools.

The model gives, on an output map at stride R (R = input height / map height), {'heatmap': logits
[B, h, w, C], 'size': [B, h, w, 2], 'offset': [B, h, w, 2]}. Each object is its centre cell: the heatmap
target is 1 there in the object's class channel with a Gaussian around it (jaxnets.boxes.heatmap_target),
and the size (w, h in input pixels) and sub-cell offset are regressed at that cell only. Decoding takes
3x3 local maxima of the sigmoid heatmap as the detections, as the paper does; this module then drops the
ones under `score_threshold` and applies class-wise NMS.

Two objects whose centres fall in the same output cell, as in the paper's code: with the same class they
make one heatmap peak (one positive cell, though the losses still divide by both objects), and both
objects' size and offset targets pull on that cell's single prediction, which the L1 losses settle
between them; decoding gives one box there, so one object is missed. With different classes each has
its peak in its own channel, but the two share one size and offset, so at most one box can be right.
"""

import jax
import jax.numpy as jnp

from jaxnets import boxes
from jaxnets.nn import pooling
from jaxnets.tasks.base import Headline, Task
from jaxnets.tasks.coco import CocoAccumulator

FOCAL_ALPHA = 2  # The focal loss's exponent on the score's distance from its target (the paper's alpha).
FOCAL_BETA = 4  # The penalty reduction (1 - Y)^beta for negatives near a centre (the paper's beta).


def _at_cells(maps, cells):
  """Values of maps [B, h, w, D] at cells [B, M, 2] given as (x, y): [B, M, D]."""
  return jax.vmap(lambda m, c: m[c[:, 1], c[:, 0]])(maps, cells)


class Detection(Task):
  """CenterNet outputs against padded boxes [B, M, 4], classes [B, M] and box_mask [B, M]."""
  target = 'classes'
  headline = Headline('ap', higher_is_better=True)

  def __init__(self, classes: tuple, max_detections: int = 100, score_threshold: float = 0.05,
               nms_iou: float = 0.5, min_overlap: float = 0.7, size_weight: float = 0.1,
               offset_weight: float = 1.0):
    if max_detections < 1:
      raise ValueError(f'task.max_detections={max_detections} must be >= 1')
    if not 0 < nms_iou <= 1:
      raise ValueError(f'task.nms_iou={nms_iou} must be in (0, 1]')
    if not 0 < min_overlap < 1:
      raise ValueError(f'task.min_overlap={min_overlap} must be in (0, 1)')
    if size_weight < 0 or offset_weight < 0:
      raise ValueError(f'task.size_weight={size_weight} and task.offset_weight={offset_weight} must be >= 0')
    self.classes = classes
    self.max_detections, self.score_threshold, self.nms_iou = max_detections, score_threshold, nms_iou
    self.min_overlap, self.size_weight, self.offset_weight = min_overlap, size_weight, offset_weight

  def stride(self, outputs, batch) -> int:
    """The output stride R, input size / heatmap size, checked to be the same integer on both axes."""
    (height, width), (h, w) = batch['image'].shape[1:3], outputs['heatmap'].shape[1:3]
    if height % h or width % w or height // h != width // w:
      raise ValueError(f'a {h}x{w} heatmap is no integer-stride map of {height}x{width} images')
    return height // h

  def targets(self, outputs, batch) -> dict:
    """{'heatmap' [B, h, w, C], 'cell' [B, M, 2] as (x, y), 'offset', 'size' [B, M, 2], 'mask' [B, M]}."""
    if outputs['heatmap'].shape[-1] != len(self.classes):
      raise ValueError(f"a heatmap of {outputs['heatmap'].shape[-1]} channels for {len(self.classes)} "
                       'classes')
    stride, shape = self.stride(outputs, batch), outputs['heatmap'].shape[1:3]
    cell, offset, size = boxes.encode(batch['boxes'], stride)
    heatmap = jax.vmap(lambda *example: boxes.heatmap_target(*example, shape, len(self.classes), stride,
                                                             self.min_overlap))(
        batch['boxes'], batch['classes'], batch['box_mask'])
    return {'heatmap': heatmap, 'cell': cell, 'offset': offset, 'size': size,
            'mask': batch['box_mask'].astype(jnp.float32)}

  def loss_terms(self, outputs, batch) -> dict:
    """Per-example [B] 'heatmap_loss', 'size_loss', 'offset_loss', each over the example's objects (>= 1).

    The heatmap term is the paper's penalty-reduced focal loss: -(1 - p)^a log p at centre cells
    (target 1), -(1 - Y)^b p^a log(1 - p) elsewhere, with log p from the logits for stability (the paper
    clips p to [1e-4, 1 - 1e-4] instead). The size and offset terms are L1 distances at the objects'
    centre cells, averaged over the two coordinates as the paper's RegL1Loss does.
    """
    t = self.targets(outputs, batch)
    objects = jnp.maximum(jnp.sum(t['mask'], axis=1), 1.0)
    logits = outputs['heatmap']
    p = jax.nn.sigmoid(logits)
    positive = t['heatmap'] == 1
    focal = jnp.where(positive, -(1 - p) ** FOCAL_ALPHA * jax.nn.log_sigmoid(logits),
                      -(1 - t['heatmap']) ** FOCAL_BETA * p ** FOCAL_ALPHA * jax.nn.log_sigmoid(-logits))

    def l1(name):
      error = jnp.mean(jnp.abs(_at_cells(outputs[name], t['cell']) - t[name]), axis=-1)
      return jnp.sum(error * t['mask'], axis=1) / objects

    return {'heatmap_loss': jnp.sum(focal, axis=(1, 2, 3)) / objects, 'size_loss': l1('size'),
            'offset_loss': l1('offset')}

  def _total(self, terms: dict):
    """The per-example loss from its terms: heatmap + size_weight * size + offset_weight * offset."""
    return (terms['heatmap_loss'] + self.size_weight * terms['size_loss']
            + self.offset_weight * terms['offset_loss'])

  def loss(self, outputs, batch):
    """Per-example heatmap focal loss + size_weight * size L1 + offset_weight * offset L1."""
    return self._total(self.loss_terms(outputs, batch))

  def train_metrics(self, outputs, batch):
    """Batch means of the loss and of its three terms."""
    terms = self.loss_terms(outputs, batch)
    return {'loss': jnp.mean(self._total(terms))} | {k: jnp.mean(v) for k, v in terms.items()}

  def decode(self, outputs, stride: int) -> dict:
    """The paper's decoding plus this task's filter: {'boxes' [B, K, 4], 'scores', 'classes', 'keep' [B, K]}.

    Peaks are the sigmoid heatmap's 3x3 local maxima; the K = max_detections best over all classes and
    cells, sorted by score, become boxes from their cell's offset and size (negative sizes clipped to 0).
    keep: score >= score_threshold and not suppressed by class-wise NMS at IoU > nms_iou.
    """
    heat = jax.nn.sigmoid(outputs['heatmap'])
    batch_size, _, w, num_classes = heat.shape
    peaks = jnp.where(pooling.pool('max', heat, 3, 1, 'SAME') == heat, heat, 0)
    k = min(self.max_detections, peaks[0].size)
    scores, index = jax.lax.top_k(peaks.reshape(batch_size, -1), k)
    cls = index % num_classes
    cell = jnp.stack([index // num_classes % w, index // num_classes // w], axis=-1)
    size = jnp.maximum(_at_cells(outputs['size'], cell), 0)
    found = boxes.decode(cell, _at_cells(outputs['offset'], cell), size, stride)
    nms = jax.vmap(boxes.class_nms, in_axes=(0, 0, 0, 0, None))
    keep = nms(found, scores, cls, scores >= self.score_threshold, self.nms_iou)
    return {'boxes': found, 'scores': scores, 'classes': cls, 'keep': keep}

  def predict(self, outputs, batch):
    """Each example's decoded detections: boxes, scores, classes and which are kept."""
    return self.decode(outputs, self.stride(outputs, batch))

  def eval_outputs(self, outputs, batch, mask):
    """The loss sums and each example's decoded detections and ground truth, for COCOeval on the host."""
    decoded = self.decode(outputs, self.stride(outputs, batch))
    return {'sums': {'loss': jnp.sum(self.loss(outputs, batch) * mask), 'count': jnp.sum(mask)},
            'examples': decoded | {'gt_boxes': batch['boxes'], 'gt_classes': batch['classes'],
                                   'gt_mask': batch['box_mask'], 'mask': mask}}

  def accumulator(self) -> CocoAccumulator:
    """A fresh COCO accumulator: mean loss, AP@[.5:.95], AP50, AP75."""
    return CocoAccumulator(self.classes)
