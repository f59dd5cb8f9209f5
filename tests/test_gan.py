"""The GAN: each network's step changes only its own parameters and optimizer state, the alternating step is the
discriminator's step followed by the generator's, the loss is the non-saturating one, and a run stopped
and resumed ends bit for bit like an uninterrupted one, with its samples written at every evaluation.

Runs score their samples with a short-trained feature net (the real one's recipe cut to 60 steps): these
tests check the GAN's plumbing; tests/test_generative_scores.py checks the scores themselves.
"""

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from experiments.configs import default
from jaxnets import data
from jaxnets.data import offline
from jaxnets.generative import feature_net, scores
from jaxnets.tasks import gan
from jaxnets.train import builder, sharding
from jaxnets.train.checkpoint import Checkpointer
from jaxnets.train.loop import train_and_evaluate
from jaxnets.train.step import make_train_step


def _config(steps: int = 4) -> ml_collections.ConfigDict:
  """A tiny DCGAN on a little real Fashion-MNIST, evaluated and checkpointed every 2 steps."""
  c = default.get_config()
  c.task = ml_collections.ConfigDict({'name': 'gan'})
  c.model = ml_collections.ConfigDict({'name': 'dcgan', 'latent': 8, 'width': 8})
  c.data.update({'normalize': 'unit', 'augment': '', 'batch_size': 8, 'eval_batch_size': 32,
                 'train_split': 'train[:64]', 'test_split': 'test[:64]', 'train_eval_examples': 32,
                 'test_curve_examples': 32})
  c.optimizer.update({'name': 'adam', 'lr': 2e-4, 'b1': 0.5, 'weight_decay': 0.0})
  c.optimizer.schedule.name = 'constant'
  c.train.update({'steps': steps, 'log_every': 1, 'eval_every': 2, 'checkpoint_every': 2})
  return c


@pytest.fixture(scope='module')
def judge(tmp_path_factory):
  """A feature net trained for 60 steps in a fresh data_dir, and its statistics of 500 real test images."""
  if not os.path.isdir(offline.FASHION_MNIST_IDX_DIR):
    pytest.skip(f'Debian package dataset-fashion-mnist is not installed ({offline.FASHION_MNIST_IDX_DIR})')
  config = feature_net.feature_net_config()
  default.train_for(config, steps=60, log_every=20, eval_every=60)
  config.data.train_eval_examples = config.data.test_curve_examples = 500
  net = feature_net.ensure(str(tmp_path_factory.mktemp('tfds')), config)
  return net, scores.reference_stats(net, scores.real_images('test[:500]'))


class _Only(gan.GAN):
  """The GAN task stepping one of its networks only."""

  def __init__(self, network):
    super().__init__((), 'fashion_mnist')
    self.networks = (network,)


def _step(setup, task, state, batch):
  return make_train_step(setup.model, task, setup.tx, setup.schedule, setup.config.optimizer,
                         setup.preprocess(), setup.layers)(state, batch)


def test_each_network_steps_its_own_parameters_only():
  setup = builder.build(_config())
  state = setup.init_state(sharding.data_mesh())
  batch = dict(data.load('fashion_mnist', 'train[:8]'))
  both, metrics = _step(setup, setup.task, state, batch)
  assert set(metrics['task']) == {'loss', 'd_loss', 'd_real', 'd_fake', 'g_loss'}
  for network in ('discriminator', 'generator'):
    alone, _ = _step(setup, _Only(network), state, batch)
    other = 'generator' if network == 'discriminator' else 'discriminator'
    for a, b in zip(jax.tree.leaves(alone.params[other]), jax.tree.leaves(state.params[other])):
      np.testing.assert_array_equal(a, b)  # The other network did not move...
    for a, b in zip(jax.tree.leaves(alone.opt_state[other]), jax.tree.leaves(state.opt_state[other])):
      np.testing.assert_array_equal(a, b)  # ...nor did its optimizer state.
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(alone.params[network]),
                                                        jax.tree.leaves(state.params[network])))
  # The discriminator steps first, on the same batch and key: the pair's step moves it exactly so.
  alone, _ = _step(setup, _Only('discriminator'), state, batch)
  for a, b in zip(jax.tree.leaves(alone.params['discriminator']), jax.tree.leaves(both.params['discriminator'])):
    np.testing.assert_array_equal(a, b)


