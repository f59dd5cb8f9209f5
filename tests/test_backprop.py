"""The hand-written back-propagation of jaxnets.backprop against jax.grad of independently written losses (rows
as examples, lax.scan over time), against numbers worked out by hand, and truncated BPTT against its definition."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnets import backprop

SIZES = (4, 6, 5, 3)  # n_0 ... n_3: three layers.
BATCH = 5
T, N_IN, N_HIDDEN = 6, 3, 4

ACTIVATIONS = {'sigmoid': jax.nn.sigmoid, 'tanh': jnp.tanh, 'relu': jax.nn.relu}


def _assert_close(actual, expected):
  """Every leaf equal within float32 rounding: rtol 1e-5, atol 1e-5 of the leaf's largest magnitude."""
  for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
    assert a.shape == e.shape
    np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5 * max(np.abs(e).max(), 1e-6))


def _mlp_problem(loss, seed=0):
  """Random params [(W [out, in], b)], x [n_0, batch] and targets y [n_3, batch] (one-hot for cross-entropy)."""
  rng = np.random.default_rng(seed)
  params = [(rng.normal(size=(n_out, n_in)).astype(np.float32), rng.normal(size=n_out).astype(np.float32))
            for n_in, n_out in zip(SIZES[:-1], SIZES[1:])]
  x = rng.normal(size=(SIZES[0], BATCH)).astype(np.float32)
  if loss == 'cross_entropy':
    y = np.eye(SIZES[-1], dtype=np.float32)[:, rng.integers(SIZES[-1], size=BATCH)]
  else:
    y = rng.uniform(size=(SIZES[-1], BATCH)).astype(np.float32)
  return params, x, y


def _reference_mlp_error(params, x, y, activation, loss):
  """The same error the other way round: examples as rows (h W^T + b), flax's activations, optax's loss."""
  h = x.T
  for i, (W, b) in enumerate(params):
    logits = h @ W.T + b
    h = ACTIVATIONS[activation](logits) if i < len(params) - 1 or loss == 'squared' else logits
  if loss == 'squared':
    return 0.5 * jnp.sum((h - y.T) ** 2)
  return jnp.sum(optax.softmax_cross_entropy(h, y.T))


@pytest.mark.parametrize('loss', backprop.LOSSES)
@pytest.mark.parametrize('activation', sorted(ACTIVATIONS))
def test_mlp_gradients_equal_jax_grad(activation, loss):
  params, x, y = _mlp_problem(loss)
  error, grads = backprop.mlp_gradients(params, x, y, activation, loss)
  expected_error, expected = jax.value_and_grad(_reference_mlp_error)(params, x, y, activation, loss)
  _assert_close(error, expected_error)
  _assert_close(grads, expected)


def test_mlp_intermediates_are_indexed_by_layer_and_deltas_are_ds():
  params, x, y = _mlp_problem('squared')
  s, o = backprop.mlp_forward(params, x, 'tanh')
  _, deltas = backprop.mlp_backward(params, s, o, y, 'tanh')
  assert s[0] is None and deltas[0] is None and o[0] is x
  assert [a.shape for a in o] == [(n, BATCH) for n in SIZES]
  # delta^2 = dE/ds^2: the gradient of the error of layers 3.. as a function of s^2.
  rest = lambda s2: backprop.mlp_error(*backprop.mlp_forward(params[2:], jnp.tanh(s2), 'tanh'), y)
  _assert_close(deltas[2], jax.grad(rest)(s[2]))


