"""Scores of an image generator's samples that need no download, computed with jaxnets' own Fashion-MNIST
classifier (jaxnets.generative.feature_net) in place of ImageNet's Inception network: a Frechet distance
between Gaussians fitted to its features of generated and of real images (FID's recipe), an
Inception-score-style score of its predictions, and the histogram of the classes it sees.

  net = feature_net.ensure()
  reference = reference_stats(net, real_images('test'))  # Once per session.
  evaluate(net, samples, reference)  # samples: float32 [N, 28, 28, 1] in [0, 1].
"""

import jax
import numpy as np
import scipy.linalg
import scipy.special
from absl import logging

from jaxnets import data

BATCH_SIZE = 1000  # Images per call of the feature net.
SQRTM_EPS = 1e-6  # Added to both covariances' diagonals when the product's square root is singular.
IMAG_ATOL = 1e-3  # Largest imaginary part on the square root's diagonal taken for rounding error.


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
  """||mu1 - mu2||^2 + tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2)), the Frechet (2-Wasserstein) distance between
  N(mu1, cov1) and N(mu2, cov2), in float64.

  As in the reference FID code: when sqrtm of the product is not finite (singular product), SQRTM_EPS * I
  is added to both covariances; imaginary parts from rounding are dropped, and a larger one than IMAG_ATOL
  on the diagonal is a ValueError.
  """
  mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
  cov1, cov2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
  if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != mu1.shape * 2:
    raise ValueError(f'frechet_distance: means {mu1.shape}, {mu2.shape} and covariances {cov1.shape}, '
                     f'{cov2.shape} do not match')
  covmean = scipy.linalg.sqrtm(cov1 @ cov2)
  if not np.isfinite(covmean).all():
    logging.warning('frechet_distance: the covariances\' product is singular; adding %g to their diagonals',
                    SQRTM_EPS)
    offset = SQRTM_EPS * np.eye(len(mu1))
    covmean = scipy.linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=IMAG_ATOL):
      raise ValueError(f'frechet_distance: sqrtm has an imaginary part of {np.abs(covmean.imag).max():.3g}')
    covmean = covmean.real
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean))


def feature_stats(features) -> tuple[np.ndarray, np.ndarray]:
  """(mean, covariance) in float64 of features [N, D], N >= 2: the Gaussian a Frechet distance compares."""
  features = np.asarray(features, np.float64)
  if features.ndim != 2 or len(features) < 2:
    raise ValueError(f'feature_stats needs features [N >= 2, D], got shape {features.shape}')
  return features.mean(axis=0), np.cov(features, rowvar=False)


def score(probs) -> float:
  """exp(E_x KL(p(y|x) || p(y))) of predictions [N, K], p(y) their mean: the Inception Score's formula,
  from 1 (every sample predicted alike) to K (confident and balanced over the K classes).

  With the Fashion-MNIST classifier it is not comparable with published Inception Scores (ImageNet's
  Inception network, 1000 classes); here the maximum is 10. One value over all N, no splits.
  """
  probs = np.asarray(probs, np.float64)
  marginal = probs.mean(axis=0, keepdims=True)
  kl = (scipy.special.xlogy(probs, probs) - scipy.special.xlogy(probs, marginal)).sum(axis=1)
  return float(np.exp(kl.mean()))


def class_histogram(predictions, num_classes: int | None = None) -> np.ndarray:
  """The fraction of samples in each class: of the most probable class for probabilities [N, K], of the
  labels for integer labels [N] (then num_classes is needed)."""
  predictions = np.asarray(predictions)
  if predictions.ndim == 2:
    num_classes, predictions = predictions.shape[1], predictions.argmax(axis=1)
  elif num_classes is None:
    raise ValueError('class_histogram of labels [N] needs num_classes')
  return np.bincount(predictions, minlength=num_classes) / len(predictions)


def real_images(split: str = 'test', data_dir: str | None = None) -> np.ndarray:
  """A Fashion-MNIST split's images as float32 [N, 28, 28, 1] in [0, 1], the frame the feature net takes."""
  return data.load('fashion_mnist', split, data_dir)['image'].astype(np.float32) / 255.0


def net_outputs(feature_net, images, batch_size: int = BATCH_SIZE) -> tuple[np.ndarray, np.ndarray]:
  """(features, probabilities) of images [N, 28, 28, 1] in [0, 1] as numpy arrays, in batches; the last
  batch is padded, so that one compiled program serves every N."""
  images = np.asarray(images, np.float32)
  size = min(batch_size, len(images))
  features, probs = [], []
  for start in range(0, len(images), size):
    batch = images[start:start + size]
    count = len(batch)
    batch = np.concatenate([batch, np.zeros((size - count, *batch.shape[1:]), np.float32)])
    f, p = jax.device_get(feature_net.outputs(batch))
    features.append(f[:count])
    probs.append(p[:count])
  return np.concatenate(features), np.concatenate(probs)


def reference_stats(feature_net, images) -> tuple[np.ndarray, np.ndarray]:
  """feature_stats of real images (e.g. real_images('test')): computed once, compared with every sample."""
  return feature_stats(net_outputs(feature_net, images)[0])


def evaluate(feature_net, images, reference) -> dict:
  """{'frechet', 'score', 'histogram'} of generated images [N, 28, 28, 1] in [0, 1] against `reference`,
  reference_stats of real images; JSON-ready (histogram: a list of K class fractions)."""
  features, probs = net_outputs(feature_net, images)
  return {'frechet': frechet_distance(*feature_stats(features), *reference), 'score': score(probs),
          'histogram': class_histogram(probs).tolist()}
