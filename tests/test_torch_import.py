"""torchvision weights into jaxnets models: logits against randomly initialized torchvision models (no
download), the name maps of every supported model, the errors, `keep`, and the weight file formats."""

import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

torch = pytest.importorskip('torch')
torchvision = pytest.importorskip('torchvision')

from jaxnets import models  # noqa: E402
from jaxnets.models import stack  # noqa: E402
from jaxnets.weights import torchvision as tv_weights  # noqa: E402

NUM_CLASSES = 10
# Logits agree to this fraction of their largest magnitude: float32 sums taken in other orders through up
# to 121 layers (measured on 2 CPU cores, XLA's YNN fusion on or off: at most 3.4e-5, ResNet-50). A wrong
# name, layout or row order moves the logits by about their own magnitude.
TOLERANCE = 5e-4


def _torch_model(name: str, size: int):
  """torchvision's `name` with random weights and BatchNorm affine parameters, running statistics taken from
  a few training-mode passes (so they differ from the defaults and keep activations in range), in eval mode."""
  torch.manual_seed(0)
  net = getattr(torchvision.models, name)(num_classes=NUM_CLASSES)
  norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
  with torch.no_grad():
    for norm in norms:
      norm.weight.uniform_(0.5, 1.5)
      norm.bias.normal_(0.0, 0.2)
      norm.momentum = None  # Running statistics: the plain average over the passes below.
    if norms:
      net.train()
      for _ in range(2):
        net(torch.randn(8, 3, size, size))
  return net.eval()


def _numpy(state_dict) -> dict:
  return {name: t.numpy() for name, t in state_dict.items()}


def _template(name: str, size: int, **kwargs):
  model = models.create(name, num_classes=NUM_CLASSES, **tv_weights.MODEL_KWARGS.get(name, {}), **kwargs)
  return model, jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, size, size, 3)), train=False))


# AlexNet at 96x96 and VGG at 64x64 end in 2x2 maps (6x6, 7x7 after their adaptive pools), so the row
# order of fc6's kernel matters. ResNet-50 at 32x32: at 64x64 XLA's YNN elementwise fusion (jaxnets.xla_env)
# takes about 40 s on 2 cores to run its first eval step.
@pytest.mark.parametrize('name, size', [('resnet18', 64), ('resnet50', 32), ('vgg11_bn', 64), ('alexnet', 96),
                                        ('densenet121', 64)])
def test_logits_match_torchvision(name, size):
  net = _torch_model(name, size)
  images = torch.randn(2, 3, size, size)
  with torch.no_grad():
    expected = net(images).numpy()
  model, template = _template(name, size)
  variables = tv_weights.convert(name, _numpy(net.state_dict()), template)
  assert jax.tree.structure(variables) == jax.tree.structure(template)
  x = images.numpy().transpose(0, 2, 3, 1)
  logits = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
  scale = np.abs(expected).max()
  np.testing.assert_allclose(logits, expected, rtol=0, atol=TOLERANCE * scale)
  if name in tv_weights.MODEL_KWARGS:  # jaxnets' default (v1, stride on the first 1x1) is another function.
    default = models.create(name, num_classes=NUM_CLASSES)
    logits = jax.jit(lambda v, x: default.apply(v, x, train=False))(variables, x)
    assert np.abs(logits - expected).max() > 0.01 * scale


def _meta_state_dict(name: str, num_classes: int = NUM_CLASSES) -> dict:
  """torchvision's tensor names and shapes, tensor i a free read-only view filled with i (no weights drawn)."""
  with torch.device('meta'):
    net = getattr(torchvision.models, name)(num_classes=num_classes)
  return {k: np.broadcast_to(np.float32(i), t.shape) for i, (k, t) in enumerate(net.state_dict().items())}


@pytest.mark.parametrize('name', tv_weights.MODELS)
def test_every_tensor_fills_one_leaf(name):
  tensors = _meta_state_dict(name)
  _, template = _template(name, 64)
  variables = tv_weights.convert(name, tensors, template)
  loaded = sum(x.size for x in jax.tree.leaves(variables))
  assert loaded == sum(x.size for k, x in tensors.items() if not k.endswith('num_batches_tracked'))
  if stack.is_scanned(template['params']):  # ResNet-101/152: blocks 1..n-1 stacked in block order.
    _, unrolled = _template(name, 64, scan=False)
    expected = stack.convert(tv_weights.convert(name, tensors, unrolled), scanned=True)
    jax.tree.map(np.testing.assert_array_equal, variables, expected)


