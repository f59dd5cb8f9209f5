"""Mixed precision (train.compute_dtype): bfloat16 arithmetic inside the model, float32 state and loss.

The steps are the builder's own, for a tiny ResNet-8 config (with BatchNorm) in float32 and in bfloat16,
on one fixed batch of 16 random images and labels; float32 is the reference each bfloat16 figure is
checked against.
"""

import re
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets.data import source
from jaxnets.train import builder, precision, sharding
from jaxnets.train.loop import train_and_evaluate
from tests.tiny import tiny_config

# bfloat16 keeps 8 significant bits: one rounding changes a value by at most this much, relatively.
BF16_ROUNDOFF = 2.0 ** -8
# A fixed input normalization, so that no data is read.
STATS = (np.full(3, 127.5, np.float32), np.full(3, 64.0, np.float32))
TRAIN_STEPS = 40


class Run(NamedTuple):
  """One compute dtype's initial state and jitted steps, as the training loop gets them."""
  state: object
  train_step: object
  eval_step: object
  predict_step: object


def _config(compute_dtype: str):
  """tiny_config in `compute_dtype` at a constant learning rate, without augmentation or weight decay (the
  first update is then -lr times the gradient of the data loss alone)."""
  c = tiny_config(augment='')
  c.optimizer.weight_decay = 0.0
  c.optimizer.schedule.name = 'constant'
  c.train.compute_dtype = compute_dtype
  return c


@pytest.fixture(scope='module')
def runs() -> dict:
  """{compute dtype: Run} for 'float32' and 'bfloat16'."""
  mesh = sharding.data_mesh()
  out = {}
  for compute_dtype in ('float32', 'bfloat16'):
    setup = builder.build(_config(compute_dtype))
    preprocess = setup.preprocess(STATS)
    out[compute_dtype] = Run(setup.init_state(mesh), *setup.jit_steps(preprocess, mesh),
                             setup.jit_predict_step(preprocess, mesh))
  return out


@pytest.fixture(scope='module')
def batch() -> dict:
  """16 random uint8 CIFAR-shaped images with random labels: a problem a ResNet-8 can memorize."""
  rng = np.random.default_rng(0)
  return {'image': rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8),
          'label': rng.integers(0, 10, 16).astype(np.int32)}


def _train(run: Run, batch: dict, steps: int):
  """(state, per-step metrics) after `steps` train steps on `batch` from a copy of the initial state (the
  step donates its input state)."""
  state, history = jax.tree.map(jnp.copy, run.state), []
  for _ in range(steps):
    state, metrics = run.train_step(state, batch)
    history.append(jax.device_get(metrics))
  return state, history


def _dtypes_and_shapes(state) -> dict:
  """{'params'|'opt_state'|'model_state': [(dtype, shape) per leaf]}."""
  return {part: [(x.dtype, x.shape) for x in jax.tree.leaves(getattr(state, part))]
          for part in ('params', 'opt_state', 'model_state')}


def _flat(tree) -> np.ndarray:
  """Every leaf of `tree`, flattened into one float64 vector."""
  return np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)]).astype(np.float64)


def _cosine(a, b) -> float:
  """The cosine of the angle between two pytrees of the same structure, as vectors."""
  a, b = _flat(a), _flat(b)
  return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_bfloat16_keeps_the_whole_state_float32(runs, batch):
  initial = runs['bfloat16'].state
  # The initial state does not depend on the compute dtype: same values, float32 everywhere.
  jax.tree.map(np.testing.assert_array_equal, initial, runs['float32'].state)
  state, _ = _train(runs['bfloat16'], batch, 1)
  after = _dtypes_and_shapes(state)
  assert after == _dtypes_and_shapes(initial)
  floating = [dtype for leaves in after.values() for dtype, _ in leaves if jnp.issubdtype(dtype, jnp.floating)]
  assert set(floating) == {jnp.dtype(jnp.float32)}  # (The optimizer's step counter is an integer.)
  assert after['model_state'] and after['opt_state']  # BatchNorm statistics and momentum are there.
  assert jax.tree.structure(state) == jax.tree.structure(initial)


def _matmul_operands(hlo: str) -> list[tuple[str, str]]:
  """The element types of both operands of every convolution and dot_general in StableHLO text."""
  pattern = r'stablehlo\.(?:convolution|dot_general).*: \(tensor<[^>]*x(\w+)>, tensor<[^>]*x(\w+)>\)'
  return re.findall(pattern, hlo)


def test_bfloat16_convolutions_and_matmuls_run_in_bfloat16(runs, batch):
  mask = np.ones(16, np.float32)
  for compute_dtype, run in runs.items():
    for hlo in (run.train_step.lower(run.state, batch).as_text(),
                run.eval_step.lower(run.state, batch, mask).as_text()):
      operands = _matmul_operands(hlo)
      assert len(operands) >= 8  # ResNet-8's 7 convolutions and its dense head, at least.
      expected = {'bfloat16': 'bf16', 'float32': 'f32'}[compute_dtype]
      assert set(np.ravel(operands)) == {expected}, (compute_dtype, operands)
      # Not a single cast in float32: the steps are the ones without mixed precision.
      assert ('bf16' in hlo) == (compute_dtype == 'bfloat16')


