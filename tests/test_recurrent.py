"""Recurrent, 1D-convolutional and encoder-decoder models against the course's formulas and second code paths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import models
from jaxnets.models import recurrent, seq2seq


def _series(batch=3, steps=7, channels=2, seed=0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=(batch, steps, channels)), jnp.float32)


def test_simple_cell_is_the_course_formula():
  """Y(t) = tanh(X(t) W_x + Y(t-1) W_y + b), computed by hand in numpy from the layer's own weights."""
  stack = recurrent.RecurrentStack('simple', features=4)
  x = _series()
  variables = stack.init(jax.random.key(0), x)
  out = np.asarray(stack.apply(variables, x))
  cell = variables['params']['layer0']['cell']
  w_x, b, w_y = (np.asarray(cell['i']['kernel']), np.asarray(cell['i']['bias']), np.asarray(cell['h']['kernel']))
  y = np.zeros((3, 4), np.float32)
  for t in range(x.shape[1]):
    y = np.tanh(np.asarray(x[:, t]) @ w_x + y @ w_y + b)
    np.testing.assert_allclose(out[:, t], y, rtol=1e-5, atol=1e-6)


def test_orthogonal_recurrent_kernel():
  """Flax's cells start their recurrent kernels orthogonal; ours are drawn by jaxnets' initializer."""
  stack = recurrent.RecurrentStack('gru', features=6)
  params = stack.init(jax.random.key(1), _series())['params']['layer0']['cell']
  w = np.concatenate([np.asarray(params[k]['kernel']) for k in ('hr', 'hz', 'hn')], axis=1)
  for k in range(3):
    block = w[:, 6 * k:6 * (k + 1)]
    np.testing.assert_allclose(block.T @ block, np.eye(6), atol=1e-5)


