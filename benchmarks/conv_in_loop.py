"""Minimal reproducer: XLA CPU runs a convolution's gradients tens of times slower inside a loop (lax.scan).

  python -m benchmarks.conv_in_loop

Two 3x3 convolutions (16 -> 16 channels, batch 128 of 32x32) with tanh between, unrolled or as a
lax.scan over their stacked kernels, timed forward and for the kernel and input gradients; then the
same with jaxnets' convolution (jaxnets.nn.conv), whose gradients are written in the layout XLA's fast
path takes. In the optimized HLO (printed with --hlo) the loop body's gradient convolutions keep
autodiff's dimension orders (dim_labels=b01f_01oi->b01f and f01b_i01o->01bf) instead of being rewritten
to b01f_01io->b01f as they are at the top level.
"""

import argparse
import time

from jaxnets import xla_env

xla_env.configure()  # jaxnets' XLA settings, as every entry point has them (before JAX starts).

import jax  # noqa: E402
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxnets.nn import conv as jaxnets_conv

_LAYOUT = ('NHWC', 'HWIO', 'NHWC')


def lax_conv(x, kernel):
  return lax.conv_general_dilated(x, kernel, (1, 1), ((1, 1), (1, 1)), dimension_numbers=_LAYOUT)


def our_conv(x, kernel):
  return jaxnets_conv.conv_general_dilated(x, kernel, (1, 1), ((1, 1), (1, 1)), dimension_numbers=_LAYOUT)


def unrolled(conv):
  def f(kernels, x):
    for kernel in kernels:
      x = jnp.tanh(conv(x, kernel))
    return x.sum()
  return f


def scanned(conv):
  return lambda kernels, x: lax.scan(lambda h, kernel: (jnp.tanh(conv(h, kernel)), None), x, kernels)[0].sum()


def milliseconds(fn, *args, calls: int = 5) -> float:
  """Mean ms per call of jit(fn) after a compiling call."""
  fn = jax.jit(fn)
  jax.block_until_ready(fn(*args))
  start = time.perf_counter()
  for _ in range(calls):
    out = fn(*args)
  jax.block_until_ready(out)
  return (time.perf_counter() - start) / calls * 1e3


def main():
  """Print forward, kernel-gradient and input-gradient times for each form."""
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--hlo', action='store_true', help='print the loop body convolutions of the lax form')
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(128, 32, 32, 16)), jnp.float32)
  kernels = jnp.asarray(rng.normal(size=(2, 3, 3, 16, 16)) * 0.1, jnp.float32)
  print(f'jax {jax.__version__}, {jax.devices()[0].device_kind}\n')
  print('| form | forward ms | kernel gradient ms | input gradient ms |\n|---|---:|---:|---:|')
  for name, f in (('unrolled, lax conv', unrolled(lax_conv)), ('lax.scan, lax conv', scanned(lax_conv)),
                  ('unrolled, jaxnets conv', unrolled(our_conv)), ('lax.scan, jaxnets conv', scanned(our_conv))):
    print(f'| {name} | {milliseconds(f, kernels, x):.1f} | {milliseconds(jax.grad(f), kernels, x):.1f} | '
          f'{milliseconds(jax.grad(f, 1), kernels, x):.1f} |')
  if args.hlo:
    text = jax.jit(jax.grad(scanned(lax_conv))).lower(kernels, x).compile().as_text()
    print('\n'.join(line.strip()[:200] for line in text.splitlines() if ' convolution(' in line))


if __name__ == '__main__':
  main()
