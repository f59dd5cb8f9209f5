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
# The seed of the 'sample' RNG stream (a VAE's z) when a model is initialized.
EVAL_SAMPLE_SEED = 0
# Folded into the run's key for evaluation's samples: out of the range of step numbers step_key folds in.
EVAL_STREAM = 2 ** 31 - 1


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

  def eval_key(self):
    """The key evaluations draw their samples from (the same at every step, apart from the steps' keys)."""
    return jax.random.fold_in(jax.random.wrap_key_data(self.rng), EVAL_STREAM)


def init_state(model, tx, seed: int, sample_input, networks: tuple = ()) -> TrainState:
  """A fresh state: parameters drawn from `seed`, optimizer state from `tx` (one per network of a task that
  trains several in turn)."""
  params_key, dropout_key, run_key = jax.random.split(jax.random.key(seed), 3)
  rngs = {'params': params_key, 'dropout': dropout_key, 'sample': jax.random.key(EVAL_SAMPLE_SEED)}
  variables = model.init(rngs, sample_input, train=False)
  params = variables['params']
  if networks and set(params) != set(networks):
    raise ValueError(f'the task trains the networks {", ".join(networks)} in turn; the model\'s parameters are '
                     f'{", ".join(params)}')
  model_state = {k: v for k, v in variables.items() if k not in ('params', *SOWN)}
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=model_state,
                    opt_state={n: tx.init(params[n]) for n in networks} if networks else tx.init(params),
                    rng=jax.random.key_data(run_key))


def count_params(params) -> int:
  """The number of trainable scalars (BatchNorm running averages are not parameters)."""
  return int(sum(x.size for x in jax.tree.leaves(params)))