def test_errors_name_the_tensors():
  tensors = _meta_state_dict('resnet18')
  _, template = _template('resnet18', 64)
  bad = {**tensors, 'layer1.0.conv1.weight': np.zeros((64, 63, 3, 3), np.float32)}
  with pytest.raises(ValueError, match=r'shape mismatches: layer1\.0\.conv1\.weight \(64, 63, 3, 3\) '
                                       r'\(as \(3, 3, 63, 64\)\) for params/stage1_block0/branch/conv1/conv/'
                                       r'kernel \(3, 3, 64, 64\)$'):
    tv_weights.convert('resnet18', bad, template)
  with pytest.raises(ValueError, match=r'torch tensors with no jaxnets leaf: layer5\.0\.conv1\.weight$'):
    tv_weights.convert('resnet18', {**tensors, 'layer5.0.conv1.weight': np.zeros(1)}, template)
  del tensors['layer2.0.downsample.1.running_var']
  with pytest.raises(ValueError, match=r'jaxnets leaves with no torch tensor: '
                                       r'batch_stats/stage2_block0/shortcut/proj/bn/var '
                                       r'\(layer2\.0\.downsample\.1\.running_var\)$'):
    tv_weights.convert('resnet18', tensors, template)
  with pytest.raises(ValueError, match=r"no torchvision weights map for model 'plain18'; valid choices: .*"):
    tv_weights.convert('plain18', tensors, template)


def test_keep_leaves_the_template_head():
  tensors = _meta_state_dict('resnet18', num_classes=1000)
  _, template = _template('resnet18', 64)
  head = {'kernel': np.ones((512, NUM_CLASSES), np.float32), 'bias': np.zeros(NUM_CLASSES, np.float32)}
  template['params']['head'] = head
  with pytest.raises(ValueError, match=r'fc\.weight \(1000, 512\) \(as \(512, 1000\)\) for params/head/kernel'):
    tv_weights.convert('resnet18', tensors, template)
  backbone = {k: v for k, v in tensors.items() if not k.startswith('fc.')}
  with pytest.raises(ValueError, match=r'no torch tensor: params/head/kernel \(fc\.weight\), params/head/bias '
                                       r'\(fc\.bias\)$'):
    tv_weights.convert('resnet18', backbone, template)
  for state in (tensors, backbone):  # Tensors meant for kept leaves are ignored when given.
    variables = tv_weights.convert('resnet18', state, template, keep='params/head/.*')
    assert all(variables['params']['head'][k] is head[k] for k in head)
    assert float(variables['params']['stem']['conv']['kernel'][0, 0, 0, 0]) == 0.0  # conv1.weight: tensor 0.


def test_old_densenet_names_load_like_the_current_ones():
  tensors = _meta_state_dict('densenet121')
  old = {k.replace('.norm1.', '.norm.1.').replace('.conv2.', '.conv.2.'): v for k, v in tensors.items()}
  assert 'features.denseblock1.denselayer1.norm.1.weight' in old
  _, template = _template('densenet121', 64)
  jax.tree.map(np.testing.assert_array_equal, tv_weights.convert('densenet121', old, template),
               tv_weights.convert('densenet121', tensors, template))
  with pytest.raises(ValueError, match=r'both their old and new names: features\.denseblock1\.denselayer1\.'):
    tv_weights.convert('densenet121', {**tensors, **old}, template)


def test_read_state_dict_round_trips(tmp_path, monkeypatch):
  safetensors_torch = pytest.importorskip('safetensors.torch')
  torch.manual_seed(0)
  state = torchvision.models.resnet18(num_classes=3).state_dict()
  torch.save(state, tmp_path / 'w.pth')
  safetensors_torch.save_file(state, tmp_path / 'w.safetensors')
  for path in (tmp_path / 'w.pth', tmp_path / 'w.safetensors'):
    read = tv_weights.read_state_dict(path)
    assert sorted(read) == sorted(state)
    for k, t in state.items():
      np.testing.assert_array_equal(read[k], t.numpy())
  with pytest.raises(ValueError, match=r'w\.npz: valid suffixes are \.pth, \.pt, \.safetensors$'):
    tv_weights.read_state_dict(tmp_path / 'w.npz')
  monkeypatch.setitem(sys.modules, 'torch', None)  # As if PyTorch were not installed.
  with pytest.raises(ImportError, match=r'w\.pth needs PyTorch: pip install torch'):
    tv_weights.read_state_dict(tmp_path / 'w.pth')


