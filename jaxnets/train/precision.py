"""Mixed precision (config.train.compute_dtype): the model's arithmetic in bfloat16, everything kept in float32.

The policy of DeepMind's jmp, 'params=float32, compute=bfloat16, output=float32': the steps call the model
through `mixed_apply`, which casts the floating-point parameters and inputs to the compute dtype and the
floating-point outputs (sown losses and auxiliary outputs included) back to float32. So the parameters,
the optimizer state, the task's loss and metrics stay float32, and so do the gradients: they are taken
with respect to the float32 parameters, through the cast. The model state is passed as it is: flax's
BatchNorm computes batch statistics in float32 whatever its input's dtype, so its running averages stay
float32. Integer inputs (uint8 images, token ids) are never cast. No model takes a dtype argument.
float16 is not offered: its narrow exponent range would need loss scaling.
"""

import jax
import jax.numpy as jnp

COMPUTE_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def check(name: str) -> None:
  """A one-line error unless `name` is a valid config.train.compute_dtype."""
  if name not in COMPUTE_DTYPES:
    raise ValueError(f'unknown train.compute_dtype {name!r}; valid choices: {", ".join(COMPUTE_DTYPES)}')


def cast_floating(tree, dtype):
  """`tree` with every floating-point array cast to `dtype`; integer and boolean leaves, and Python numbers (a
  GAN's sample count), as they are."""
  return jax.tree.map(lambda x: x.astype(dtype) if hasattr(x, 'dtype') and jnp.issubdtype(x.dtype, jnp.floating)
                      else x, tree)


def mixed_apply(apply, compute_dtype: str):
  """A model's `apply` computing in `compute_dtype` with float32 outputs; `apply` itself for 'float32', so a
  float32 step traces no cast at all and computes exactly what it did before mixed precision existed."""
  check(compute_dtype)
  if compute_dtype == 'float32':
    return apply
  dtype = COMPUTE_DTYPES[compute_dtype]

  def apply_in_dtype(variables, inputs, **kwargs):
    variables = {**variables, 'params': cast_floating(variables['params'], dtype)}
    return cast_floating(apply(variables, cast_floating(inputs, dtype), **kwargs), jnp.float32)

  return apply_in_dtype
