"""Transfer learning: class subsets, warm starts from another run by name pattern (a new head, frozen or slowed
groups), 'run:VARIANT' sources resolved per sweep point, and a frozen BatchNorm backbone that does not drift
in training, through the real loop on Fashion-MNIST.
"""

import os

import jax
import ml_collections
import numpy as np
import pytest

from experiments.configs import default
from jaxnets import assignments, data, experiment
from jaxnets.train import builder, warm_start
from jaxnets.train.checkpoint import Checkpointer
from jaxnets.train.loop import train_and_evaluate

SOURCE = 'T-shirt/top,Trouser,Pullover,Dress'


def test_class_subset_relabels_in_the_given_order():
  spec = data.spec('fashion_mnist')
  subset = data.label_subset(spec, 'Shirt, Sandal')
  assert subset == (6, 5)
  assert data.class_names(spec, 'label', subset) == ('Shirt', 'Sandal')
  split = {'label': np.array([0, 5, 6, 6, 9, 5], np.int32), 'image': np.arange(6)}
  kept = data.keep_classes(split, subset)
  np.testing.assert_array_equal(kept['image'], [1, 2, 3, 5])
  np.testing.assert_array_equal(kept['label'], [1, 0, 0, 1])
  assert data.keep_classes(split, ()) is split
  with pytest.raises(ValueError, match="unknown class 'Boot'; the classes of 'fashion_mnist': T-shirt/top, "):
    data.label_subset(spec, 'Sandal,Boot')
  with pytest.raises(ValueError, match="class 'Sandal' given twice"):
    data.label_subset(spec, 'Sandal,Sandal')


def test_quoted_values_keep_their_spaces():
  text = "\"data.classes=Sandal,Ankle boot\" optimizer.param_groups=encoder/.*=frozen init.load=a\\d+"
  assert assignments.parse(text, 'test') == [('data.classes', 'Sandal,Ankle boot'),
                                             ('optimizer.param_groups', 'encoder/.*=frozen'),
                                             ('init.load', 'a\\d+')]


def _tree(**leaves):
  return {'params': {'encoder': {'kernel': leaves['enc']}, 'head': {'kernel': leaves['head']}},
          'batch_stats': {'encoder': {'mean': leaves['mean']}}}


def test_merge_takes_the_selected_variables_only():
  new = _tree(enc=np.zeros((2, 3)), head=np.zeros((3, 2)), mean=np.zeros(3))
  source = _tree(enc=np.ones((2, 3)), head=np.ones((3, 8)), mean=np.full(3, 5.0))
  merged, loaded = warm_start.merge(new, source, '.*', 'head/.*')
  assert loaded == ['batch_stats/encoder/mean', 'params/encoder/kernel']
  np.testing.assert_array_equal(merged['params']['encoder']['kernel'], 1.0)
  np.testing.assert_array_equal(merged['batch_stats']['encoder']['mean'], 5.0)
  np.testing.assert_array_equal(merged['params']['head']['kernel'], 0.0)  # The new head stays fresh.
  with pytest.raises(ValueError, match=r'shapes differ: params/head/kernel \(3, 8\) -> \(3, 2\)'):
    warm_start.merge(new, source, '.*', '')
  with pytest.raises(ValueError, match='the source lacks params/encoder/kernel'):
    warm_start.merge(new, {'params': {'head': {'kernel': np.ones((3, 2))}}}, 'encoder/.*', '')
  with pytest.raises(ValueError, match="init.load='backbone/.*' .* selects no variable"):
    warm_start.merge(new, source, 'backbone/.*', '')


def _config(classes: str, steps: int = 2, **fields) -> ml_collections.ConfigDict:
  """A depth-8 ResNet for `steps` steps on a few hundred Fashion-MNIST images of `classes`."""
  c = default.get_config()
  c.model.depth = 8
  c.data.update({'classes': classes, 'augment': '', 'batch_size': 8, 'eval_batch_size': 32,
                 'train_split': 'train[:400]', 'test_split': 'test[:200]', 'train_eval_examples': 32,
                 'test_curve_examples': 32})
  c.optimizer.lr = 0.05
  c.train.update({'steps': steps, 'log_every': 1, 'eval_every': steps, 'checkpoint_every': steps})
  for field, value in fields.items():
    experiment._set(c, field, value)
  return c


def _final_state(run_dir: str, config):
  """A finished run's final train state, read back with its config."""
  setup = builder.build(config)
  checkpointer = Checkpointer(os.path.join(run_dir, 'checkpoints'), 2)
  like = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), setup.abstract_state)
  state, _ = checkpointer.restore(checkpointer.steps()[-1], like)
  checkpointer.close()
  return state


