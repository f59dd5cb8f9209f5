"""Tests of jaxnets.generative: the Frechet distance and the score against closed forms and hand
computation, then the scores of the real feature-net path on real Fashion-MNIST, checked before they are
trusted: the Frechet distance grows with noise and blur and is near zero between real splits."""

import os

import numpy as np
import pytest
import scipy.ndimage

from experiments.configs import default
from jaxnets import data
from jaxnets.data import offline
from jaxnets.generative import feature_net, scores
from jaxnets.train import loop


def _commuting_gaussians(rng, d):
  """(mu1, cov1, s1, mu2, cov2, s2): two Gaussians whose covariances share eigenvectors, eigenvalues s1, s2."""
  q, _ = np.linalg.qr(rng.normal(size=(d, d)))
  s1, s2 = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
  return rng.normal(size=d), q @ np.diag(s1) @ q.T, s1, rng.normal(size=d), q @ np.diag(s2) @ q.T, s2


def test_frechet_distance_of_commuting_gaussians_is_the_closed_form_and_symmetric():
  mu1, cov1, s1, mu2, cov2, s2 = _commuting_gaussians(np.random.default_rng(0), 8)
  # Shared eigenvectors: tr((cov1 cov2)^(1/2)) = sum sqrt(s1_i s2_i).
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
  assert scores.frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(expected, rel=1e-9)
  assert scores.frechet_distance(mu2, cov2, mu1, cov1) == pytest.approx(expected, rel=1e-9)
  # One dimension: N(0, 1) and N(3, 4) are (3 - 0)^2 + (2 - 1)^2 = 10 apart.
  assert scores.frechet_distance([0.0], [[1.0]], [3.0], [[4.0]]) == pytest.approx(10.0, rel=1e-12)


def test_frechet_distance_of_a_sample_to_itself_is_zero():
  features = np.random.default_rng(1).normal(size=(500, 16)) @ np.random.default_rng(2).normal(size=(16, 16))
  mu, cov = scores.feature_stats(features)
  np.testing.assert_allclose(mu, features.mean(0), rtol=1e-12)
  assert scores.frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-9 * np.trace(cov))


def test_a_singular_square_root_takes_the_stated_eps_fallback(monkeypatch):
  mu1, cov1, s1, mu2, cov2, s2 = _commuting_gaussians(np.random.default_rng(3), 4)
  real_sqrtm, calls = scores.scipy.linalg.sqrtm, []

  def sqrtm_failing_once(a):
    calls.append(a)
    return np.full_like(a, np.nan) if len(calls) == 1 else real_sqrtm(a)

  monkeypatch.setattr(scores.scipy.linalg, 'sqrtm', sqrtm_failing_once)
  eps = scores.SQRTM_EPS
  expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt((s1 + eps) * (s2 + eps)))
  assert scores.frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(expected, rel=1e-9)
  assert len(calls) == 2


def test_score_is_one_for_uniform_and_k_for_balanced_confident_predictions():
  assert scores.score(np.full((7, 10), 0.1)) == pytest.approx(1.0, rel=1e-12)
  for k in (4, 10):
    one_hot = np.eye(k)[np.arange(5 * k) % k]
    assert scores.score(one_hot) == pytest.approx(k, rel=1e-12)
  # Every sample certain of the same class: no diversity, score 1.
  assert scores.score(np.eye(10)[np.zeros(6, int)]) == pytest.approx(1.0, rel=1e-12)


def test_score_by_hand():
  # p(y) = [0.55, 0.45]; KL_1 = 0.9 ln(0.9/0.55) + 0.1 ln(0.1/0.45) = 0.292821,
  # KL_2 = 0.2 ln(0.2/0.55) + 0.8 ln(0.8/0.45) = 0.257971; exp(mean) = exp(0.275396) = 1.317052.
  assert scores.score([[0.9, 0.1], [0.2, 0.8]]) == pytest.approx(1.317052, abs=1e-6)


def test_class_histogram_of_probabilities_and_of_labels():
  probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.3, 0.5]])
  np.testing.assert_allclose(scores.class_histogram(probs), [0.5, 0.25, 0.25])
  np.testing.assert_allclose(scores.class_histogram(np.array([3, 3, 0, 1]), num_classes=5), [0.25, 0.25, 0, 0.5, 0])
  with pytest.raises(ValueError, match='num_classes'):
    scores.class_histogram(np.array([0, 1]))


# The real path on real data: the recipe of feature_net_config() shortened to 300 steps (~19k images, a
# third of an epoch) and scored at the end only, on 2,000 training images; the same network, so the same
# 128 features.
STEPS = 300


def _short_config():
  c = feature_net.feature_net_config()
  c.data.train_eval_examples = 2000
  default.train_for(c, steps=STEPS, log_every=100, eval_every=STEPS)
  return c


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """(data_dir, FeatureNet): real Fashion-MNIST prepared offline in a fresh data_dir, the net trained there."""
  if not os.path.isdir(offline.FASHION_MNIST_IDX_DIR):
    pytest.skip(f'Debian package dataset-fashion-mnist is not installed ({offline.FASHION_MNIST_IDX_DIR})')
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  return data_dir, feature_net.ensure(data_dir, _short_config())


