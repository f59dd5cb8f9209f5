"""Scanned stages (nn.scan over identical blocks), rematerialization, the canonical-gradient convolution and
the layout converter: each checked against the unrolled net, lax's own gradients, or XLA's analyses."""

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import models, summary
from jaxnets.models import stack
from jaxnets.nn import conv as conv_ops
from jaxnets.train.checkpoint import Checkpointer
from jaxnets.train.relayout import relayout
from jaxnets.train.loop import train_and_evaluate
from tests import tiny

# (registry name, extra fields, input shape): one net of each family that can scan, two or more blocks a stage.
NETS = [('cifar_resnet', {'depth': 14}, (4, 16, 16, 3)),
        ('cifar_plain20', {}, (4, 16, 16, 3)),
        ('cifar_preact_resnet', {'depth': 20, 'block': 'basic'}, (4, 16, 16, 3)),
        ('cifar_preact_resnet', {'depth': 20, 'block': 'bottleneck', 'widths': (4, 8, 8)}, (4, 16, 16, 3)),
        ('wide_resnet', {'depth': 16, 'widen_factor': 1, 'dropout': 0.0}, (4, 16, 16, 3)),
        ('resnet', {'depth': 50, 'widths': (4, 8, 8, 8), 'version': 'v1.5'}, (2, 64, 64, 3))]


def _close(a, b, rtol=1e-4):
  """Every leaf of a within rtol of b's largest magnitude: float32 rounding, which the loop may reorder."""
  return jax.tree.all(jax.tree.map(lambda u, v: np.abs(u - v).max() <= rtol * max(np.abs(v).max(), 1e-30), a, b))


@pytest.mark.parametrize('name,fields,shape', NETS, ids=[f'{n}-{i}' for i, (n, _, _) in enumerate(NETS)])
def test_scanned_and_unrolled_nets_compute_the_same_for_the_same_weights(name, fields, shape):
  x = jnp.asarray(np.random.default_rng(0).normal(size=shape), jnp.float32)
  unrolled = models.create(name, num_classes=10, scan=False, **fields)
  scanned = models.create(name, num_classes=10, scan=True, **fields)
  variables = unrolled.init(jax.random.key(0), x)
  stacked = stack.convert(variables, scanned=True)
  assert stack.is_scanned(stacked['params']) and not stack.is_scanned(variables['params'])
  # The converted weights have exactly the structure the scanned model creates.
  assert jax.tree.structure(stacked) == jax.tree.structure(scanned.init(jax.random.key(1), x))
  for train in (False, True):
    out_u, new_u = unrolled.apply(variables, x, train=train, mutable=['batch_stats'])
    out_s, new_s = scanned.apply(stacked, x, train=train, mutable=['batch_stats'])
    assert _close(out_u, out_s)
    assert _close(new_u, stack.convert(new_s, scanned=False))  # Batch statistics updated alike.

  def loss(model, params, v):
    out, _ = model.apply({**v, 'params': params}, x, train=True, mutable=['batch_stats'])
    return jnp.mean(jax.nn.log_softmax(out)[:, 0])

  grads_u = jax.grad(lambda p: loss(unrolled, p, variables))(variables['params'])
  grads_s = jax.grad(lambda p: loss(scanned, p, stacked))(stacked['params'])
  assert _close(stack.convert(grads_s, scanned=False), grads_u, rtol=1e-3)


