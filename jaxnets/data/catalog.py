"""Every dataset jaxnets knows: TFDS datasets with the example maps that give them fixed shapes, the
offline Fashion-MNIST scenes composed for segmentation and detection, and the sequence datasets
(jaxnets.data.sequences).
"""

import numpy as np

from jaxnets.data import scenes, sequences
from jaxnets.data.source import Tfds, load, select_split
from jaxnets.data.specs import (CELEBA_SIZE, CIFAR10_CLASSES, FASHION_MNIST_CLASSES, MASK_IGNORE, PETS_SIZE,
                                VOC_CLASSES, VOC_MAX_BOXES, VOC_SIZE, DatasetSpec, image_classes, numbered,
                                register)

# TFDS celeb_a's 40 attribute names in sorted order, the order of the 40 targets.
CELEBA_ATTRIBUTES = (
    '5_o_Clock_Shadow', 'Arched_Eyebrows', 'Attractive', 'Bags_Under_Eyes', 'Bald', 'Bangs', 'Big_Lips',
    'Big_Nose', 'Black_Hair', 'Blond_Hair', 'Blurry', 'Brown_Hair', 'Bushy_Eyebrows', 'Chubby',
    'Double_Chin', 'Eyeglasses', 'Goatee', 'Gray_Hair', 'Heavy_Makeup', 'High_Cheekbones', 'Male',
    'Mouth_Slightly_Open', 'Mustache', 'Narrow_Eyes', 'No_Beard', 'Oval_Face', 'Pale_Skin', 'Pointy_Nose',
    'Receding_Hairline', 'Rosy_Cheeks', 'Sideburns', 'Smiling', 'Straight_Hair', 'Wavy_Hair',
    'Wearing_Earrings', 'Wearing_Hat', 'Wearing_Lipstick', 'Wearing_Necklace', 'Wearing_Necktie', 'Young')
PETS_BREEDS = 37
# Scenes: canvas side, items per scene, item sides in pixels, and how many scenes each split holds.
SCENES_CANVAS, SCENES_MAX_ITEMS, SCENES_MIN_SIZE, SCENES_MAX_SIZE = 64, 4, 14, 28
SCENES_SPLITS = {'train': ('train', 20000, 0), 'test': ('test', 2000, 1)}  # split: (source split, count, seed)


def _uint8_image(image):
  """A float image rounded and clipped back to uint8 (inside tf.data)."""
  import tensorflow as tf  # noqa: PLC0415 (TFDS's tf.data map functions run in TensorFlow).
  return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def celeba_example(example: dict) -> dict:
  """A 64x64x3 centre crop of the face and its 40 binary attributes in sorted-name order."""
  import tensorflow as tf  # noqa: PLC0415
  image = tf.image.crop_to_bounding_box(example['image'], 20, 0, 178, 178)
  image = tf.image.resize(image, (CELEBA_SIZE, CELEBA_SIZE), antialias=True)
  attributes = example['attributes']
  return {'image': _uint8_image(image),
          'label': tf.stack([tf.cast(attributes[k], tf.int32) for k in sorted(attributes)])}


def imagenet_example(example: dict) -> dict:
  """(224x224x3 uint8 centre crop of the image resized to a shorter side of 256, label): the paper's
  test-time view (He et al. 2016, Sec. 3.4), stored once so that training can crop and flip on device."""
  import tensorflow as tf  # noqa: PLC0415
  image = example['image']
  shape = tf.cast(tf.shape(image)[:2], tf.float32)
  size = tf.cast(tf.round(shape * 256.0 / tf.reduce_min(shape)), tf.int32)
  image = tf.image.resize(image, size, antialias=True)
  return {'image': _uint8_image(tf.image.resize_with_crop_or_pad(image, 224, 224)), 'label': example['label']}


def pets_example(example: dict) -> dict:
  """A 128x128 pet photo and its mask: background 0, pet 1, the trimap's border band ignored; the breed."""
  import tensorflow as tf  # noqa: PLC0415
  image = tf.image.resize(example['image'], (PETS_SIZE, PETS_SIZE), antialias=True)
  trimap = tf.image.resize(example['segmentation_mask'], (PETS_SIZE, PETS_SIZE), method='nearest')[..., 0]
  # The trimap says 1 pet, 2 background, 3 border (left unlabelled, as any other value).
  mask = tf.where(trimap == 1, tf.constant(1, tf.uint8),
                  tf.where(trimap == 2, tf.constant(0, tf.uint8), tf.constant(MASK_IGNORE, tf.uint8)))
  return {'image': _uint8_image(image), 'mask': mask, 'label': example['label']}


