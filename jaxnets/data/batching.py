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


def check_window(spec, window: int) -> None:
  """A truncated-BPTT window must split the dataset's unpadded sequences evenly (0: whole sequences)."""
  if window < 0:
    raise ValueError(f'data.window={window} must be >= 0 (0: whole sequences, full BPTT)')
  if not window:
    return
  if 'inputs' not in spec.features or 'length' in spec.features:
    raise ValueError(f'data.window={window}: truncated BPTT needs a dataset of unpadded sequences; '
                     f'{spec.name!r} has features {", ".join(spec.features)}')
  steps = spec.features['inputs'][0][0]
  if not any(k != 'inputs' and shape[:1] == (steps,) for k, (shape, _) in spec.features.items()):
    raise ValueError(f'data.window={window}: truncated BPTT needs a target at every step; {spec.name!r} has '
                     f'features {", ".join(spec.features)} with one per sequence')
  if steps % window:
    divisors = [d for d in range(1, steps + 1) if steps % d == 0]
    raise ValueError(f'data.window={window} does not divide the {steps} steps of {spec.name!r}; '
                     f'valid choices: {", ".join(map(str, divisors))}')


def window_step(num_examples: int, batch_size: int, seed: int, step: int, windows: int) -> tuple[np.ndarray, int]:
  """(sequence indices, window index) of truncated-BPTT step `step`: the same batch of sequences for
  `windows` consecutive steps, one window each in order, then the next batch (drawn as train_indices)."""
  group, window_index = divmod(step, windows)
  return train_indices(num_examples, batch_size, seed, group), window_index


def gather_window(split: dict, indices: np.ndarray, index: int, window: int) -> dict:
  """The examples at `indices`, only window `index` (of length `window`) of every time-major feature read,
  and 'start' [B]: 1 where the window begins its sequences (the model resets its carried state there)."""
  steps = split['inputs'].shape[1]
  part = slice(index * window, (index + 1) * window)
  out = {k: v[indices, part] if v.ndim > 1 and v.shape[1] == steps else v[indices] for k, v in split.items()}
  out['start'] = np.full(len(indices), index == 0, np.int32)
  return out
