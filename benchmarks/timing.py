"""Throughput timing shared by the benchmarks."""

import time

import jax


def images_per_second(fn, images_per_call: int, calls: int) -> float:
  """img/s of `calls` calls fn(i), i = 1..calls, after one warm-up (compiling) call fn(0).

  fn returns something to block on, so asynchronous dispatch is timed to completion.
  """
  jax.block_until_ready(fn(0))
  start = time.perf_counter()
  for i in range(1, calls + 1):
    out = fn(i)
  jax.block_until_ready(out)
  return calls * images_per_call / (time.perf_counter() - start)
