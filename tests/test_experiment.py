"""The multi-run mechanism and the command line: sweeps, results files, report plot, config errors."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest
import tensorflow_datasets as tfds

from experiments import main as cli
from experiments.configs import resnet_degradation
from jaxnets import experiment
from jaxnets.registry import UnknownNameError
from jaxnets.train.loop import DivergedError
from tests.tiny import mock_data, tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_degradation_config_declares_plain_and_residual_at_two_depths():
  runs = experiment.expand(resnet_degradation.get_config())
  assert [name for name, _ in runs] == ['residual=False-depth=20', 'residual=False-depth=56',
                                        'residual=True-depth=20', 'residual=True-depth=56']
  assert [(c.model.residual, c.model.depth) for _, c in runs] == [
      (False, 20), (False, 56), (True, 20), (True, 56)]
  # One recipe for all: the runs differ only in the swept fields.
  first = runs[0][1].to_dict()
  for _, config in runs[1:]:
    other = config.to_dict()
    other['model'].update(depth=first['model']['depth'], residual=first['model']['residual'])
    assert other == first


def test_cifar10_variant_is_the_papers_recipe():
  c = resnet_degradation.get_config('cifar10')
  assert c.data.name == 'cifar10' and c.data.train_split == 'train[:45000]'
  assert c.train.steps == 64000 and tuple(c.optimizer.schedule.boundaries) == (0.5, 0.75)
  assert c.data.batch_size == 128 and c.optimizer.lr == 0.1 and c.optimizer.weight_decay == 1e-4
  assert [cfg.model.depth for _, cfg in experiment.expand(c)][:5] == [20, 32, 44, 56, 110]
  with pytest.raises(ValueError, match=r"unknown variant 'cifar100'.*'cifar10'"):
    resnet_degradation.get_config('cifar100')


def test_sweep_errors_name_the_bad_field_and_the_valid_ones(tmp_path):
  c = tiny_config()
  c.experiment.sweep = 'train.stepz=8,14'
  with pytest.raises(KeyError, match=r"train\.stepz.*valid fields there: .*log_every.*steps"):
    experiment.expand(c)
  c.experiment.sweep = 'model.depth'
  with pytest.raises(ValueError, match=r"bad sweep axis 'model\.depth'"):
    experiment.expand(c)
  c.experiment.sweep = 'train.steps=eight'
  with pytest.raises(TypeError):  # The config keeps its types: steps is an int.
    experiment.expand(c)
  # A model field is checked against the model's own fields, for every run before any trains.
  c.experiment.sweep = 'model.depth=8,14 model.depht=8'
  with mock_data(), pytest.raises(ValueError, match=r"model 'cifar_resnet' takes no field 'depht'; its fields: "
                                                    r"depth, num_classes, remat, residual, scan, shortcut, widths"):
    experiment.run(c, str(tmp_path))
  c.experiment.sweep = 'optimizer.lr=0.02,-1'
  with mock_data(), pytest.raises(ValueError, match=r'optimizer\.lr must be > 0, got -1'):
    experiment.run(c, str(tmp_path))
  assert not os.listdir(tmp_path)  # Nothing was trained.


def test_experiment_runs_each_point_and_writes_the_report(tmp_path):
  c = tiny_config(steps=2)
  c.experiment.sweep = 'model.residual=False,True'
  c.experiment.columns = 'model.depth,model.residual'
  c.experiment.report = 'degradation'
  workdir = str(tmp_path / 'exp')
  with mock_data():
    results = experiment.run(c, workdir)
  assert [(r['name'], r['residual'], r['depth']) for r in results] == [
      ('residual=False', False, 8), ('residual=True', True, 8)]
  assert json.load(open(os.path.join(workdir, 'results.json'))) == results
  table = open(os.path.join(workdir, 'results.md')).read().splitlines()
  assert table[0].startswith('| name | depth | residual | params | steps | train_error')
  assert len([line for line in table if line.startswith('| residual=')]) == 2
  png = open(os.path.join(workdir, 'degradation.png'), 'rb').read()
  assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 10_000
  table_text = open(os.path.join(workdir, 'results.md')).read()
  with mock_data():  # Re-running the command reads the finished runs back, columns in the same order.
    read_back = experiment.run(c, workdir)
  assert read_back == results and [list(r) for r in read_back] == [list(r) for r in results]
  assert open(os.path.join(workdir, 'results.md')).read() == table_text


def test_unknown_report_is_rejected_before_training(tmp_path):
  c = tiny_config()
  c.experiment.report = 'histogram'
  with pytest.raises(UnknownNameError,
                     match=r"unknown report plot 'histogram'; valid choices: attention, autoencoders, curves"):
    experiment.run(c, str(tmp_path))
  assert not os.listdir(tmp_path)


def test_config_path_is_found_from_the_repo_root():
  argv = cli.resolve_config_argv(['main', '--config=configs/resnet_degradation.py:cifar10', '--x=1'])
  assert argv[1] == f'--config={REPO}/experiments/configs/resnet_degradation.py:cifar10'
  assert argv[2] == '--x=1'
  assert cli.resolve_config_argv(['main', '--config', 'configs/resnet_degradation.py'])[2] == (
      f'{REPO}/experiments/configs/resnet_degradation.py')
  assert cli.default_workdir('configs/resnet_degradation.py:cifar10').startswith(
      os.path.join('runs', 'resnet_degradation-cifar10-'))


@pytest.mark.parametrize('override, message', [
    ('--config.train.stepz=3', "unknown config field 'train.stepz' (did you mean 'train.steps'?)"),
    ('--config.train.steps=many', 'many'),
    ('--config.optimizer.name=adamax', "unknown optimizer 'adamax'"),
    ('--config.optimizer.momentum=1.5', r'optimizer.momentum must be in [0, 1), got 1.5'),
    ('--config.optimizer.name=adam --config.optimizer.momentum=0.9', "optimizer 'adam' takes no setting 'momentum'"),
    ('--config.model.name=mlp', "model 'mlp' takes no field 'depth', 'residual', 'shortcut'; its fields: "
                                'activation, dropout'),
    ('--config.model.depth=110', 'error: --config.model.depth would be replaced in every run: experiment.variants/'
                                 'sweep sets it per run (model.depth, model.residual); set it there instead\n'),
])
def test_command_line_rejects_bad_overrides(tmp_path, override, message):
  result = subprocess.run(
      [sys.executable, '-m', 'experiments.main', '--config=configs/resnet_degradation.py',
       f'--workdir={tmp_path}/run', *override.split()], cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode != 0
  assert message in result.stderr


def test_command_line_sets_fields_the_config_file_leaves_to_the_model(tmp_path):
  """--config.model.name=NAME from any config whose model fields NAME takes, plus a field left unset."""
  workdir = tmp_path / 'run'
  result = subprocess.run(
      [sys.executable, '-m', 'experiments.main', '--config=configs/mlp.py', f'--workdir={workdir}',
       '--config.model.name=simple_cnn', '--config.model.dropout=0.25', '--config.model.widths=8,16',
       '--config.optimizer.name=rmsprop', '--config.train.steps=2', '--config.train.log_every=1',
       '--config.train.eval_every=2', '--config.train.checkpoint_every=2',
       '--config.data.train_eval_examples=50', '--config.data.test_curve_examples=50'],
      cwd=REPO, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  saved = json.load(open(workdir / 'config.json'))
  assert saved['model'] == {'name': 'simple_cnn', 'widths': [8, 16], 'activation': 'relu',
                            'kernel_init': 'he_normal', 'dropout': 0.25}
  # rmsprop picked up no momentum from anywhere: the config sets none and rmsprop's default is 0.
  assert 'momentum' not in saved['optimizer']
  assert json.load(open(workdir / 'summary.json'))['steps'] == 2


def test_every_swept_field_labels_its_rows_and_curves(tmp_path):
  """A sweep whose config shows only model.name still gives distinct, labelled rows and curves."""
  c = tiny_config(steps=2)
  c.model.name = 'cifar_resnet'
  c.experiment.columns = 'model.name'
  c.experiment.sweep = 'optimizer.lr=0.02,0.2'
  workdir = str(tmp_path / 'exp')
  with mock_data():
    rows = experiment.run(c, workdir)
  assert [(r['name'], r['model.name'], r['lr']) for r in rows] == [
      ('lr=0.02', 'cifar_resnet', 0.02), ('lr=0.2', 'cifar_resnet', 0.2)]
  header = open(os.path.join(workdir, 'results.md')).readline()
  assert header.startswith('| name | model.name | lr | params |')
  # Each run's curve comes from its own log: the two first-step losses differ only by the lr.
  firsts = [json.loads(open(os.path.join(workdir, r['name'], 'metrics.jsonl')).readlines()[1]) for r in rows]
  assert firsts[0]['train/lr'] == pytest.approx(0.02) and firsts[1]['train/lr'] == pytest.approx(0.2)


def test_a_diverging_run_does_not_cancel_the_others(tmp_path):
  c = tiny_config(steps=2)
  c.optimizer.schedule.name = 'constant'
  c.experiment.sweep = 'optimizer.lr=0.1,1e30'
  c.experiment.columns = 'optimizer.lr'
  workdir = str(tmp_path / 'exp')
  with mock_data(), pytest.raises(DivergedError, match=r'1 of 2 runs diverged.*lr=1e\+30'):
    experiment.run(c, workdir)
  rows = json.load(open(os.path.join(workdir, 'results.json')))
  assert [r.get('status') for r in rows] == [None, 'diverged'] and 'test_error' in rows[0]
  assert os.path.exists(os.path.join(workdir, 'curves.png'))


def test_variants_set_several_fields_and_cross_with_the_sweep():
  c = tiny_config()
  c.experiment.variants = ('small: optimizer.name=sgd optimizer.lr=0.5; '
                           'aug: data.augment=crop,flip,rotate train.early_stopping_patience=2')
  c.experiment.sweep = 'model.depth=8,14'
  runs = experiment.expand(c)
  assert [name for name, _ in runs] == ['small-depth=8', 'small-depth=14', 'aug-depth=8', 'aug-depth=14']
  small, aug = runs[0][1], runs[3][1]
  assert (small.optimizer.name, small.optimizer.lr, small.data.augment) == ('sgd', 0.5, c.data.augment)
  assert aug.data.augment == 'crop,flip,rotate' and aug.train.early_stopping_patience == 2
  assert aug.model.depth == 14 and aug.optimizer.name == c.optimizer.name
  assert small.experiment.variants == small.experiment.sweep == ''


def test_optimizer_and_regularization_studies_declare_their_runs():
  from experiments.configs import optimizers, regularization  # noqa: PLC0415
  runs = dict(experiment.expand(optimizers.get_config()))
  assert list(runs) == ['sgd', 'momentum', 'nesterov', 'adagrad', 'adadelta', 'rmsprop', 'adam']
  assert [runs[n].optimizer.name for n in runs] == list(runs)
  from jaxnets import optim  # noqa: PLC0415
  settings = {name: optim.settings(run.optimizer) for name, run in runs.items()}
  assert settings['rmsprop'] == {'rho': 0.95, 'eps': 1e-8, 'momentum': 0.0}
  assert settings['momentum'] == settings['nesterov'] == {'momentum': 0.9}
  assert settings['adadelta'] == {'rho': 0.95, 'eps': 1e-6} and runs['adadelta'].optimizer.lr == 1.0
  runs = dict(experiment.expand(regularization.get_config()))
  assert runs['baseline'].model.batch_norm is False and runs['batch_norm'].model.batch_norm is True
  assert runs['augmentation'].data.augment == 'crop,flip,rotate,brightness'
  assert runs['early_stopping'].train.early_stopping_patience == 3
  assert runs['baseline'].train.early_stopping_patience == 0


@pytest.mark.parametrize('variants, message', [
    ('a: train.stepz=8', r"train\.stepz"),
    ('a model.depth=8', r"bad variant 'a model\.depth=8'"),
    ('a: model.depth', r"bad assignment 'model\.depth' in variant 'a'"),
    ('a: model.depth=8; a: model.depth=14', 'repeats a name'),
])
def test_bad_variants_are_named(variants, message):
  c = tiny_config()
  c.experiment.variants = variants
  with pytest.raises((KeyError, ValueError), match=message):
    experiment.expand(c)


def test_celeba_attributes_config_trains_a_multilabel_net_end_to_end(tmp_path):
  from experiments.configs import celeba_attributes  # noqa: PLC0415
  c = celeba_attributes.get_config()
  c.data.update(batch_size=8, eval_batch_size=8, train_eval_examples=8, test_curve_examples=8)
  c.train.update(steps=2, log_every=1, eval_every=1, checkpoint_every=2)
  with mock_data():
    summary = experiment.run(c, str(tmp_path))[0]
  assert summary['steps'] == 2 and 0 <= summary['test_error'] <= 1
  assert c.task.name == 'multilabel_sse' and celeba_attributes.get_config('bce').task.name == 'multilabel'


def test_imagenet_config_compares_equal_sized_plain_and_residual_nets(tmp_path):
  from experiments.configs import imagenet_resnet  # noqa: PLC0415
  from jaxnets import data, models  # noqa: PLC0415
  runs = dict(experiment.expand(imagenet_resnet.get_config()))
  assert list(runs) == ['residual=False-depth=18', 'residual=False-depth=34', 'residual=True-depth=18',
                        'residual=True-depth=34']
  assert imagenet_resnet.get_config('plain34').model.depth == 34
  count = lambda cfg: sum(x.size for x in jax.tree.leaves(jax.eval_shape(
      lambda: models.create(cfg.model.name, **{k: v for k, v in cfg.model.items() if k != 'name'})
      .init(jax.random.key(0), jnp.zeros((1, 224, 224, 3))))['params']))
  # Option A shortcuts add no parameters: He et al. (2016), Table 2's plain and residual twins.
  assert count(runs['residual=False-depth=34']) == count(runs['residual=True-depth=34'])
  with tfds.testing.mock_data(num_examples=3):
    split = data.load('imagenet2012', 'validation', str(tmp_path))
  assert split['image'].shape == (3, 224, 224, 3) and split['label'].shape == (3,)
  data.clear_cache()


def test_training_reads_an_on_disk_dataset_from_its_memory_mapped_files(tmp_path):
  from jaxnets import data  # noqa: PLC0415
  c = tiny_config(name='imagenet2012', data_dir=str(tmp_path / 'tfds'))
  data.clear_cache()
  with mock_data():
    summary = experiment.run(c, str(tmp_path / 'run'))[0]
  data.clear_cache()
  assert summary['steps'] == 4 and 0 <= summary['test_error'] <= 1
  assert sorted(os.listdir(tmp_path / 'tfds' / 'jaxnets_splits')) == [
      f'imagenet2012-{tfds.builder("imagenet2012").version}-{split}' for split in ('train', 'validation')]


CONFIG_VARIANTS = {'activations': [''], 'celeba_attributes': ['', 'bce'], 'detection': ['', 'voc'],
                   'imagenet_resnet': ['', 'plain18'], 'initialization': [''], 'lenet5': [''], 'mlp': [''],
                   'optimizers': [''], 'regularization': [''], 'resnet18_cifar': ['', 'cifar10'],
                   'resnet_degradation': ['', 'cifar10'], 'scene_items': [''], 'segmentation': ['', 'pets'],
                   'vgg_cifar': ['', 'cifar10'], 'mnist1d': [''], 'sunspots': [''], 'co2': [''],
                   'seq2seq': ['', 'addition', 'reversal'], 'clipping': [''], 'tbptt': [''],
                   'imdb': [''], 'autoencoders': [''], 'transfer': ['', 'hard'], 'gan': [''],
                   'finetune_imagenet': ['resnet50.pth']}


@pytest.mark.parametrize('name', sorted(CONFIG_VARIANTS))
def test_every_config_passes_the_loops_checks_and_builds(name):
  import importlib  # noqa: PLC0415
  from experiments.configs import default  # noqa: PLC0415
  from jaxnets.train.builder import build  # noqa: PLC0415
  from jaxnets.train.loop import validate  # noqa: PLC0415
  module = importlib.import_module(f'experiments.configs.{name}')
  for arg in CONFIG_VARIANTS[name]:
    config = module.get_config(arg)
    experiment.check_fields(config, default.get_config())
    for _, run_config in experiment.expand(config):
      validate(run_config)
      build(run_config)  # Every name resolved, every model field checked, the model traced: no data read.


def test_config_files_are_all_listed():
  names = {f[:-3] for f in os.listdir(os.path.join(REPO, 'experiments', 'configs'))
           if f.endswith('.py') and f not in ('__init__.py', 'default.py')}
  assert names == set(CONFIG_VARIANTS)
