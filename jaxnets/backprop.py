"""Back-propagation written out as the course derives it, for teaching: an MLP and a recurrent cell through time.

Why: jax.grad gives the same numbers (tests/test_backprop.py checks that) but hides the derivation. Here every
quantity on the slides is an array a teacher can print: the pre-activations s^l, the activations o^l, the
deltas dE/ds^l, and each gradient as the product the chain rule gives. Plain jax.numpy with explicit Python
loops over layers and time steps: clarity over speed, so keep it out of training code.

Batches follow the slides' column vectors: an MLP's x is [n_0, batch], one column per example, so every line
reads as its formula (s = W o + b, W^T delta, delta o^T). The recurrent cell uses the course's row vectors
instead, as its formula is written: X(t) is [batch, n_in]. The error E is always the SUM over the batch's
examples (and over time steps); divide the gradients by the batch size for the mean.
"""

import jax.numpy as jnp

from jaxnets.registry import Registry

LOSSES = ('squared', 'cross_entropy')


def _sigmoid(s):
  """1 / (1 + e^-s)."""
  return 1 / (1 + jnp.exp(-s))


def _sigmoid_prime(s):
  """sigmoid'(s) = sigmoid(s) (1 - sigmoid(s))."""
  return _sigmoid(s) * (1 - _sigmoid(s))


def _tanh_prime(s):
  """tanh'(s) = 1 - tanh(s)^2."""
  return 1 - jnp.tanh(s) ** 2


def _relu(s):
  """max(s, 0)."""
  return jnp.maximum(s, 0)


def _relu_prime(s):
  """1 where s > 0, else 0 (the derivative at 0 taken as 0, as jax.nn.relu's)."""
  return (s > 0).astype(s.dtype)


def _softmax(s):
  """Softmax over each column (the units of one example), shifted by the column's max for stability."""
  e = jnp.exp(s - s.max(axis=0, keepdims=True))
  return e / e.sum(axis=0, keepdims=True)


ACTIVATIONS = Registry('backprop activation')  # name -> (phi, phi'), each derivative written by hand.
ACTIVATIONS.register('sigmoid', (_sigmoid, _sigmoid_prime))
ACTIVATIONS.register('tanh', (jnp.tanh, _tanh_prime))
ACTIVATIONS.register('relu', (_relu, _relu_prime))


def _check_loss(loss: str) -> None:
  """An error naming the valid losses unless `loss` is one."""
  if loss not in LOSSES:
    raise ValueError(f'unknown loss {loss!r}; valid choices: {", ".join(LOSSES)}')


def mlp_forward(params, x, activation: str = 'sigmoid', loss: str = 'squared'):
  """(s, o): lists indexed by layer as on the slides, s[l] = W^l o[l-1] + b^l and o[l] = phi(s[l]).

  `params` is [(W^1, b^1), ..., (W^L, b^L)] (params[l-1] is layer l) with W^l of shape [n_l, n_{l-1}] as on
  the slides and b^l of shape [n_l]; x is [n_0, batch]. o[0] = x and s[0] = None (layer 0 is the input).
  With loss 'cross_entropy' the last layer's activation is softmax(s^L) in place of phi.
  """
  _check_loss(loss)
  phi, _ = ACTIVATIONS.get(activation)
  s, o = [None], [x]
  for l, (W, b) in enumerate(params, start=1):
    s.append(W @ o[l - 1] + b[:, None])
    last = l == len(params)
    o.append(_softmax(s[l]) if last and loss == 'cross_entropy' else phi(s[l]))
  return s, o


def mlp_error(s, o, y, loss: str = 'squared'):
  """E summed over the batch: 1/2 ||o^L - y||^2 ('squared') or -sum y log softmax(s^L) ('cross_entropy')."""
  _check_loss(loss)
  if loss == 'squared':
    return 0.5 * jnp.sum((o[-1] - y) ** 2)
  shifted = s[-1] - s[-1].max(axis=0)  # log softmax(s^L), shifted by each column's max for stability
  return -jnp.sum(y * (shifted - jnp.log(jnp.exp(shifted).sum(axis=0))))


def mlp_backward(params, s, o, y, activation: str = 'sigmoid', loss: str = 'squared'):
  """(grads, deltas): [(dE/dW^l, dE/db^l)] in params' structure, and deltas[l] = dE/ds^l (deltas[0] = None).

  s and o are mlp_forward's; y is [n_L, batch]. For 'cross_entropy' each column of y must sum to 1 (one-hot
  labels), which makes delta^L = o^L - y.
  """
  _check_loss(loss)
  _, phi_prime = ACTIVATIONS.get(activation)
  L = len(params)
  deltas = [None] * (L + 1)
  if loss == 'squared':
    deltas[L] = (o[L] - y) * phi_prime(s[L])  # dE/ds^L = dE/do^L * phi'(s^L)
  else:
    deltas[L] = o[L] - y  # softmax and cross-entropy together: dE/ds^L = o^L - y
  grads = [None] * L
  for l in range(L, 0, -1):
    W, _ = params[l - 1]
    grads[l - 1] = (deltas[l] @ o[l - 1].T, deltas[l].sum(axis=1))  # delta^l o^{l-1}^T; delta^l (summed)
    if l > 1:
      grad_o = W.T @ deltas[l]  # dE/do^{l-1}
      deltas[l - 1] = grad_o * phi_prime(s[l - 1])
  return grads, deltas


