"""Autoencoders and VAEs: the KL term against its closed form and a Monte Carlo estimate, reparameterized
samples' moments, tied weights, denoising, sparsity penalties and reconstruction metrics by hand, the [0, 1]
normalizations, and a real train step, eval and checkpoint for every autoencoder model on Fashion-MNIST.
"""

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy import stats

from experiments.configs import default
from jaxnets import models, tasks
from jaxnets.data.preprocess import Preprocess
from jaxnets.models import autoencoder
from jaxnets.train import builder
from jaxnets.train.loop import train_and_evaluate

RNGS = {'params': jax.random.key(0), 'dropout': jax.random.key(1), 'sample': jax.random.key(2)}


def _images(n=4, shape=(8, 8, 1), seed=0):
  return jax.random.uniform(jax.random.key(seed), (n,) + shape)


def _dense_encoder(params, x):
  """A dense VAE's (mean, log_var) computed by hand from its parameters (numpy, float64)."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params['encoder'])
  h = np.asarray(x, np.float64).reshape(len(x), -1)
  h = np.maximum(h @ p['dense0']['kernel'] + p['dense0']['bias'], 0)
  return h @ p['code']['kernel'] + p['code']['bias'], h @ p['log_var']['kernel'] + p['log_var']['bias']


def test_vae_kl_is_the_closed_form_and_agrees_with_monte_carlo():
  model = models.create('vae', hidden=(16,), code=3)
  x = _images()
  variables = model.init(RNGS, x)
  out = model.apply(variables, x, rngs={'sample': jax.random.key(3)})
  mean, log_var = _dense_encoder(variables['params'], x)
  sigma = np.exp(0.5 * log_var)
  # KL(N(m, s^2) || N(0, 1)) = log(1/s) + (s^2 + m^2 - 1) / 2 per unit, summed.
  closed = np.sum(-np.log(sigma) + (sigma ** 2 + mean ** 2 - 1) / 2, -1)
  np.testing.assert_allclose(out['kl'], closed, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out['code'], mean, rtol=1e-5, atol=1e-6)
  # E_q[log q(z) - log p(z)] by sampling, with scipy's densities.
  z = mean + sigma * np.random.default_rng(0).standard_normal((200_000,) + mean.shape)
  estimate = np.mean(np.sum(stats.norm.logpdf(z, mean, sigma) - stats.norm.logpdf(z), -1), 0)
  np.testing.assert_allclose(estimate, closed, atol=0.02)


def test_reparameterized_samples_have_the_posterior_mean_and_variance():
  mean = jnp.array([0.5, -2.0, 3.0])
  log_var = jnp.array([0.0, np.log(0.25), np.log(4.0)])
  z = jax.vmap(lambda k: autoencoder.reparameterize(k, mean, log_var))(jax.random.split(jax.random.key(0), 100_000))
  np.testing.assert_allclose(z.mean(0), mean, atol=0.02)
  np.testing.assert_allclose(z.var(0), np.exp(log_var), rtol=0.02)


def test_tied_decoder_uses_the_encoder_kernels_transposed():
  x = _images()
  tied = models.create('autoencoder', hidden=(16,), code=4, tied=True)
  variables = tied.init(RNGS, x)
  p = variables['params']
  assert set(p['decoder']) == {'bias0', 'bias1'}  # Only biases of its own.
  # 64*16+16 + 16*4+4 (encoder) + 16+64 (decoder biases), against 2x the kernels untied.
  assert sum(a.size for a in jax.tree.leaves(p)) == 64 * 16 + 16 + 16 * 4 + 4 + 16 + 64
  e = jax.tree.map(np.asarray, p['encoder'])
  code = np.maximum(x.reshape(4, -1) @ e['dense0']['kernel'] + e['dense0']['bias'], 0) @ e['code']['kernel'] + \
      e['code']['bias']
  h = np.maximum(code @ e['code']['kernel'].T + p['decoder']['bias1'], 0)
  logits = h @ e['dense0']['kernel'].T + p['decoder']['bias0']
  np.testing.assert_allclose(tied.apply(variables, x)['logits'].reshape(4, -1), logits, rtol=1e-5, atol=1e-5)


def test_denoising_corrupts_the_input_in_training_only():
  x = _images()
  model = models.create('autoencoder', hidden=(16,), code=4, input_noise=0.5)
  clean = models.create('autoencoder', hidden=(16,), code=4)
  variables = model.init(RNGS, x)
  train = model.apply(variables, x, train=True, rngs={'dropout': jax.random.key(5)}, mutable=['losses'])[0]
  np.testing.assert_array_equal(model.apply(variables, x)['logits'], clean.apply(variables, x)['logits'])
  assert not np.allclose(train['logits'], clean.apply(variables, x)['logits'], atol=1e-3)
  twice = model.apply(variables, x, train=True, rngs={'dropout': jax.random.key(5)}, mutable=['losses'])[0]
  np.testing.assert_array_equal(train['logits'], twice['logits'])  # Same key, same corruption.


@pytest.mark.parametrize('kind', ['l1', 'kl'])
def test_sparsity_penalty_by_hand(kind):
  x = _images()
  model = models.create('autoencoder', hidden=(16,), code=6, sparsity=kind, sparsity_weight=0.3,
                        sparsity_target=0.1)
  variables = model.init(RNGS, x)
  out, sown = model.apply(variables, x, train=True, rngs={'dropout': jax.random.key(0)}, mutable=['losses'])
  code = np.asarray(out['code'], np.float64)
  penalty = np.asarray(sown['losses']['sparsity'][0])
  if kind == 'l1':
    np.testing.assert_allclose(penalty, 0.3 * np.abs(code).sum(-1), rtol=1e-5)
  else:
    assert np.all((code > 0) & (code < 1))  # A sigmoid code.
    q = code.mean(0)
    expected = 0.3 * np.sum(0.1 * np.log(0.1 / q) + 0.9 * np.log(0.9 / (1 - q)))
    np.testing.assert_allclose(penalty, expected, rtol=1e-5)


def test_bad_settings_are_one_line_errors():
  x = _images()
  with pytest.raises(ValueError, match=r"model.sparsity='dense' is not one of"):
    models.create('autoencoder', sparsity='dense').init(RNGS, x)
  with pytest.raises(ValueError, match='tied=True ties a dense'):
    models.create('conv_autoencoder', tied=True).init(RNGS, x)
  with pytest.raises(ValueError, match='sides divide by 8'):
    models.create('conv_autoencoder', widths=(4, 4, 4)).init(RNGS, _images(shape=(12, 12, 1)))


def test_reconstruction_metrics_by_hand():
  task = tasks.create('reconstruction', ())
  image = np.array([[[[0.0], [1.0]]], [[[0.25], [0.5]]], [[[1.0], [1.0]]]], np.float32)  # [3, 1, 2, 1]
  logits = np.array([[[[0.0], [2.0]]], [[[-1.0], [1.0]]], [[[3.0], [3.0]]]], np.float32)
  kl = np.array([1.0, 2.0, 3.0], np.float32)
  mask = np.array([1.0, 1.0, 0.0], np.float32)
  outputs = {'logits': logits, 'code': np.zeros((3, 1)), 'kl': kl}
  metrics = task.metrics(task.metric_sums(outputs, {'image': image}, mask))
  sig = lambda v: 1 / (1 + np.exp(-v))
  bce = lambda y, z: -(y * np.log(sig(z)) + (1 - y) * np.log(1 - sig(z)))
  per_image_bce = [bce(0, 0) + bce(1, 2), bce(0.25, -1) + bce(0.5, 1)]
  squared = [sig(0) ** 2 + (sig(2) - 1) ** 2, (sig(-1) - 0.25) ** 2 + (sig(1) - 0.5) ** 2]
  np.testing.assert_allclose(metrics['bce'], np.mean(per_image_bce), rtol=1e-5)
  np.testing.assert_allclose(metrics['mse'], np.sum(squared) / 4, rtol=1e-5)
  np.testing.assert_allclose(metrics['kl'], 1.5, rtol=1e-6)
  np.testing.assert_allclose(metrics['neg_elbo'], np.mean(per_image_bce) + 1.5, rtol=1e-5)
  np.testing.assert_allclose(metrics['loss'], metrics['neg_elbo'], rtol=1e-6)  # Bernoulli loss + KL.
  mse_task = tasks.create('reconstruction', (), loss='mse')
  np.testing.assert_allclose(mse_task.loss(outputs, {'image': image})[:2], np.array(squared) + kl[:2], rtol=1e-5)
  with pytest.raises(ValueError, match="task.loss='l2' is not one of bernoulli, mse"):
    tasks.create('reconstruction', (), loss='l2')


def test_unit_and_binary_normalization():
  images = np.array([0, 100, 128, 255], np.uint8).reshape(1, 2, 2, 1)
  cfg = default.get_config().data
  cfg.normalize = 'unit'
  unit = Preprocess.from_config(cfg, None).eval({'image': images})['image']
  np.testing.assert_allclose(unit.ravel(), [0, 100 / 255, 128 / 255, 1], rtol=1e-6)
  cfg.normalize = 'binary'
  binary = Preprocess.from_config(cfg, None).eval({'image': images})['image']
  np.testing.assert_array_equal(binary.ravel(), [0, 0, 1, 1])  # 128/255 > 0.5 > 100/255.
  cfg.normalize = 'minmax'
  with pytest.raises(ValueError, match="data.normalize='minmax' is not one of standard, unit, binary"):
    Preprocess.from_config(cfg, None)


def _config(model: dict, normalize: str = 'unit') -> ml_collections.ConfigDict:
  """Two steps of `model` on a little real Fashion-MNIST, evaluated and checkpointed at step 2."""
  c = default.get_config()
  c.task = ml_collections.ConfigDict({'name': 'reconstruction'})
  c.model = ml_collections.ConfigDict(model)
  c.data.update({'normalize': normalize, 'augment': '', 'batch_size': 8, 'eval_batch_size': 16,
                 'train_split': 'train[:64]', 'test_split': 'test[:16]', 'train_eval_examples': 16,
                 'test_curve_examples': 16})
  c.optimizer.name = 'adam'
  c.optimizer.lr = 1e-3
  c.optimizer.weight_decay = 0.0
  c.optimizer.schedule.name = 'constant'
  c.train.update({'steps': 2, 'log_every': 1, 'eval_every': 2, 'checkpoint_every': 2})
  return c


MODELS = {
    'autoencoder': {'name': 'autoencoder', 'hidden': (16, 8), 'code': 4, 'tied': True},
    'conv_autoencoder': {'name': 'conv_autoencoder', 'widths': (4, 8), 'code': 4, 'input_noise': 0.2},
    'sparse': {'name': 'autoencoder', 'hidden': (16,), 'code': 8, 'sparsity': 'kl', 'sparsity_weight': 0.1},
    'vae': {'name': 'vae', 'hidden': (16,), 'code': 2},
    'conv_vae': {'name': 'conv_vae', 'widths': (4, 8), 'code': 2},
}


@pytest.mark.parametrize('name', list(MODELS))
def test_trains_evaluates_and_checkpoints(name, tmp_path):
  summary = train_and_evaluate(_config(MODELS[name]), str(tmp_path))
  assert summary['steps'] == 2 and np.isfinite(summary['test_mse'])
  assert os.listdir(tmp_path / 'checkpoints') == ['2']
  with np.load(tmp_path / 'predictions.npz') as saved:
    assert saved['predicted_image'].shape == saved['image'].shape and saved['predicted_image'].dtype == np.uint8
    assert saved['predicted_code'].shape[1] == MODELS[name]['code']
    assert ('predicted_sample' in saved) == name.endswith('vae')
  if name.endswith('vae'):
    assert summary['test_neg_elbo'] == pytest.approx(summary['test_bce'] + summary['test_kl'])
    records = [json.loads(line) for line in open(tmp_path / 'metrics.jsonl')]
    assert any('train/kl' in r for r in records)


def test_vae_evaluation_is_reproducible(tmp_path):
  first = train_and_evaluate(_config(MODELS['vae'], 'binary'), str(tmp_path / 'a'))
  second = train_and_evaluate(_config(MODELS['vae'], 'binary'), str(tmp_path / 'b'))
  assert first['test_neg_elbo'] == second['test_neg_elbo']


def test_standard_normalization_is_refused_for_reconstruction():
  with pytest.raises(ValueError, match="set data.normalize to 'unit' or 'binary'"):
    builder.build(_config(MODELS['vae'], 'standard'))