def test_the_feature_net_is_trained_once_then_restored(trained, monkeypatch):
  data_dir, net = trained
  assert net.workdir == os.path.join(data_dir, 'jaxnets_feature_net', 'fashion_mnist')
  summary_file = os.path.join(net.workdir, 'summary.json')
  written = os.stat(summary_file).st_mtime_ns
  monkeypatch.setattr(loop, '_train', lambda *args: pytest.fail('the finished feature net was trained again'))
  again = feature_net.ensure(data_dir, _short_config())
  assert os.stat(summary_file).st_mtime_ns == written and again.summary == net.summary
  images = scores.real_images('test[:64]', data_dir)
  for restored, first in zip(again.outputs(images), net.outputs(images)):
    np.testing.assert_array_equal(restored, first)
  # A field added to the defaults after it was trained keeps it; a changed recipe is refused, by name.
  newer = _short_config()
  newer.data.field_added_since = 'off'
  assert feature_net.ensure(data_dir, newer).summary == net.summary
  other = _short_config()
  other.model.hidden = 64
  with pytest.raises(ValueError, match='another recipe .model.hidden: 128 -> 64'):
    feature_net.ensure(data_dir, other)


def test_the_feature_net_reads_images_in_0_1_and_its_features_are_the_penultimate_layer(trained):
  data_dir, net = trained
  test = scores.real_images('test', data_dir)
  features, probs = scores.net_outputs(net, test)
  assert features.shape == (10000, 128) and probs.shape == (10000, 10)
  # Its accuracy on [0, 1] images is the one the training loop measured on the stored uint8 images: the
  # normalization inside matches the loop's.
  labels = data.load('fashion_mnist', 'test', data_dir)['label']
  assert np.mean(probs.argmax(1) == labels) == pytest.approx(1 - net.summary['test_error'], abs=2e-4)
  assert net.summary['test_error'] < 0.2
  # The head on ReLU(features) gives the probabilities: the features are what the head reads.
  head = net.variables['params']['head']
  logits = np.maximum(features[:500], 0) @ np.asarray(head['kernel']) + np.asarray(head['bias'])
  expected = np.exp(logits - logits.max(1, keepdims=True))
  np.testing.assert_allclose(probs[:500], expected / expected.sum(1, keepdims=True), atol=1e-5)


NOISE = (0.05, 0.1, 0.2, 0.4)  # Gaussian noise std, in the [0, 1] pixel range (clipped back into it).
BLUR = (0.5, 1.0, 1.5, 2.0)  # Gaussian blur sigma, in pixels.


def test_frechet_distance_of_real_images_grows_with_noise_and_blur(trained):
  data_dir, net = trained
  reference = scores.reference_stats(net, scores.real_images('test', data_dir))
  train = scores.real_images('train[:10000]', data_dir)
  fd = lambda images: scores.frechet_distance(*scores.reference_stats(net, images), *reference)
  real = fd(train)
  rng = np.random.default_rng(0)
  noisy = [fd(np.clip(train + s * rng.normal(size=train.shape).astype(np.float32), 0, 1)) for s in NOISE]
  blurred = [fd(scipy.ndimage.gaussian_filter(train, (0, s, s, 0))) for s in BLUR]
  print(f'Frechet distance to the test split: real train {real:.3f}; noise {NOISE}: '
        f'{np.round(noisy, 3).tolist()}; blur {BLUR}: {np.round(blurred, 3).tolist()}')
  assert np.all(np.diff([real, *noisy]) > 0), noisy
  assert np.all(np.diff([real, *blurred]) > 0), blurred
  # Near zero: no more than between two disjoint halves of the test split, pure sampling error (its bias grows
  # as 1/n1 + 1/n2: twice the 10,000-vs-10,000 comparison's; measured 0.57 against 1.04), and under half
  # the mildest corruption's (noise 0.05: measured 2.58).
  halves = scores.frechet_distance(*scores.reference_stats(net, scores.real_images('test[:5000]', data_dir)),
                                   *scores.reference_stats(net, scores.real_images('test[5000:]', data_dir)))
  print(f'Frechet distance between the halves of the test split {halves:.3f}')
  assert real < halves and real < 0.5 * min(noisy[0], blurred[0])


def test_evaluate_on_real_images(trained):
  data_dir, net = trained
  reference = scores.reference_stats(net, scores.real_images('test', data_dir))
  train = scores.real_images('train[:5000]', data_dir)
  result = scores.evaluate(net, train, reference)
  features, probs = scores.net_outputs(net, train)
  assert result['frechet'] == pytest.approx(scores.frechet_distance(*scores.feature_stats(features), *reference))
  assert result['score'] == pytest.approx(scores.score(probs)) and 5 < result['score'] <= 10
  # The predicted classes' histogram is the labels' (9.2% to 10.6% each here), but for the net's errors.
  labels = scores.class_histogram(data.load('fashion_mnist', 'train[:5000]', data_dir)['label'], 10)
  print(f"score {result['score']:.3f}; histogram {np.round(result['histogram'], 3).tolist()}, labels' "
        f'{labels.tolist()}')
  assert sum(result['histogram']) == pytest.approx(1.0)
  np.testing.assert_allclose(result['histogram'], labels, atol=0.04)
