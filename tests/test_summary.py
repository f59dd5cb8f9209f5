"""Summary tests: hand-counted parameters and multiply-adds, the ResNet paper's FLOPs, the command line."""

import os
import subprocess
import sys

import flax.linen as nn
import pytest

from jaxnets import models, summary

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class SmallNet(nn.Module):
  """conv 3x3/1 SAME 3->8, conv 3x3/2 SAME 8->16, BN, grouped 1x1 conv 16->16 (4 groups), dense 256->10."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = nn.relu(nn.Conv(8, (3, 3), name='conv1')(x))
    x = nn.Conv(16, (3, 3), (2, 2), name='conv2')(x)
    x = nn.BatchNorm(use_running_average=not train, name='bn')(x)
    x = nn.Conv(16, (1, 1), feature_group_count=4, name='grouped')(nn.relu(x))
    return nn.Dense(10, name='head')(x.reshape(x.shape[0], -1))


def test_small_net_by_hand():
  result = summary.summarize(SmallNet(), (8, 8, 3))
  rows = {layer.path: layer for layer in result.layers}
  assert list(rows) == ['conv1', 'conv2', 'bn', 'grouped', 'head']
  # Parameters: kernels plus biases; BN has scale and shift (its running mean and variance are state).
  assert [rows[p].params for p in rows] == [3 * 3 * 3 * 8 + 8, 3 * 3 * 8 * 16 + 16, 2 * 16,
                                            1 * 1 * (16 // 4) * 16 + 16, 4 * 4 * 16 * 10 + 10]
  # Mult-adds: out_h * out_w * out_c * (kh * kw * in_c / groups) for convs, in * out for the dense layer.
  assert [rows[p].mult_adds for p in rows] == [8 * 8 * 8 * (3 * 3 * 3), 4 * 4 * 16 * (3 * 3 * 8), 0,
                                               4 * 4 * 16 * (16 // 4), 256 * 10]
  assert [rows[p].output_shape for p in rows] == ['8x8x8', '4x4x16', '4x4x16', '4x4x16', '10']
  assert result.params == 224 + 1168 + 32 + 80 + 2570
  assert result.mult_adds == 13824 + 18432 + 1024 + 2560
  last = summary.format_table(result).splitlines()[-1]
  assert last == 'total params: 4074  mult-adds: 35840'


class SharedDense(nn.Module):
  """One dense layer applied twice: its parameters count once, its multiply-adds twice."""

  def setup(self):
    self.dense = nn.Dense(4)

  def __call__(self, x, train: bool = False):
    return self.dense(self.dense(x))


def test_a_shared_layer_counts_parameters_once():
  result = summary.summarize(SharedDense(), (4,))
  assert [(l.path, l.params, l.mult_adds) for l in result.layers] == [('dense', 20, 16), ('dense', 0, 16)]
  assert (result.params, result.mult_adds) == (20, 32)


class TiedEmbedding(nn.Module):
  """A root parameter, and an embedding table read as an attribute (its __call__ never runs)."""

  def setup(self):
    self.scale = self.param('scale', nn.initializers.ones, (5,))
    self.embed = nn.Embed(5, 3)

  def __call__(self, x, train: bool = False):
    return self.scale * (x @ self.embed.embedding.T)


def test_parameters_outside_layer_calls_still_count():
  result = summary.summarize(TiedEmbedding(), (3,))
  assert [(l.path, l.kind, l.params) for l in result.layers] == [('(root)', 'TiedEmbedding', 5),
                                                                  ('embed', '(not called)', 15)]
  assert (result.params, result.mult_adds) == (20, 0)


# He et al. (2016), Table 1: FLOPs (multiply-adds) of the ImageNet ResNets at 224x224.
PAPER_FLOPS = {'resnet18': 1.8e9, 'resnet34': 3.6e9, 'resnet50': 3.8e9, 'resnet101': 7.6e9,
               'resnet152': 11.3e9}


@pytest.mark.parametrize('name', sorted(PAPER_FLOPS))
def test_resnet_paper_flops(name):
  result = summary.summarize(models.create(name, num_classes=1000), (224, 224, 3))
  assert result.mult_adds == pytest.approx(PAPER_FLOPS[name], rel=0.05)


def test_parse_shape_names_the_bad_value():
  assert summary.parse_shape('224,224,3') == (224, 224, 3)
  assert summary.parse_shape('784') == (784,)
  for bad in ('224,x,3', '32,0,3', ''):
    with pytest.raises(ValueError, match=f'input shape {bad!r} is not'):
      summary.parse_shape(bad)
  # Neither an image (H,W,C) nor a vector: no model declares its input channels, so none are guessed.
  for bad in ('224,224', '1,224,224,3'):
    with pytest.raises(ValueError, match=f'input shape {bad!r} has {bad.count(",") + 1} numbers; give H,W,C'):
      summary.parse_shape(bad)


def _cli(*args):
  return subprocess.run([sys.executable, '-m', 'experiments.summary', *args], cwd=_ROOT, capture_output=True,
                        text=True, timeout=120)


def test_command_line_on_cifar_resnet20():
  done = _cli('--model=cifar_resnet20', '--input_shape=32,32,3', '--num_classes=10')
  assert done.returncode == 0, done.stderr
  # Convs at 32x32x16 (stem from 3 channels, 6 more), 16x16x32 (one from 16, 5), 8x8x64 (one from 32, 5).
  stem, stage1 = 32 * 32 * 16 * 9 * 3, 6 * 32 * 32 * 16 * 9 * 16
  stage2 = 16 * 16 * 32 * 9 * 16 + 5 * 16 * 16 * 32 * 9 * 32
  stage3 = 8 * 8 * 64 * 9 * 32 + 5 * 8 * 8 * 64 * 9 * 64
  mult_adds = stem + stage1 + stage2 + stage3 + 64 * 10
  lines = done.stdout.splitlines()
  assert lines[-1] == f'total params: 269722  mult-adds: {mult_adds}'  # He et al. (2016)'s 0.27M net.
  assert lines[0].split() == ['layer', 'type', 'output', 'params', 'mult-adds']
  assert lines[2].split() == ['stem/conv', 'Conv', '32x32x16', '432', f'{stem:,}']


def test_command_line_lists_valid_names_for_an_unknown_model():
  done = _cli('--model=resnet_57')
  assert done.returncode != 0
  assert "unknown model 'resnet_57'" in done.stderr and 'cifar_resnet20' in done.stderr


def test_command_line_sets_model_fields():
  # torchvision's resnet50 is v1.5 (stride on the 3x3): same 25,557,032 parameters, 4.09 GFLOPS in its docs.
  done = _cli('--model=resnet50', '--model_args=version=v1.5 shortcut=B')
  assert done.returncode == 0, done.stderr
  params, mult_adds = (int(n) for n in done.stdout.splitlines()[-1].split()[2::2])
  assert params == 25557032
  assert mult_adds == pytest.approx(4.09e9, rel=0.005)


def test_command_line_names_a_bad_model_field():
  done = _cli('--model=resnet18', '--model_args=depth')
  assert done.returncode != 0 and "bad assignment 'depth' in --model_args" in done.stderr
  done = _cli('--model=resnet18', '--model_args=widht=3')
  assert done.returncode != 0 and "model 'resnet18'" in done.stderr and 'widht' in done.stderr


def _one_error_line(stderr, text):
  """The single stderr line that contains `text` (and no traceback above it)."""
  assert 'Traceback' not in stderr, stderr[-3000:]
  lines = [line for line in stderr.splitlines() if text in line]
  assert len(lines) == 1, stderr[-3000:]
  return lines[0]


def test_command_line_refuses_a_shape_without_channels():
  done = _cli('--model=resnet18', '--input_shape=224,224')
  assert done.returncode != 0 and 'total params' not in done.stdout
  line = _one_error_line(done.stderr, "input shape '224,224'")
  assert 'H,W,C' in line and '224,224,3' in line


def test_command_line_refuses_fewer_than_one_class():
  done = _cli('--model=resnet18', '--num_classes=0')
  assert done.returncode != 0 and 'total params' not in done.stdout
  assert 'positive' in _one_error_line(done.stderr, '--num_classes=0')


def test_command_line_on_a_vector_input():
  done = _cli('--model=mlp', '--input_shape=784', '--num_classes=10', '--model_args=widths=(300,100)')
  assert done.returncode == 0, done.stderr
  params = (784 * 300 + 300) + (300 * 100 + 100) + (100 * 10 + 10)
  mult_adds = 784 * 300 + 300 * 100 + 100 * 10
  assert done.stdout.splitlines()[-1] == f'total params: {params}  mult-adds: {mult_adds}'