def test_mlp_by_hand():
  # Two relu layers with one unit each; two examples, the columns of x.
  params = [(np.array([[1.5]], np.float32), np.array([-1.0], np.float32)),
            (np.array([[0.5]], np.float32), np.array([0.25], np.float32))]
  x = np.array([[2.0, -2.0]], np.float32)
  y = np.array([[0.25, -0.75]], np.float32)
  # Example 1: s1 = 1.5*2 - 1 = 2, o1 = 2; s2 = 0.5*2 + 0.25 = 1.25 = o2; E = (1.25-0.25)^2 / 2 = 0.5.
  #   delta2 = (o2 - y) * relu'(s2) = 1; dW2 = delta2 o1 = 2; db2 = 1.
  #   dE/do1 = W2 delta2 = 0.5; delta1 = 0.5 * relu'(2) = 0.5; dW1 = delta1 x = 1; db1 = 0.5.
  # Example 2: s1 = -4, o1 = 0 (dead); s2 = 0.25 = o2; E = (0.25+0.75)^2 / 2 = 0.5.
  #   delta2 = 1; dW2 = 1 * 0 = 0; db2 = 1; delta1 = 0.5 * relu'(-4) = 0: nothing reaches layer 1.
  # Summed over the batch: E = 1, dW2 = 2, db2 = 2, dW1 = 1, db1 = 0.5.
  s, o = backprop.mlp_forward(params, x, 'relu')
  grads, deltas = backprop.mlp_backward(params, s, o, y, 'relu')
  np.testing.assert_allclose(s[1], [[2.0, -4.0]])
  np.testing.assert_allclose(o[2], [[1.25, 0.25]])
  np.testing.assert_allclose(backprop.mlp_error(s, o, y), 1.0)
  np.testing.assert_allclose(deltas[2], [[1.0, 1.0]])
  np.testing.assert_allclose(deltas[1], [[0.5, 0.0]])
  for (dW, db), (want_dW, want_db) in zip(grads, [(1.0, 0.5), (2.0, 2.0)]):
    np.testing.assert_allclose(dW, [[want_dW]])
    np.testing.assert_allclose(db, [want_db])


def test_sigmoid_and_cross_entropy_by_hand():
  # One sigmoid unit, w = b = 0, x = 1, y = 1: o = 1/2, E = (1/2)^2 / 2 = 1/8,
  # delta = (o - y) sigmoid'(0) = -1/2 * 1/4 = -1/8 = dW = db.
  params = [(np.zeros((1, 1), np.float32), np.zeros(1, np.float32))]
  error, grads = backprop.mlp_gradients(params, np.ones((1, 1), np.float32), np.ones((1, 1), np.float32))
  np.testing.assert_allclose([error, grads[0][0][0, 0], grads[0][1][0]], [0.125, -0.125, -0.125])
  # Two softmax outputs, all weights 0, x = 3, label 0: softmax(0, 0) = (1/2, 1/2), E = log 2,
  # delta = o - y = (-1/2, 1/2), dW = delta x^T = (-3/2, 3/2), db = delta.
  params = [(np.zeros((2, 1), np.float32), np.zeros(2, np.float32))]
  x, y = np.array([[3.0]], np.float32), np.array([[1.0], [0.0]], np.float32)
  error, [(dW, db)] = backprop.mlp_gradients(params, x, y, 'relu', 'cross_entropy')
  np.testing.assert_allclose(error, np.log(2), rtol=1e-6)
  np.testing.assert_allclose(dW, [[-1.5], [1.5]])
  np.testing.assert_allclose(db, [-0.5, 0.5])


def test_unknown_names_list_the_choices():
  params, x, _ = _mlp_problem('squared')
  with pytest.raises(ValueError, match='valid choices: relu, sigmoid, tanh'):
    backprop.mlp_forward(params, x, 'elu')
  with pytest.raises(ValueError, match='valid choices: squared, cross_entropy'):
    backprop.mlp_forward(params, x, 'sigmoid', 'hinge')


def _rnn_problem(seed=0):
  """Random (W_x, W_y, b), xs [T, batch, n_in], a nonzero initial state Y(-1) and targets [T, batch, n_hidden]."""
  rng = np.random.default_rng(seed)
  normal = lambda *shape: (0.5 * rng.normal(size=shape)).astype(np.float32)
  params = (normal(N_IN, N_HIDDEN), normal(N_HIDDEN, N_HIDDEN), normal(N_HIDDEN))
  return params, normal(T, BATCH, N_IN), normal(BATCH, N_HIDDEN), normal(T, BATCH, N_HIDDEN)


def _scan_states(params, xs, y0):
  """Y(0) ... Y(T-1) by lax.scan of the cell: a second forward pass, independent of the module's loop."""
  W_x, W_y, b = params
  step = lambda y, x: (jnp.tanh(x @ W_x + y @ W_y + b),) * 2
  return jax.lax.scan(step, y0, xs)[1]


