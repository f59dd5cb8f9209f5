"""COCO-format detection results and their scoring by pycocotools' COCOeval (nobody re-implements AP).

Boxes arrive as (x1, y1, x2, y2) with exclusive right/bottom edges, so a COCO bbox is [x1, y1, x2 - x1,
y2 - y1]; a COCO category id is the class index + 1 and image ids count from 1. `CocoAccumulator` turns
a split's eval outputs into these records, scores them and writes the JSON files pycocotools reads.
"""

import contextlib
import io
import json
import os

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from jaxnets.tasks.base import Accumulator

# COCOeval's stats[0:3]: AP averaged over IoU thresholds .50:.05:.95, AP at IoU .50, AP at IoU .75.
AP_NAMES = ('ap', 'ap50', 'ap75')


def xywh(boxes) -> np.ndarray:
  """(x1, y1, x2, y2) boxes [N, 4] as COCO's [x, y, width, height]."""
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def categories(classes) -> list[dict]:
  """COCO categories for class names, ids from 1."""
  return [{'id': i + 1, 'name': name} for i, name in enumerate(classes)]


def ground_truth_annotations(image_id: int, boxes, classes, first_id: int) -> list[dict]:
  """COCO annotations of one image's real boxes [N, 4] and classes [N], ids first_id, first_id + 1, ...

  Annotation ids must start at 1: COCOeval records a match as the id, with 0 meaning none.
  """
  if first_id < 1:
    raise ValueError(f'COCO annotation ids start at 1, got first_id={first_id}')
  return [{'id': first_id + i, 'image_id': image_id, 'category_id': int(c) + 1, 'bbox': box.tolist(),
           'area': float(box[2] * box[3]), 'iscrowd': 0}
          for i, (box, c) in enumerate(zip(xywh(boxes), np.asarray(classes).reshape(-1)))]


def detection_results(image_id: int, boxes, scores, classes) -> list[dict]:
  """COCO results (the detections.json format) for one image's detections [N, 4], [N], [N]."""
  return [{'image_id': image_id, 'category_id': int(c) + 1, 'bbox': box.tolist(), 'score': float(s)}
          for box, s, c in zip(xywh(boxes), np.asarray(scores).reshape(-1), np.asarray(classes).reshape(-1))]


def ground_truth(image_ids, annotations: list[dict], classes) -> dict:
  """The ground_truth.json dataset: images, annotations and every class as a category."""
  return {'images': [{'id': int(i)} for i in image_ids], 'annotations': annotations,
          'categories': categories(classes)}


def evaluate(dataset: dict, detections: list[dict]) -> dict:
  """{'ap', 'ap50', 'ap75'} of `detections` against the `ground_truth` dataset, by COCOeval (iouType bbox).

  No detections at all scores 0 (COCO's loadRes cannot take an empty list). COCOeval averages over the
  categories that have ground truth; with none anywhere, AP is undefined and reported as nan. COCO's
  defaults hold: at most 100 detections per image count. pycocotools' printing is kept off stdout.
  """
  has_truth = bool(dataset['annotations'])
  if not detections:
    return {name: 0.0 if has_truth else float('nan') for name in AP_NAMES}
  with contextlib.redirect_stdout(io.StringIO()):
    truth = COCO()
    truth.dataset = dataset
    truth.createIndex()
    results = truth.loadRes([dict(d) for d in detections])  # loadRes adds fields to the dicts it gets.
    coco_eval = COCOeval(truth, results, iouType='bbox')
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
  return {name: float('nan') if stat == -1 else float(stat) for name, stat in zip(AP_NAMES, coco_eval.stats)}


def _mean_loss(sums: dict) -> dict:
  """The mean per-example loss from the summed loss and count."""
  return {'loss': sums['loss'] / sums['count']}


class CocoAccumulator(Accumulator):
  """Adds up the loss and collects every unmasked example's ground truth and kept detections as COCO records.

  `add` takes a batch's eval outputs with {'examples': {'boxes', 'scores', 'classes', 'keep', 'gt_boxes',
  'gt_classes', 'gt_mask', 'mask'}}; each example with mask 1 becomes the next image id (1, 2, ...).
  """

  def __init__(self, classes: tuple):
    super().__init__(_mean_loss)
    self.classes = classes
    self.image_ids, self.annotations, self.detections = [], [], []

  def add(self, outputs: dict) -> None:
    """One eval batch's `eval_outputs`, already on the host."""
    super().add(outputs)
    ex = {k: np.asarray(v) for k, v in outputs['examples'].items()}
    for i in np.flatnonzero(ex['mask']):
      image_id = len(self.image_ids) + 1
      self.image_ids.append(image_id)
      real, kept = ex['gt_mask'][i].astype(bool), ex['keep'][i].astype(bool)
      self.annotations += ground_truth_annotations(
          image_id, ex['gt_boxes'][i][real], ex['gt_classes'][i][real], first_id=len(self.annotations) + 1)
      self.detections += detection_results(image_id, ex['boxes'][i][kept], ex['scores'][i][kept],
                                           ex['classes'][i][kept])

  def ground_truth(self) -> dict:
    """The split's ground truth as a COCO dataset."""
    return ground_truth(self.image_ids, self.annotations, self.classes)

  def result(self) -> dict:
    """{'loss', 'ap', 'ap50', 'ap75'} over the split."""
    return super().result() | evaluate(self.ground_truth(), self.detections)

  def write(self, directory: str, split: str) -> None:
    """ground_truth.json (its 'info' naming the split) and detections.json, as pycocotools reads them."""
    os.makedirs(directory, exist_ok=True)
    truth = {'info': {'split': split}} | self.ground_truth()
    for name, content in (('ground_truth.json', truth), ('detections.json', self.detections)):
      with open(os.path.join(directory, name), 'w') as f:
        json.dump(content, f)
