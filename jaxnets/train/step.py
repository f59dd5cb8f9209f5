"""The jitted train and eval steps shared by every task: loss + extra losses + penalties, optax update, metrics.

Batches are dicts. The model sees `task.inputs(batch)` after device-side preprocessing. Besides its
outputs a model may sow, in training:
  - into 'losses': terms added to the objective as they are (a VAE's KL divergence, a sparsity penalty),
    each a scalar or per-example [B] (then averaged), logged as train/loss/<name>;
  - into 'aux_outputs': extra predictions of the task's own kind (GoogLeNet's auxiliary classifiers),
    each scored by the task's loss and weighted by train.aux_loss_weight, logged as train/loss/<name>.
Every other mutable collection the model keeps (BatchNorm's 'batch_stats') is the state's `model_state`.
RNG streams: 'dropout' in training; 'sample' (a VAE's z) in training, and from one fixed key in evaluation.
The model computes in `compute_dtype` (config.train.compute_dtype; see jaxnets.train.precision): its
outputs, the loss, the gradients and the whole state are float32 whatever that is.
"""

import jax
import jax.numpy as jnp
import optax

from jaxnets import optim
from jaxnets.train import diagnostics, precision, sharding
from jaxnets.train.state import CARRIED, SOWN


def _named_terms(tree, term) -> dict:
  """{'loss/<path>': sum of term(leaf)} over a sown collection; sow keeps a tuple of every value sown
  under a name (a shared module, a penalty per time step), and all of them count."""
  out = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
    name = '/'.join(['loss'] + [str(k.key) for k in path if isinstance(k, jax.tree_util.DictKey)])
    out[name] = out.get(name, 0.0) + term(leaf)
  return out


def make_train_step(model, task, tx, schedule, opt_cfg, preprocess, layers, aux_loss_weight=0.0,
                    compute_dtype='float32'):
  """train_step(state, batch) -> (state, metrics): this batch's scalars, {'task': the task's training
  metrics, 'diagnostics': extra loss terms, total loss, learning rate, gradient/parameter/update norms}.
  A task that names several `networks` gets the alternating step (`make_alternating_train_step`)."""
  if task.networks:
    return make_alternating_train_step(model, task, tx, schedule, opt_cfg, preprocess, layers, compute_dtype)
  apply = precision.mixed_apply(model.apply, compute_dtype)

  def train_step(state, batch):
    aug_key, dropout_key = jax.random.split(state.step_key())
    batch = preprocess.train(aug_key, batch)

    def loss_fn(params):
      outputs, updates = apply({'params': params, **state.model_state}, task.inputs(batch), train=True,
                               mutable=[*state.model_state, *SOWN],
                               rngs={'dropout': dropout_key, 'sample': jax.random.fold_in(dropout_key, 1)})
      data_loss = jnp.mean(task.loss(outputs, batch))
      extra = _named_terms(updates.get('aux_outputs', {}),
                           lambda aux: aux_loss_weight * jnp.mean(task.loss(aux, batch)))
      extra.update(_named_terms(updates.get('losses', {}), jnp.mean))
      for term in extra.values():
        data_loss += term
      model_state = {k: v for k, v in updates.items() if k not in SOWN}
      return data_loss + optim.penalty(params, opt_cfg), (outputs, model_state, extra)

    (total_loss, (outputs, model_state, extra)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {'task': task.train_metrics(outputs, batch),
               'diagnostics': {**extra, 'total_loss': total_loss, 'lr': schedule(state.step),
                               **diagnostics.norms(grads, state.params, updates, layers)}}
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              model_state=optim.keep_frozen(model_state, state.model_state, opt_cfg, CARRIED))
    return new_state, metrics

  return train_step


