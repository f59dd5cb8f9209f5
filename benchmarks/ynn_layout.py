"""Reproduces an XLA CPU defect: with the experimental YNN fusion of elementwise ops, a fusion whose operand
has a column-major layout fails ("Instruction with unsupported layout in YNN fusion"). jax's orthogonal
initializer hits it: the Gaussian it samples feeds a QR (LAPACK, column-major). jaxnets' own
`initializers.orthogonal` samples the transpose and runs. Prints which of the two compile and run.

  python -m benchmarks.ynn_layout
"""

from jaxnets import xla_env

xla_env.configure()

import jax  # noqa: E402  (after the XLA flags are set)
import os  # noqa: E402

from absl import app  # noqa: E402

from jaxnets.nn import initializers  # noqa: E402


def main(argv):
  del argv
  print('XLA_FLAGS:', os.environ.get('XLA_FLAGS', ''))
  for name, init in (('jax.nn.initializers.orthogonal()', jax.nn.initializers.orthogonal()),
                     ('jaxnets.nn.initializers.orthogonal', initializers.orthogonal)):
    try:
      jax.block_until_ready(jax.jit(init, static_argnums=1)(jax.random.key(0), (128, 128)))
      print(f'{name}: ok')
    except jax.errors.JaxRuntimeError as e:
      print(f'{name}: fails: {str(e).splitlines()[0][:160]}')


if __name__ == '__main__':
  app.run(main)
