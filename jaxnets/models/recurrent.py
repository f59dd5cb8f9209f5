"""Recurrent networks: the course's cells unrolled through time, deep and bidirectional, with variable lengths.

A sequence model's input is an array [B, T, C] (a series) or [B, T] (token ids, embedded first), or a
dict of the batch's sequence keys: {'inputs', 'length' (valid steps), 'start' (truncated BPTT: 1 where a
window begins a sequence)}. The cells are Flax's, each matching its course formula:
  - 'simple': nn.SimpleCell, Y(t) = tanh(X(t) W_x + Y(t-1) W_y + b) (one bias, on the input term);
  - 'lstm': nn.OptimizedLSTMCell, the LSTM with input, forget and output gates (Hochreiter & Schmidhuber
    1997, with Gers et al.'s forget gate), gates computed in one fused matrix product;
  - 'gru': nn.GRUCell (Cho et al. 2014), the reset gate applied to the recurrent term W_hn h + b_hn.
Unrolling is nn.RNN (a scan over time; gradients by back-propagation through time). With lengths, the
final state is the one at each sequence's last valid step (Flax's seq_lengths) and the outputs past it
are zeroed here, so padding changes nothing a loss sees.

Truncated BPTT: with a 'start' input, each layer keeps its final state in the 'carry' collection; the
next window starts from it (or from zeros where 'start' is 1) with no gradient across the boundary. The
train step returns that collection and the TrainState keeps, shards and checkpoints it (model_state).
Evaluation runs whole sequences from a zero state.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxnets.nn import initializers
from jaxnets.registry import Registry

# Recurrent kernels start orthogonal, as Flax's cells do, drawn by jaxnets' initializer (which XLA CPU's fused
# build can compile; see initializers.orthogonal).
CELLS = Registry('recurrent cell')
for _name, _cell in (('simple', nn.SimpleCell), ('lstm', nn.OptimizedLSTMCell), ('gru', nn.GRUCell)):
  CELLS.register(_name, functools.partial(_cell, recurrent_kernel_init=initializers.orthogonal))
CARRY = 'carry'  # The collection holding each layer's state between truncated-BPTT windows.


def unpack(x) -> tuple:
  """(inputs, length or None, start or None) from a sequence model's input (an array or a dict)."""
  if isinstance(x, dict):
    return x['inputs'], x.get('length'), x.get('start')
  return x, None, None


def embed(inputs, vocab_size: int, features: int):
  """Token ids [B, T] embedded to [B, T, features]; a float series [B, T, C] as it is."""
  if not jnp.issubdtype(inputs.dtype, jnp.integer):
    return inputs
  if vocab_size < 1:
    raise ValueError(f'token inputs need vocab_size >= 1 (the dataset gives it), got {vocab_size}')
  return nn.Embed(vocab_size, features, name='embed')(inputs)


def valid_steps(length, steps: int):
  """[B, T] bool: True at the steps before each sequence's length; None (every step valid) without one."""
  if length is None:
    return None
  return jnp.arange(steps)[None, :] < length[:, None]


def mask_steps(outputs, length):
  """Outputs [B, T, F] zeroed past each sequence's length."""
  valid = valid_steps(length, outputs.shape[1])
  return outputs if valid is None else jnp.where(valid[..., None], outputs, 0)


class RecurrentStack(nn.Module):
  """A deep RNN: `layers` recurrent layers of `features` units, dropout between layers (training only);
  bidirectional layers concatenate a forward and a backward RNN's outputs. Returns outputs [B, T, F]."""
  cell: str = 'gru'
  features: int = 128
  layers: int = 1
  bidirectional: bool = False
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, length=None, start=None, train: bool = False):
    cell_class = CELLS.get(self.cell)
    new_cell = lambda: cell_class(self.features, parent=None)  # Unbound: each RNN holds its cell's params.
    if start is not None and self.bidirectional:
      raise ValueError('truncated BPTT (data.window) needs a forward-only RNN: set model.bidirectional=False')
    for i in range(self.layers):
      if i:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
      if self.bidirectional:
        x = nn.Bidirectional(nn.RNN(new_cell(), parent=None), nn.RNN(new_cell(), parent=None),
                             name=f'layer{i}')(x, seq_lengths=length)
      else:
        rnn = nn.RNN(new_cell(), return_carry=start is not None, name=f'layer{i}')
        out = rnn(x, seq_lengths=length, initial_carry=self._carried(i, cell_class, x, start))
        if start is None:
          x = out
        else:
          carry, x = out
          if self.is_mutable_collection(CARRY):
            self.put_variable(CARRY, f'layer{i}_state', carry)
      x = mask_steps(x, length)
    return x

  def _carried(self, i: int, cell_class, x, start):
    """Layer i's initial state: None (zeros) without 'start'; else the previous window's final state, reset
    to zeros where a window begins its sequence, with no gradient across the boundary."""
    if start is None:
      return None
    zeros = cell_class(self.features, parent=None).initialize_carry(jax.random.key(0), x[:, 0].shape)
    previous = self.variable(CARRY, f'layer{i}_state', lambda: zeros).value
    begin = start.astype(bool)[:, None]
    return jax.tree.map(lambda z, p: jnp.where(begin, z, jax.lax.stop_gradient(p)), zeros, previous)


def last_step(outputs, length, bidirectional: bool):
  """The sequence's summary [B, F]: the forward output at the last valid step, and for a bidirectional
  RNN the backward output at step 0 (which has read the whole sequence)."""
  steps = outputs.shape[1]
  index = jnp.full(outputs.shape[:1], steps - 1) if length is None else jnp.maximum(length - 1, 0)
  last = jnp.take_along_axis(outputs, index[:, None, None], axis=1)[:, 0]
  if not bidirectional:
    return last
  half = outputs.shape[-1] // 2
  return jnp.concatenate([last[:, :half], outputs[:, 0, half:]], axis=-1)


class RNN(nn.Module):
  """A deep RNN with a Dense head of num_classes outputs: series to vector (read at its last valid step:
  class logits, or forecasts of the next values), or with per_step=True series to series (an output at
  every step, [B, T, num_classes]; trains by full or truncated BPTT)."""
  num_classes: int = 10
  cell: str = 'gru'
  features: int = 128
  layers: int = 1
  bidirectional: bool = False
  dropout: float = 0.0
  vocab_size: int = 0
  embed_dim: int = 64
  per_step: bool = False

  @nn.compact
  def __call__(self, x, train: bool = False):
    inputs, length, start = unpack(x)
    h = embed(inputs, self.vocab_size, self.embed_dim)
    h = RecurrentStack(self.cell, self.features, self.layers, self.bidirectional, self.dropout,
                       name='rnn')(h, length, start, train)
    if self.per_step:
      return mask_steps(nn.Dense(self.num_classes, name='head')(h), length)
    return nn.Dense(self.num_classes, name='head')(last_step(h, length, self.bidirectional))


ENTRIES = {'rnn': RNN, 'rnn_tagger': functools.partial(RNN, per_step=True)}