def make_alternating_train_step(model, task, tx, schedule, opt_cfg, preprocess, layers, compute_dtype='float32'):
  """The train step of a task that trains several networks in turn (a GAN's discriminator, then its generator).

  Each of `task.networks` is a top-level part of the parameters with its own optimizer state. In order, each
  takes one step on `task.network_loss` differentiated with respect to its own parameters only, seeing the
  others as the previous networks' updates left them and the model state (BatchNorm statistics) as they
  were passed on. Metrics: the task's terms, 'loss' the networks' objectives added (with any weight penalty;
  what the progress line and the divergence check read), and norms over all networks' gradients and
  updates together.
  """
  apply = precision.mixed_apply(model.apply, compute_dtype)

  def train_step(state, batch):
    aug_key, dropout_key = jax.random.split(state.step_key())
    batch = preprocess.train(aug_key, batch)
    params, model_state, opt_state = dict(state.params), state.model_state, dict(state.opt_state)
    terms = {'loss': 0.0}
    grads = {k: jax.tree.map(jnp.zeros_like, v) for k, v in params.items()}  # Filled in per network below.
    updates = dict(grads)
    for i, network in enumerate(task.networks):

      def loss_fn(own, network=network):
        variables = {'params': {**params, network: own}, **model_state}
        loss, (metrics, new_state) = task.network_loss(network, apply, variables, batch,
                                                       jax.random.fold_in(dropout_key, i))
        return loss + optim.penalty(own, opt_cfg), (metrics, new_state)

      (loss, (metrics, model_state)), grads[network] = jax.value_and_grad(loss_fn, has_aux=True)(params[network])
      terms['loss'] += loss
      updates[network], opt_state[network] = tx.update(grads[network], opt_state[network], params[network])
      params[network] = optax.apply_updates(params[network], updates[network])
      terms.update(metrics)
    metrics = {'task': terms, 'diagnostics': {'total_loss': terms['loss'], 'lr': schedule(state.step),
                                              **diagnostics.norms(grads, state.params, updates, layers)}}
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state, model_state=model_state), metrics

  return train_step


def make_eval_step(model, task, preprocess, compute_dtype='float32'):
  """eval_step(state, batch, mask, index, stream) -> the task's eval outputs; BatchNorm uses its running
  averages. The 'sample' RNG stream (a VAE's z, a GAN's samples) draws from the run's key folded with the
  split's `stream` (the loop's test, train and validation evaluations differ) and the batch's `index` in
  it: every batch has its own noise, every evaluation of a split the same, and each seed its own."""
  apply = precision.mixed_apply(model.apply, compute_dtype)

  def eval_step(state, batch, mask, index=0, stream=0):
    batch = preprocess.eval(batch)
    key = jax.random.fold_in(jax.random.fold_in(state.eval_key(), stream), index)
    outputs = apply({'params': state.params, **state.model_state}, task.inputs(batch), train=False,
                    rngs={'sample': key})
    return task.eval_outputs(outputs, batch, mask)

  return eval_step


def make_predict_step(model, task, preprocess, compute_dtype='float32'):
  """predict_step(state, batch) -> the task's per-example predictions, in eval mode, sampling as the test
  evaluation's first batch does."""
  apply = precision.mixed_apply(model.apply, compute_dtype)

  def predict_step(state, batch):
    batch = preprocess.eval(batch)
    outputs = apply({'params': state.params, **state.model_state}, task.inputs(batch), train=False,
                    rngs={'sample': jax.random.fold_in(jax.random.fold_in(state.eval_key(), 0), 0)})
    return task.predict(outputs, batch)

  return predict_step


def jit_steps(model, task, tx, schedule, opt_cfg, preprocess, layers, mesh, aux_loss_weight=0.0,
              compute_dtype='float32', state_sharding=None):
  """(train_step, eval_step) as the loop runs them: jitted, state donated and laid out as `state_sharding`
  (default: replicated), metrics replicated."""
  replicated = sharding.replicated(mesh)
  train_step = jax.jit(make_train_step(model, task, tx, schedule, opt_cfg, preprocess, layers,
                                       aux_loss_weight, compute_dtype),
                       donate_argnums=0, out_shardings=(state_sharding or replicated, replicated))
  eval_step = jax.jit(make_eval_step(model, task, preprocess, compute_dtype), out_shardings=replicated)
  return train_step, eval_step


def jit_predict_step(model, task, preprocess, mesh, compute_dtype='float32'):
  """The predict step, jitted with replicated outputs."""
  return jax.jit(make_predict_step(model, task, preprocess, compute_dtype), out_shardings=sharding.replicated(mesh))