def test_the_losses_are_the_cross_entropies_of_real_and_fake():
  setup = builder.build(_config())
  state = setup.init_state(sharding.data_mesh())
  batch = setup.preprocess().eval(dict(data.load('fashion_mnist', 'train[:8]')))
  variables = {'params': state.params, **state.model_state}
  key = jax.random.key(3)
  (d_loss, (d_terms, _)) = setup.task.network_loss('discriminator', setup.model.apply, variables, batch, key)
  (g_loss, (g_terms, _)) = setup.task.network_loss('generator', setup.model.apply, variables, batch, key)
  # By hand: the same samples (same key), each network's batch through BatchNorm alone, in train mode.
  fake, updates = setup.model.apply(variables, 8, train=True, method='generate', mutable=['batch_stats'],
                                    rngs={'sample': key})
  after = {**variables, **updates}
  logit = lambda v, x: setup.model.apply(v, x, train=True, method='discriminate', mutable=['batch_stats'])
  real_logits, updates = logit(after, 2 * batch['image'] - 1)
  fake_logits, _ = logit({**after, **updates}, fake)
  sigmoid = lambda x: 1 / (1 + np.exp(-np.asarray(x, np.float64)))
  expected_d = -np.mean(np.log(sigmoid(real_logits))) - np.mean(np.log(1 - sigmoid(fake_logits)))
  np.testing.assert_allclose(d_loss, expected_d, rtol=1e-5)
  np.testing.assert_allclose(d_terms['d_real'], np.mean(sigmoid(real_logits)), rtol=1e-5)
  g_logits, _ = logit(after, fake)
  np.testing.assert_allclose(g_loss, -np.mean(np.log(sigmoid(g_logits))), rtol=1e-5)  # -log D(G(z)).
  assert g_terms.keys() == {'g_loss'}


def _final(run_dir, config):
  setup = builder.build(config)
  checkpointer = Checkpointer(os.path.join(run_dir, 'checkpoints'), 2)
  state, _ = checkpointer.restore(config.train.steps, jax.tree.map(lambda s: np.zeros(s.shape, s.dtype),
                                                                   setup.abstract_state))
  checkpointer.close()
  return state


def test_a_resumed_run_ends_exactly_like_an_uninterrupted_one(judge, tmp_path, monkeypatch):
  monkeypatch.setattr(gan, '_judge', lambda data_dir: judge)
  whole = train_and_evaluate(_config(), str(tmp_path / 'whole'))
  assert train_and_evaluate(_config(), str(tmp_path / 'parts'), stop_after=2) is None
  parts = train_and_evaluate(_config(), str(tmp_path / 'parts'))
  for a, b in zip(jax.tree.leaves(_final(str(tmp_path / 'whole'), _config())),
                  jax.tree.leaves(_final(str(tmp_path / 'parts'), _config()))):
    np.testing.assert_array_equal(a, b)
  assert {k: v for k, v in whole.items() if k != 'wall_seconds'} == \
      {k: v for k, v in parts.items() if k != 'wall_seconds'}
  assert whole['test_frechet'] > 0 and 1 <= whole['test_score'] <= 10
  assert sorted(os.listdir(tmp_path / 'whole' / 'samples')) == ['step2.npz', 'test.npz']
  with np.load(tmp_path / 'whole' / 'samples' / 'test.npz') as saved:
    assert saved['samples'].shape == (gan.SAVED_SAMPLES, 28, 28, 1) and saved['samples'].dtype == np.uint8
    assert saved['histogram'].sum() == pytest.approx(1.0)
  records = [json.loads(line) for line in open(tmp_path / 'whole' / 'metrics.jsonl')]
  assert any('test/frechet' in r for r in records) and any('train/g_loss' in r for r in records)


def test_gan_settings_that_cannot_work_are_refused():
  c = _config()
  c.optimizer.param_groups = 'generator/.*=0.1'
  with pytest.raises(ValueError, match='parameter groups are not supported there'):
    builder.build(c)
  c = _config()
  c.data.name = 'cifar10'
  with pytest.raises(ValueError, match="data.name='cifar10' is not fashion_mnist"):
    builder.build(c)
  with pytest.raises(ValueError, match=r'model.image_shape=\(28, 28, 1\) but the images are \(32, 32, 1\)'):
    gan_model = builder.build(_config()).model
    gan_model.init({'params': jax.random.key(0), 'sample': jax.random.key(1)}, jnp.zeros((1, 32, 32, 1)))


def test_a_bfloat16_step_keeps_float32_parameters():
  c = _config()
  c.train.compute_dtype = 'bfloat16'
  setup = builder.build(c)
  state = setup.init_state(sharding.data_mesh())
  step = make_train_step(setup.model, setup.task, setup.tx, setup.schedule, c.optimizer, setup.preprocess(),
                         setup.layers, compute_dtype='bfloat16')
  new, metrics = step(state, dict(data.load('fashion_mnist', 'train[:8]')))
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(new.params))
  assert np.isfinite(metrics['task']['loss'])