def _reference_rnn_error(params, xs, y0, targets):
  """1/2 the sum of squared errors of the scanned states, every step and example."""
  return 0.5 * jnp.sum((_scan_states(params, xs, y0) - targets) ** 2)


def _reference_truncated_error(params, xs, y0, targets, k):
  """The definition of truncate=k: the error at step t, from a state k steps back held constant (or from Y(-1))."""
  states = _scan_states(params, xs, y0)
  total = 0.0
  for t in range(len(xs)):
    start = max(t - k + 1, 0)
    y_start = jax.lax.stop_gradient(states[start - 1]) if start > 0 else y0
    total += 0.5 * jnp.sum((_scan_states(params, xs[start:t + 1], y_start)[-1] - targets[t]) ** 2)
  return total


# jax.grad of the references with respect to the params, xs and Y(-1), compiled once (eager scans are slow).
_rnn_value_and_grads = jax.jit(jax.value_and_grad(_reference_rnn_error, argnums=(0, 1, 2)))
_truncated_grads = jax.jit(jax.grad(_reference_truncated_error, argnums=(0, 1, 2)), static_argnums=4)


def _bptt(params, xs, y0, targets, truncate=None):
  """The module's (E, (param grads, dE/dxs, dE/dY(-1)))."""
  ys = backprop.rnn_forward(params, xs, y0)
  error, dys = backprop.rnn_squared_error(ys, targets)
  return error, backprop.rnn_backward(params, xs, ys, dys, y0, truncate)


def test_bptt_equals_jax_grad():
  params, xs, y0, targets = _rnn_problem()
  _assert_close(backprop.rnn_forward(params, xs, y0), _scan_states(params, xs, y0))
  error, grads = _bptt(params, xs, y0, targets)
  expected_error, expected = _rnn_value_and_grads(params, xs, y0, targets)
  _assert_close(error, expected_error)
  _assert_close(grads, expected)


def test_zero_initial_state_by_default():
  params, xs, _, targets = _rnn_problem(1)
  zeros = np.zeros((BATCH, N_HIDDEN), np.float32)
  _assert_close(_bptt(params, xs, None, targets), _bptt(params, xs, zeros, targets))


@pytest.mark.parametrize('k', [1, 2, 4])
def test_truncated_bptt_equals_its_definition(k):
  params, xs, y0, targets = _rnn_problem(2)
  _, grads = _bptt(params, xs, y0, targets, truncate=k)
  expected = _truncated_grads(params, xs, y0, targets, k)
  _assert_close(grads, expected)
  _, full = _bptt(params, xs, y0, targets)
  assert np.abs(np.asarray(grads[0][1]) - full[0][1]).max() > 1e-3  # Truncation does change dE/dW_y.


@pytest.mark.parametrize('k', [1, 2, 4])
def test_truncation_stops_the_last_loss_gradient_after_k_steps(k):
  params, xs, y0, _ = _rnn_problem(3)
  ys = backprop.rnn_forward(params, xs, y0)
  dys = np.zeros(ys.shape, np.float32)
  dys[-1] = np.random.default_rng(3).normal(size=(BATCH, N_HIDDEN))  # A loss on the last step only.
  _, dxs, dy0 = backprop.rnn_backward(params, xs, ys, dys, y0, truncate=k)
  _, full_dxs, _ = backprop.rnn_backward(params, xs, ys, dys, y0)
  # X(u) for u = T-k ... T-1 (the last k steps) gets the full gradient, every earlier step none.
  np.testing.assert_array_equal(dxs[:T - k], 0.0)
  assert np.all(np.abs(full_dxs[:T - k]).max(axis=(1, 2)) > 0)
  _assert_close(dxs[T - k:], full_dxs[T - k:])
  np.testing.assert_array_equal(dy0, 0.0)  # k < T: the initial state is out of reach.


@pytest.mark.parametrize('k', [T, T + 3])
def test_truncation_to_the_whole_sequence_is_full_bptt(k):
  params, xs, y0, targets = _rnn_problem(4)
  _assert_close(_bptt(params, xs, y0, targets, truncate=k), _bptt(params, xs, y0, targets))


def test_truncate_must_be_positive():
  params, xs, y0, targets = _rnn_problem()
  with pytest.raises(ValueError, match='truncate must be a positive number of steps or None, got 0'):
    _bptt(params, xs, y0, targets, truncate=0)