def test_bfloat16_loss_and_gradient_match_float32(runs, batch):
  initial = runs['float32'].state
  (state32, [metrics32]), (state16, [metrics16]) = (_train(runs[d], batch, 1) for d in ('float32', 'bfloat16'))
  loss32, loss16 = metrics32['diagnostics']['total_loss'], metrics16['diagnostics']['total_loss']
  # The batch's mean loss is at most one bfloat16 rounding away: the per-example errors, each of that
  # order, partly cancel in the mean (measured: 7e-4 relative, a fifth of the bound). Yet it differs.
  assert abs(loss16 - loss32) <= BF16_ROUNDOFF * loss32 and loss16 != loss32
  # The first update of SGD with momentum (no weight decay) is -lr times the gradient.
  update32, update16 = (jax.tree.map(lambda a, b: a - b, s.params, initial.params) for s in (state32, state16))
  # A relative error r in the gradient gives a cosine of about 1 - r^2 / 2: 0.99 allows r up to 14%, a few
  # dozen bfloat16 roundings through ResNet-8's forward and backward passes (measured: 0.9987, r = 5%).
  # Per tensor 0.95 (r < 30%) still catches a gradient that is lost or wrong (measured: at least 0.988).
  # The norms agree within 5% (measured: 0.2%).
  assert _cosine(update16, update32) > 0.99
  assert min(jax.tree.leaves(jax.tree.map(_cosine, update16, update32))) > 0.95
  np.testing.assert_allclose(np.linalg.norm(_flat(update16)), np.linalg.norm(_flat(update32)), rtol=0.05)


def test_bfloat16_trains_like_float32_and_evaluates(runs, batch):
  states, losses = {}, {}
  for compute_dtype, run in runs.items():
    states[compute_dtype], history = _train(run, batch, TRAIN_STEPS)
    losses[compute_dtype] = np.array([m['diagnostics']['total_loss'] for m in history])
  for curve in losses.values():  # Both memorize the batch: the loss falls from ln 10 to about 1e-3.
    assert np.all(np.isfinite(curve)) and curve[-1] < 0.01 * curve[0]
  # The two runs start one bfloat16 rounding apart and drift apart slowly (measured: at most 2.2%).
  np.testing.assert_allclose(losses['bfloat16'], losses['float32'], rtol=0.1)
  # The bfloat16 network in eval mode (BatchNorm's running averages): both eval steps find every label,
  # with the same loss within 5% (measured: 0.9%; on a loss this small the relative error is the
  # absolute error of the logit margins), and the predict step gives the labels.
  mask = np.ones(16, np.float32)
  sums = {d: jax.device_get(run.eval_step(states['bfloat16'], batch, mask)['sums']) for d, run in runs.items()}
  for s in sums.values():
    assert (s['count'], s['errors']) == (16, 0)
  np.testing.assert_allclose(sums['bfloat16']['loss'], sums['float32']['loss'], rtol=0.05)
  predicted = runs['bfloat16'].predict_step(states['bfloat16'], batch)['label']
  np.testing.assert_array_equal(predicted, batch['label'])


class _Probe(nn.Module):
  """Checks the dtypes it receives (float input and kernel bfloat16, integer ids int32); sows a loss and an
  auxiliary output."""

  @nn.compact
  def __call__(self, inputs, train: bool = False):
    kernel = self.param('kernel', nn.initializers.ones, (3, 2))
    assert (inputs['x'].dtype, inputs['ids'].dtype, kernel.dtype) == (jnp.bfloat16, jnp.int32, jnp.bfloat16)
    y = inputs['x'] @ kernel + inputs['ids'][:, None]
    self.sow('losses', 'penalty', jnp.mean(y))
    self.sow('aux_outputs', 'aux', y)
    return {'logits': y, 'argmax': jnp.argmax(y, -1)}


def test_mixed_apply_casts_floats_only_and_returns_float32():
  inputs = {'x': np.ones((4, 3), np.float32), 'ids': np.arange(4, dtype=np.int32)}
  params = {'kernel': np.ones((3, 2), np.float32)}
  apply = precision.mixed_apply(_Probe().apply, 'bfloat16')
  outputs, sown = apply({'params': params}, inputs, mutable=['losses', 'aux_outputs'])
  assert outputs['logits'].dtype == jnp.float32 and outputs['argmax'].dtype == jnp.int32
  assert {x.dtype for x in jax.tree.leaves(sown)} == {jnp.dtype(jnp.float32)}
  float32_apply = _Probe().apply
  assert precision.mixed_apply(float32_apply, 'float32') is float32_apply  # Nothing to trace.


def test_a_bad_compute_dtype_is_one_line_naming_the_choices(tmp_path, monkeypatch):
  config = tiny_config(data_dir=str(tmp_path / 'empty'))
  config.train.compute_dtype = 'float16'
  message = r"^unknown train\.compute_dtype 'float16'; valid choices: float32, bfloat16$"
  with pytest.raises(ValueError, match=message):
    builder.build(config)
  # Through the training loop, before any data is read: there is none, offline, yet the error is this one.
  monkeypatch.setattr(source, 'TFDS_HOST', 'http://127.0.0.1:9')
  with pytest.raises(ValueError, match=message):
    train_and_evaluate(config, str(tmp_path / 'run'))