def voc_example(example: dict) -> dict:
  """A 256x256 VOC image and its objects' boxes (x1, y1, x2, y2 pixels) and classes, padded to 42."""
  import tensorflow as tf  # noqa: PLC0415
  image = tf.image.resize(example['image'], (VOC_SIZE, VOC_SIZE), antialias=True)
  objects = example['objects']
  count = tf.minimum(tf.minimum(tf.shape(objects['bbox'])[0], tf.shape(objects['label'])[0]), VOC_MAX_BOXES)
  bbox = objects['bbox'][:count]  # TFDS: normalized (ymin, xmin, ymax, xmax).
  boxes = tf.stack([bbox[:, 1], bbox[:, 0], bbox[:, 3], bbox[:, 2]], axis=-1) * VOC_SIZE
  pad = [[0, VOC_MAX_BOXES - count]]
  return {'image': _uint8_image(image),
          'boxes': tf.pad(boxes, pad + [[0, 0]]),
          'classes': tf.pad(tf.cast(objects['label'][:count], tf.int32), pad),
          'box_mask': tf.pad(tf.ones([count], tf.bool), pad)}


def detection_features(image_shape: tuple, max_boxes: int) -> dict:
  """The features of a detection example with at most `max_boxes` objects."""
  return {'image': (image_shape, np.uint8), 'boxes': ((max_boxes, 4), np.float32),
          'classes': ((max_boxes,), np.int32), 'box_mask': ((max_boxes,), np.bool_)}


def fashion_scenes(dataset_spec, split: str, data_dir: str) -> dict[str, np.ndarray]:
  """Scenes of 1-4 Fashion-MNIST items: train scenes from Fashion-MNIST's train split, test scenes from
  its test split only. A TFDS split string selects examples ('train[:1000]', 'test[50%:]')."""
  del dataset_spec
  sizes = {name: count for name, (_, count, _) in SCENES_SPLITS.items()}
  return select_split(split, sizes, lambda name: _scenes_split(name, data_dir))


def fashion_scene_items(dataset_spec, split: str, data_dir: str) -> dict[str, np.ndarray]:
  """The items of the scenes of `split`, each cut out by its box and resized to 28x28, with its class."""
  return scenes.items(load('fashion_scenes', split, data_dir))


def _scenes_split(name: str, data_dir: str) -> dict[str, np.ndarray]:
  """A whole scenes split, composed from its Fashion-MNIST split (about 1.5 s for 20,000; load() caches
  the split it is asked for, so two split strings of one split compose it twice)."""
  source_split, count, seed = SCENES_SPLITS[name]
  items = load('fashion_mnist', source_split, data_dir)
  return scenes.compose(items['image'], items['label'], count, seed, canvas=SCENES_CANVAS,
                        max_items=SCENES_MAX_ITEMS, min_size=SCENES_MIN_SIZE, max_size=SCENES_MAX_SIZE)


for _spec in (
    DatasetSpec('cifar10', *image_classes((32, 32, 3), CIFAR10_CLASSES), 'train', 'test', Tfds('cifar10')),
    DatasetSpec('cifar100', *image_classes((32, 32, 3), numbered(100)), 'train', 'test', Tfds('cifar100')),
    DatasetSpec('mnist', *image_classes((28, 28, 1), numbered(10)), 'train', 'test', Tfds('mnist')),
    DatasetSpec('fashion_mnist', *image_classes((28, 28, 1), FASHION_MNIST_CLASSES), 'train', 'test',
                Tfds('fashion_mnist')),
    DatasetSpec('imagenet2012', *image_classes((224, 224, 3), numbered(1000)), 'train', 'validation',
                Tfds('imagenet2012', imagenet_example, on_disk=True)),  # 1.28M x 224x224x3 bytes = 193 GB.
    DatasetSpec('celeb_a', {'image': ((CELEBA_SIZE, CELEBA_SIZE, 3), np.uint8), 'label': ((40,), np.int32)},
                {'label': CELEBA_ATTRIBUTES}, 'train', 'test', Tfds('celeb_a', celeba_example)),
    DatasetSpec('oxford_iiit_pet',
                {'image': ((PETS_SIZE, PETS_SIZE, 3), np.uint8), 'mask': ((PETS_SIZE, PETS_SIZE), np.uint8),
                 'label': ((), np.int32)},
                {'mask': ('background', 'pet'), 'label': numbered(PETS_BREEDS)}, 'train', 'test',
                Tfds('oxford_iiit_pet', pets_example)),
    DatasetSpec('voc', detection_features((VOC_SIZE, VOC_SIZE, 3), VOC_MAX_BOXES), {'classes': VOC_CLASSES},
                'train+validation', 'test', Tfds('voc/2007', voc_example)),
    DatasetSpec('fashion_scenes',
                {**detection_features((SCENES_CANVAS, SCENES_CANVAS, 1), SCENES_MAX_ITEMS),
                 'mask': ((SCENES_CANVAS, SCENES_CANVAS), np.uint8)},
                {'mask': ('background',) + FASHION_MNIST_CLASSES, 'classes': FASHION_MNIST_CLASSES},
                'train', 'test', fashion_scenes),
    DatasetSpec('fashion_scene_items', *image_classes((28, 28, 1), FASHION_MNIST_CLASSES), 'train', 'test',
                fashion_scene_items),
    *sequences.SPECS,
):
  register(_spec)