def test_convert_round_trips_and_keeps_the_order_of_modules():
  variables = models.create('cifar_resnet', depth=20, num_classes=10, scan=False).init(
      jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
  stacked = stack.convert(variables, scanned=True)
  assert list(stacked['params']) == ['stem', 'stage1_block0', 'stage1_blocks', 'stage2_block0', 'stage2_blocks',
                                     'stage3_block0', 'stage3_blocks', 'head']
  kernel = stacked['params']['stage2_blocks']['block']['branch']['conv1']['conv']['kernel']
  assert kernel.shape == (2, 3, 3, 32, 32)  # Blocks 1 and 2 of 3 stacked.
  np.testing.assert_array_equal(kernel[1], variables['params']['stage2_block2']['branch']['conv1']['conv']['kernel'])
  back = stack.convert(stacked, scanned=False)
  assert list(back['params']) == list(variables['params'])
  assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), back, variables))
  assert stack.convert(stacked, scanned=True) is not None and stack.convert(variables, scanned=False) == variables


def test_depth_decides_the_layout_when_scan_is_not_set():
  x = jnp.zeros((1, 8, 8, 3))
  keys = lambda name: set(jax.eval_shape(models.create(name, num_classes=10).init, jax.random.key(0), x)['params'])
  assert 'stage1_block8' in keys('cifar_resnet56')  # 9 blocks a stage: unrolled.
  assert {'stage1_block0', 'stage1_blocks'} <= keys('cifar_resnet110')  # 18: scanned.
  assert stack.resolve_scan(None, [stack.SCAN_FROM - 1]) is False and stack.resolve_scan(None, [stack.SCAN_FROM])
  assert stack.resolve_scan(False, [200]) is False


def test_the_summary_counts_every_layer_of_a_scanned_net():
  unrolled = summary.summarize(models.create('cifar_resnet110', num_classes=10, scan=False), (32, 32, 3))
  scanned = summary.summarize(models.create('cifar_resnet110', num_classes=10), (32, 32, 3))
  assert (scanned.params, scanned.mult_adds) == (unrolled.params, unrolled.mult_adds)
  # By hand, option A (no shortcut parameters): a w -> w block has two 3x3 convs and two BatchNorms,
  # 18w^2 + 4w; a stage's first block starts from w/2 channels: 9(w/2)w + 9w^2 + 4w. He et al. (2016),
  # Table 6: 1.7M.
  n = 18
  block = lambda w, w_in: 9 * w_in * w + 9 * w * w + 4 * w
  stages = sum(block(w, w_in) + (n - 1) * block(w, w) for w, w_in in ((16, 16), (32, 16), (64, 32)))
  assert scanned.params == 9 * 3 * 16 + 2 * 16 + stages + 64 * 10 + 10


@pytest.mark.parametrize('kernel,padding,strides', [
    (3, ((1, 1), (1, 1)), (1, 1)), (1, ((0, 0), (0, 0)), (1, 1)), (5, ((2, 2), (2, 2)), (1, 1)),
    (3, ((0, 2), (1, 0)), (1, 1)), (3, ((1, 1), (1, 1)), (2, 2))])
def test_the_canonical_convolution_has_lax_values_and_gradients(kernel, padding, strides):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(3, 9, 7, 4)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(kernel, kernel, 4, 5)), jnp.float32)
  dn = ('NHWC', 'HWIO', 'NHWC')
  ours = lambda x, w: conv_ops.conv_general_dilated(x, w, strides, padding, dimension_numbers=dn)
  ref = lambda x, w: jax.lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=dn)
  probe = jnp.asarray(rng.normal(size=ref(x, w).shape), jnp.float32)
  np.testing.assert_allclose(ours(x, w), ref(x, w), rtol=1e-5, atol=1e-5)
  for i in (0, 1):
    np.testing.assert_allclose(jax.grad(lambda *a: jnp.vdot(ours(*a), probe), i)(x, w),
                               jax.grad(lambda *a: jnp.vdot(ref(*a), probe), i)(x, w), rtol=1e-4, atol=1e-4)


