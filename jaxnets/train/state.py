"""The whole training state as one pytree, so it can be jitted, sharded and checkpointed as a unit."""

from typing import Any

import flax
import jax
import jax.numpy as jnp

# Collections a model writes only to report to the train step (see jaxnets.train.step), never state.
SOWN = ('losses', 'aux_outputs')
# Collections of per-example state a model carries from one step to the next (a recurrent net's state between
# truncated-BPTT windows): split by batch like the data, never frozen.
CARRIED = ('carry',)


@flax.struct.dataclass
class TrainState:
  """Parameters, the model's other variables, optimizer state, step and the run's base PRNG key.

  `model_state` holds every variable collection besides 'params' that the model updates as it runs
  ('batch_stats': BatchNorm's running averages). `params` and `opt_state` are whatever pytrees the
  model and the optax chain make (a GAN's two networks are one dict of two). `rng` holds raw key data;
  each step derives its own key as fold_in(rng, step), so a resumed run draws exactly the randomness an
  uninterrupted one would.
  """
  step: jax.Array
  params: Any
  model_state: Any
  opt_state: Any
  rng: jax.Array

  def step_key(self):
    """This step's PRNG key."""
    return jax.random.fold_in(jax.random.wrap_key_data(self.rng), self.step)


def init_state(model, tx, seed: int, sample_input) -> TrainState:
  """A fresh state: parameters drawn from `seed`, optimizer state from `tx`."""
  params_key, dropout_key, run_key = jax.random.split(jax.random.key(seed), 3)
  variables = model.init({'params': params_key, 'dropout': dropout_key}, sample_input, train=False)
  params = variables['params']
  model_state = {k: v for k, v in variables.items() if k not in ('params', *SOWN)}
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=model_state,
                    opt_state=tx.init(params), rng=jax.random.key_data(run_key))


def count_params(params) -> int:
  """The number of trainable scalars (BatchNorm running averages are not parameters)."""
  return int(sum(x.size for x in jax.tree.leaves(params)))