def test_a_frozen_backbone_loaded_from_another_run_does_not_move(tmp_path):
  source_dir = str(tmp_path / 'source')
  source_config = _config(SOURCE)
  summary = train_and_evaluate(source_config, source_dir)
  labels = data.load('fashion_mnist', 'test[:200]')['label']
  assert summary['test_examples'] == np.isin(labels, [0, 1, 2, 3]).sum()  # The 4 classes' share of test[:200].
  source = _final_state(source_dir, source_config)
  target_config = _config('Sandal,Shirt', steps=3, **{
      'init.checkpoint': source_dir, 'init.skip': 'head/.*', 'optimizer.param_groups': '(stem|stage.*)/.*=frozen'})
  train_and_evaluate(target_config, str(tmp_path / 'target'))
  target = _final_state(str(tmp_path / 'target'), target_config)
  assert target.params['head']['kernel'].shape[-1] == 2  # A new head of the target's class count.
  frozen = lambda tree: {k: v for k, v in tree.items() if k != 'head'}
  for a, b in zip(jax.tree.leaves(frozen(source.params)), jax.tree.leaves(frozen(target.params))):
    np.testing.assert_array_equal(a, b)
  # Trained in train mode for 3 steps, the frozen BatchNorm layers kept the source's running statistics.
  for a, b in zip(jax.tree.leaves(source.model_state), jax.tree.leaves(target.model_state)):
    np.testing.assert_array_equal(a, b)
  fresh = builder.build(target_config).init_state(jax.sharding.Mesh(jax.devices(), ('data',)))
  assert not np.allclose(target.params['head']['kernel'], fresh.params['head']['kernel'])  # The head trained.


def test_warm_start_refuses_an_unfinished_source(tmp_path):
  source_dir = str(tmp_path / 'source')
  train_and_evaluate(_config(SOURCE, steps=4), source_dir, stop_after=2)  # A session ended at step 2 of 4.
  with pytest.raises(ValueError, match=r'is no finished run \(status: running\); run it first'):
    train_and_evaluate(_config('Sandal,Shirt', **{'init.checkpoint': source_dir, 'init.skip': 'head/.*'}),
                       str(tmp_path / 'target'))


def test_run_sources_resolve_to_the_same_seed():
  c = _config('Sandal,Shirt')
  c.experiment.variants = (f'source: "data.classes={SOURCE}"; '
                           'reuse: init.checkpoint=run:source init.skip=head/.*')
  c.experiment.sweep = 'seed=0,1'
  runs = dict(experiment.expand(c))
  assert runs['reuse-seed=1'].init.checkpoint == 'run:source-seed=1'
  assert warm_start.source_dir('run:source-seed=1', '/w/reuse-seed=1') == '/w/source-seed=1'
  c.experiment.variants = 'reuse: init.checkpoint=run:source; source: data.classes=Sandal'
  with pytest.raises(ValueError, match="names run 'source-seed=0', which runs after it"):
    experiment.expand(c)


def test_a_classifier_starts_from_an_autoencoders_encoder(tmp_path):
  """Unsupervised pretraining: an encoder_classifier loads 'encoder/...' from a conv autoencoder's run."""
  model = {'widths': (4, 8), 'code': 6}
  ae = _config('Sandal,Shirt', **{'task.name': 'reconstruction', 'data.normalize': 'unit'})
  ae.model = ml_collections.ConfigDict({'name': 'conv_autoencoder', **model})
  train_and_evaluate(ae, str(tmp_path / 'ae'))
  clf = _config('Sandal,Shirt', **{'data.normalize': 'unit', 'init.checkpoint': str(tmp_path / 'ae'),
                                   'init.load': 'encoder/.*', 'optimizer.param_groups': 'encoder/.*=frozen'})
  clf.model = ml_collections.ConfigDict({'name': 'encoder_classifier', **model})
  summary = train_and_evaluate(clf, str(tmp_path / 'clf'))
  assert 0 <= summary['test_error'] <= 1
  source, target = _final_state(str(tmp_path / 'ae'), ae), _final_state(str(tmp_path / 'clf'), clf)
  assert jax.tree.structure(source.params['encoder']) == jax.tree.structure(target.params['encoder'])
  for a, b in zip(jax.tree.leaves(source.params['encoder']), jax.tree.leaves(target.params['encoder'])):
    np.testing.assert_array_equal(a, b)