def _loop_convolutions(hlo: str) -> list[str]:
  """The dim_labels of every convolution inside a while loop's body (or a computation it calls)."""
  computations, name = {}, None
  for line in hlo.splitlines():
    if line and not line.startswith(' ') and line.rstrip().endswith('{'):
      name = line.split()[1 if line.startswith('ENTRY') else 0]
    elif name:
      computations.setdefault(name, []).append(line)
  calls = lambda lines: {c.split(',')[0].split(')')[0] for line in lines for c in
                         re.findall(r'(?:body|calls|to_apply)=(%[\w.-]+)', line)}
  todo = {c for lines in computations.values() for line in lines if ' while(' in line
          for c in re.findall(r'body=(%[\w.-]+)', line)}
  seen = set()
  while todo:
    seen.add(name := todo.pop())
    todo |= calls(computations.get(name, [])) - seen
  return [line.split('dim_labels=')[1].split(',')[0] for name in seen for line in computations.get(name, [])
          if ' convolution(' in line]


def test_gradient_convolutions_in_a_scanned_stage_use_the_fast_layout():
  # The reason for jaxnets.nn.conv: with lax's convolution the scanned backward pass keeps autodiff's
  # dimension orders inside the loop (XLA's naive loop on CPU, benchmarks/conv_in_loop.py); with ours
  # every convolution there is NHWC x HWIO -> NHWC.
  model = models.create('cifar_resnet', depth=26, num_classes=10, scan=True)  # 3 scanned blocks a stage.
  x = jnp.zeros((2, 16, 16, 3))
  variables = model.init(jax.random.key(0), x)

  def loss(params):
    out, _ = model.apply({**variables, 'params': params}, x, train=True, mutable=['batch_stats'])
    return out.sum()

  labels = _loop_convolutions(jax.jit(jax.grad(loss)).lower(variables['params']).compile().as_text())
  assert len(labels) >= 3 * 3 * 2  # Forward, input and kernel gradients of two convolutions, three stages.
  assert set(labels) == {'b01f_01io->b01f'}, labels


def _train_step_memory(remat: bool) -> tuple[int, object]:
  model = models.create('cifar_resnet', depth=32, num_classes=10, scan=True, remat=remat)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(32, 16, 16, 3)), jnp.float32)
  variables = model.init(jax.random.key(0), x)

  def loss(params):
    out, _ = model.apply({**variables, 'params': params}, x, train=True, mutable=['batch_stats'])
    return jnp.mean(out ** 2)

  step = jax.jit(jax.grad(loss))
  return step.lower(variables['params']).compile().memory_analysis().temp_size_in_bytes, step(variables['params'])


def test_remat_keeps_the_gradients_and_lowers_activation_memory():
  plain_bytes, plain_grads = _train_step_memory(remat=False)
  remat_bytes, remat_grads = _train_step_memory(remat=True)
  assert _close(remat_grads, plain_grads, rtol=1e-4)
  assert remat_bytes < 0.6 * plain_bytes, (remat_bytes, plain_bytes)  # XLA's own memory analysis.


def test_a_run_relaid_out_to_scanned_resumes_where_the_unrolled_one_stopped(tmp_path):
  config = tiny.tiny_config(steps=4)
  config.model.depth = 14
  with tiny.mock_data():
    whole = train_and_evaluate(config.copy_and_resolve_references(), str(tmp_path / 'whole'))
    run = str(tmp_path / 'run')
    train_and_evaluate(config, run, stop_after=2)
    assert relayout(config, run, scan=True) == [2]
    with pytest.raises(ValueError, match='different config'):
      train_and_evaluate(config, run)  # config.json now says model.scan=True.
    config.model.scan = True
    resumed = train_and_evaluate(config, run)
  saved = Checkpointer(str(tmp_path / 'run' / 'checkpoints.unrolled'), 1)
  assert saved.steps() == [2]  # The unrolled checkpoint is kept.
  saved.close()
  assert json.load(open(tmp_path / 'run' / 'config.json'))['model']['scan'] is True
  for key in ('train_error', 'test_error', 'train_loss', 'test_loss'):
    np.testing.assert_allclose(resumed[key], whole[key], rtol=1e-4)