def mlp_gradients(params, x, y, activation: str = 'sigmoid', loss: str = 'squared'):
  """(E, grads): forward, error and backward in one call."""
  s, o = mlp_forward(params, x, activation, loss)
  grads, _ = mlp_backward(params, s, o, y, activation, loss)
  return mlp_error(s, o, y, loss), grads


def rnn_forward(params, xs, y0=None):
  """ys [T, batch, n_hidden], ys[t] = Y(t) = tanh(X(t) W_x + Y(t-1) W_y + b), from Y(-1) = y0 (zeros if None).

  `params` is (W_x [n_in, n_hidden], W_y [n_hidden, n_hidden], b [n_hidden]); xs is [T, batch, n_in], time
  first so that xs[t] is X(t) (a [batch, T, n_in] series: xs.swapaxes(0, 1)).
  """
  W_x, W_y, b = params
  y = jnp.zeros((xs.shape[1], W_y.shape[0]), xs.dtype) if y0 is None else y0
  ys = []
  for t in range(len(xs)):
    y = jnp.tanh(xs[t] @ W_x + y @ W_y + b)
    ys.append(y)
  return jnp.stack(ys)


def rnn_squared_error(ys, targets):
  """(E, dys): E = 1/2 sum_t ||Y(t) - target(t)||^2 over steps and examples, and dys[t] = dE/dY(t) at step t."""
  return 0.5 * jnp.sum((ys - targets) ** 2), ys - targets


def _bptt(params, xs, ys, dys, y0):
  """Full back-propagation through time over the given steps: ((dW_x, dW_y, db), dxs, dy0)."""
  W_x, W_y, b = params
  dW_x, dW_y, db = jnp.zeros_like(W_x), jnp.zeros_like(W_y), jnp.zeros_like(b)
  dxs = [None] * len(xs)
  carried = jnp.zeros_like(ys[0])  # dE/dY(t) carried back from step t+1: none into the last step
  for t in reversed(range(len(xs))):
    y_prev = ys[t - 1] if t > 0 else y0
    dy = dys[t] + carried  # dE/dY(t): the loss at step t and, through Y(t+1), every later one
    delta = dy * (1 - ys[t] ** 2)  # dE/ds(t), s(t) the pre-activation: tanh'(s(t)) = 1 - Y(t)^2
    dW_x += xs[t].T @ delta
    dW_y += y_prev.T @ delta
    db += delta.sum(axis=0)
    dxs[t] = delta @ W_x.T  # dE/dX(t)
    carried = delta @ W_y.T  # dE/dY(t-1), carried back to the previous step
  return (dW_x, dW_y, db), jnp.stack(dxs), carried


def rnn_backward(params, xs, ys, dys, y0=None, truncate: int | None = None):
  """((dE/dW_x, dE/dW_y, dE/db), dE/dxs [T, batch, n_in], dE/dY(-1)) by back-propagation through time.

  ys is rnn_forward's output for xs and y0; dys[t] is the loss's own gradient dE/dY(t) at step t, before any
  flows back from later steps (rnn_squared_error gives it). The loop runs from the last step to the first.

  `truncate` k (None: no truncation): the gradient of the loss at step t flows back through at most the k
  steps t-k+1, ..., t, and stops at Y(t-k), treated as a constant. So the loss at step t gives dE/dX(u) only
  for t-k < u <= t, reaches dE/dY(-1) only if t < k, and adds to the weight gradients only at those k steps;
  k = 1 back-propagates through no earlier step, and k >= T is full BPTT. Computed literally: one full BPTT
  per loss step over its own window, summed (T windows, so T times the work).
  """
  if truncate is not None and truncate < 1:
    raise ValueError(f'truncate must be a positive number of steps or None, got {truncate}')
  y0 = jnp.zeros_like(ys[0]) if y0 is None else y0
  if truncate is None or truncate >= len(xs):
    return _bptt(params, xs, ys, dys, y0)
  grads = tuple(jnp.zeros_like(p) for p in params)
  dxs, dy0 = jnp.zeros_like(xs), jnp.zeros_like(y0)
  for t in range(len(xs)):
    start = max(t - truncate + 1, 0)  # the window's first step
    only_t = jnp.zeros_like(ys[start:t + 1]).at[-1].set(dys[t])  # the loss at step t alone
    window = _bptt(params, xs[start:t + 1], ys[start:t + 1], only_t, ys[start - 1] if start > 0 else y0)
    grads = tuple(g + w for g, w in zip(grads, window[0]))
    dxs = dxs.at[start:t + 1].add(window[1])
    if start == 0:
      dy0 += window[2]
  return grads, dxs, dy0