@pytest.mark.parametrize('cell', ['simple', 'lstm', 'gru'])
def test_padded_steps_change_nothing(cell):
  """A padded sequence (garbage after its length) gives the outputs of the trimmed one, and zeros after."""
  model = models.create('rnn_tagger', num_classes=3, cell=cell, features=5, layers=2)
  x = _series(batch=2, steps=9)
  length = jnp.array([4, 9])
  variables = model.init(jax.random.key(0), {'inputs': x, 'length': length})
  padded = model.apply(variables, {'inputs': x, 'length': length})
  garbage = x.at[0, 4:].set(100.0)
  np.testing.assert_array_equal(padded, model.apply(variables, {'inputs': garbage, 'length': length}))
  trimmed = model.apply(variables, x[:1, :4])
  np.testing.assert_allclose(padded[0, :4], trimmed[0], rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(padded[0, 4:], 0)
  for bidirectional in (False, True):  # The summary reads each direction at its own last valid step.
    head = models.create('rnn', num_classes=3, cell=cell, features=5, layers=2, bidirectional=bidirectional)
    hv = head.init(jax.random.key(0), {'inputs': x, 'length': length})
    np.testing.assert_allclose(head.apply(hv, {'inputs': garbage, 'length': length})[0],
                               head.apply(hv, x[:1, :4])[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('pool', ['mean', 'flatten'])
def test_cnn1d_padding_changes_nothing(pool):
  """Stride 1: each valid step's features, and so a masked mean, equal the trimmed sequence's; flattened
  features see the padded steps as zeros whatever was there."""
  model = models.create('cnn1d', num_classes=3, widths=(4, 4), kernel=3, stride=1, pool=pool)
  x = _series(batch=2, steps=9)
  length = jnp.array([4, 9])
  variables = model.init(jax.random.key(0), {'inputs': x, 'length': length})
  out = model.apply(variables, {'inputs': x, 'length': length})
  garbage = x.at[0, 4:].set(100.0)
  np.testing.assert_allclose(model.apply(variables, {'inputs': garbage, 'length': length}), out, rtol=1e-5)
  if pool == 'mean':
    np.testing.assert_allclose(out[0], model.apply(variables, x[:1, :4])[0], rtol=1e-5, atol=1e-6)


def test_bidirectional_is_a_forward_rnn_on_the_reversed_masked_sequence():
  """The backward half of a bidirectional layer equals a forward RNN with its weights run on each sequence's
  valid steps reversed, its outputs reversed back; padding still changes nothing."""
  stack = recurrent.RecurrentStack('gru', features=4, bidirectional=True)
  x = _series(batch=2, steps=6)
  length = jnp.array([6, 3])
  variables = stack.init(jax.random.key(0), x, length)
  out = stack.apply(variables, x, length)
  forward = recurrent.RecurrentStack('gru', features=4)
  backward_params = variables['params']['layer0']['backward_rnn']
  for b in range(2):
    n = int(length[b])
    reversed_x = x[b:b + 1, :n][:, ::-1]
    expected = forward.apply({'params': {'layer0': backward_params}}, reversed_x)[0, ::-1]
    np.testing.assert_allclose(out[b, :n, 4:], expected, rtol=1e-5, atol=1e-6)
    expected_fwd = forward.apply({'params': {'layer0': variables['params']['layer0']['forward_rnn']}},
                                 x[b:b + 1, :n])[0]
    np.testing.assert_allclose(out[b, :n, :4], expected_fwd, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[b, n:], 0)


def _windows(model, variables, x, window):
  """Runs x [B, T] through `model` in windows, carrying the state as the train step does; returns the
  outputs concatenated over time."""
  outs, carry = [], variables['carry']
  for i in range(x.shape[1] // window):
    batch = {'inputs': x[:, i * window:(i + 1) * window], 'start': jnp.full(x.shape[:1], i == 0, jnp.int32)}
    out, updates = model.apply({'params': variables['params'], 'carry': carry}, batch, train=True,
                               mutable=['carry'])
    outs.append(out)
    carry = updates['carry']
  return jnp.concatenate(outs, axis=1)


@pytest.mark.parametrize('cell', ['lstm', 'gru'])
def test_truncated_bptt(cell):
  """Windows with a carried state compute what the whole sequence does; no gradient crosses a window
  boundary, and inside a window the gradient is full BPTT's."""
  model = models.create('rnn_tagger', num_classes=3, cell=cell, features=5, layers=2)
  x = _series(batch=2, steps=8, channels=1)
  window = 4
  variables = model.init(jax.random.key(0), {'inputs': x[:, :window], 'start': jnp.ones(2, jnp.int32)})
  whole = model.apply({'params': variables['params']}, x)
  np.testing.assert_allclose(_windows(model, variables, x, window), whole, rtol=1e-5, atol=1e-6)

  def second_window_loss(x):
    return jnp.sum(_windows(model, variables, x, window)[:, window:] ** 2)

  def full_loss(x):
    return jnp.sum(model.apply({'params': variables['params']}, x)[:, window:] ** 2)

  truncated, full = jax.grad(second_window_loss)(x), jax.grad(full_loss)(x)
  np.testing.assert_array_equal(truncated[:, :window], 0)
  assert np.abs(full[:, :window]).max() > 1e-4  # Full BPTT does reach back across the boundary.
  np.testing.assert_allclose(truncated[:, window:], full[:, window:], rtol=1e-4, atol=1e-6)
  # A window that begins a sequence starts from zeros, whatever state was carried.
  fresh = {'inputs': x[:, :window], 'start': jnp.ones(2, jnp.int32)}
  junk = jax.tree.map(lambda c: c + 3.0, variables['carry'])
  np.testing.assert_allclose(
      model.apply({'params': variables['params'], 'carry': junk}, fresh, train=True, mutable=['carry'])[0],
      whole[:, :window], rtol=1e-5, atol=1e-6)


def _source(seed=0):
  rng = np.random.default_rng(seed)
  return {'inputs': jnp.asarray(rng.integers(1, 12, (3, 7)), jnp.int32), 'length': jnp.array([7, 4, 2]),
          'targets': jnp.asarray(rng.integers(1, 12, (3, 5)), jnp.int32)}


@pytest.mark.parametrize('attention', ['additive', 'dot'])
def test_attention_weights_sum_to_one_and_skip_padding(attention):
  model = models.create('seq2seq', num_classes=12, vocab_size=12, features=8, embed_dim=4, attention=attention)
  x = _source()
  variables = model.init(jax.random.key(0), x)
  for train in (True, False):
    weights = np.asarray(model.apply(variables, x, train=train)['attention'])
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    for b, n in enumerate([7, 4, 2]):
      np.testing.assert_array_equal(weights[b, :, n:], 0)
    garbage = dict(x, inputs=x['inputs'].at[2, 2:].set(5))
    np.testing.assert_allclose(model.apply(variables, garbage, train=train)['logits'][2],
                               model.apply(variables, x, train=train)['logits'][2], rtol=1e-5, atol=1e-6)


def test_seq2seq_decodes_from_its_own_outputs_in_eval():
  """In training step t reads target t-1 (teacher forcing); in evaluation the targets are not read at all,
  and feeding the model's greedy outputs as targets in training mode reproduces the eval logits."""
  model = models.create('seq2seq', num_classes=12, vocab_size=12, features=8, embed_dim=4, attention='none')
  x = _source()
  variables = model.init(jax.random.key(0), x)
  train_logits = model.apply(variables, x, train=True)['logits']
  changed = dict(x, targets=x['targets'].at[:, 2].set(0))
  changed_logits = model.apply(variables, changed, train=True)['logits']
  np.testing.assert_array_equal(changed_logits[:, :3], train_logits[:, :3])
  assert np.abs(changed_logits[:, 3] - train_logits[:, 3]).max() > 0
  greedy = model.apply(variables, x, train=False)['logits']
  np.testing.assert_array_equal(model.apply(variables, changed, train=False)['logits'], greedy)
  fed = dict(x, targets=jnp.argmax(greedy, -1).astype(jnp.int32))
  np.testing.assert_allclose(model.apply(variables, fed, train=True)['logits'], greedy, rtol=1e-5, atol=1e-6)
  assert seq2seq.START == 1


def test_wavenet_is_causal():
  """Changing the input at step t changes no per-step output before t."""
  model = models.create('wavenet', num_classes=2, channels=4, dilations=(1, 2, 4), per_step=True)
  x = _series(batch=1, steps=16, channels=1)
  variables = model.init(jax.random.key(0), x)
  out = model.apply(variables, x)
  changed = model.apply(variables, x.at[0, 9].add(1.0))
  np.testing.assert_array_equal(out[0, :9], changed[0, :9])
  assert np.abs(out[0, 9:] - changed[0, 9:]).max() > 0
