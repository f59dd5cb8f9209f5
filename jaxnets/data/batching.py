"""Deterministic batches of split dicts: a batch is a pure function of (seed, step); resumed runs replay it."""

from collections.abc import Iterator
import functools

import jax
import numpy as np

from jaxnets.data.source import num_examples


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  """Full batches per epoch; the remainder of each epoch is dropped."""
  if not 0 < batch_size <= num_examples:
    raise ValueError(f'batch_size {batch_size} must be in [1, num_examples={num_examples}]')
  return num_examples // batch_size


def train_indices(num_examples: int, batch_size: int, seed: int, step: int) -> np.ndarray:
  """Example indices of global step `step`: its slice of epoch's permutation from rng([seed, epoch]).

  Batches never straddle epochs, so epoch = step // steps_per_epoch (equal to
  step * batch_size // num_examples only when batch_size divides num_examples).
  """
  epoch, batch = divmod(step, steps_per_epoch(num_examples, batch_size))
  return _epoch_order(num_examples, seed, epoch)[batch * batch_size:(batch + 1) * batch_size]


@functools.lru_cache(maxsize=4)
def _epoch_order(num_examples: int, seed: int, epoch: int) -> np.ndarray:
  """The epoch's example order, cached (read-only) since every step of the epoch slices it."""
  order = np.random.default_rng([seed, epoch]).permutation(num_examples)
  order.flags.writeable = False
  return order


def gather(split: dict, indices: np.ndarray) -> dict:
  """The examples at `indices` of every feature of a split (rows read from disk for memory-mapped ones)."""
  return {k: v[indices] for k, v in split.items()}


def eval_batches(split: dict, batch_size: int) -> Iterator[tuple[dict, np.ndarray]]:
  """Yields (batch, mask) covering each example once; the last batch is zero-padded with mask 0."""
  n = num_examples(split)
  for start in range(0, n, batch_size):
    batch = {k: v[start:start + batch_size] for k, v in split.items()}
    mask = np.ones(batch_size, np.float32)
    short = batch_size - min(batch_size, n - start)
    if short:
      batch = {k: np.concatenate([v, np.zeros((short,) + v.shape[1:], v.dtype)]) for k, v in batch.items()}
      mask[-short:] = 0
    yield batch, mask


def process_slice(global_batch_size: int, process_index: int | None = None,
                  process_count: int | None = None) -> slice:
  """The contiguous part of each global batch this process feeds (defaults: jax's process index/count)."""
  index = jax.process_index() if process_index is None else process_index
  count = jax.process_count() if process_count is None else process_count
  if global_batch_size % count:
    raise ValueError(
        f'global batch size {global_batch_size} is not divisible by process_count {count}')
  per_process = global_batch_size // count
  return slice(index * per_process, (index + 1) * per_process)