def test_a_run_starts_from_torchvision_weights_with_a_new_head(tmp_path):
  """config.init from a .pth file through the real loop: every backbone tensor is torchvision's at step 0
  (a frozen backbone keeps them to the end), the head is a fresh one of the target's class count."""
  from experiments.configs import default  # noqa: PLC0415
  from jaxnets.train import builder, warm_start  # noqa: PLC0415
  from jaxnets.train.checkpoint import Checkpointer  # noqa: PLC0415
  from jaxnets.train.loop import train_and_evaluate  # noqa: PLC0415
  from tests.tiny import mock_data  # noqa: PLC0415
  torch.manual_seed(0)
  path = str(tmp_path / 'resnet18.pth')
  torch.save(torchvision.models.resnet18(num_classes=1000).state_dict(), path)
  c = default.get_config()
  c.model = ml_collections.ConfigDict({'name': 'resnet18'})
  c.data.update({'name': 'cifar10', 'augment': '', 'batch_size': 8, 'eval_batch_size': 16,
                 'train_eval_examples': 16, 'test_curve_examples': 16})
  c.init.update({'checkpoint': path, 'skip': 'head/.*'})
  c.optimizer.param_groups = '(?!head/).*=frozen'
  c.train.update({'steps': 2, 'log_every': 1, 'eval_every': 2, 'checkpoint_every': 2})
  with mock_data():
    train_and_evaluate(c, str(tmp_path / 'run'))
  setup = builder.build(c)
  checkpointer = Checkpointer(str(tmp_path / 'run' / 'checkpoints'), 2)
  state, _ = checkpointer.restore(2, jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), setup.abstract_state))
  checkpointer.close()
  expected = tv_weights.convert('resnet18', tv_weights.read_state_dict(path),
                                {'params': state.params, **state.model_state}, keep='params/head/.*')
  backbone = lambda tree: {k: v for k, v in tree.items() if k != 'head'}
  for got, want in zip(jax.tree.leaves(backbone(state.params)), jax.tree.leaves(backbone(expected['params']))):
    np.testing.assert_array_equal(got, want)
  for got, want in zip(jax.tree.leaves(state.model_state), jax.tree.leaves(expected['batch_stats'])):
    np.testing.assert_array_equal(got, want)
  assert state.params['head']['kernel'].shape == (512, 10)
  c.model = ml_collections.ConfigDict({'name': 'resnet50'})  # v1, where torchvision's is v1.5.
  with pytest.raises(ValueError, match="torchvision's resnet50 is model.version='v1.5'; set it"):
    warm_start.torch_variables(path, c.model, {}, 'head/.*')


def test_the_finetune_config_trains_from_a_torchvision_resnet50_on_mock_cifar10(tmp_path):
  """configs/finetune_imagenet.py as a user runs it, with a random torchvision ResNet-50 and mock CIFAR-10,
  shrunk to two steps."""
  from experiments.configs import finetune_imagenet  # noqa: PLC0415
  from jaxnets.train.loop import train_and_evaluate  # noqa: PLC0415
  from tests.tiny import mock_data  # noqa: PLC0415
  torch.manual_seed(0)
  path = str(tmp_path / 'resnet50.pth')
  torch.save(torchvision.models.resnet50().state_dict(), path)
  c = finetune_imagenet.get_config(path)
  c.data.update({'batch_size': 8, 'eval_batch_size': 16, 'train_eval_examples': 16, 'test_curve_examples': 16})
  c.train.update({'steps': 2, 'log_every': 1, 'eval_every': 2, 'checkpoint_every': 2})
  with mock_data():
    summary = train_and_evaluate(c, str(tmp_path / 'run'))
  assert summary['steps'] == 2 and 0 <= summary['test_error'] <= 1
  with pytest.raises(ValueError, match="needs torchvision's ResNet-50 weights"):
    finetune_imagenet.get_config('')
