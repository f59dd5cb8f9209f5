"""The jitted train and eval steps shared by every task: loss + penalties, optax update, metrics, norms."""

import jax
import jax.numpy as jnp
import optax

from jaxnets import optim
from jaxnets.train import diagnostics, sharding


def make_train_step(model, task, tx, schedule, opt_cfg, preprocess, layer_order, aux_loss_weight=0.0):
  """train_step(state, images, labels) -> (state, metrics), with metrics as scalars for this batch.

  Logits a model sows into 'aux_logits' in training (GoogLeNet's auxiliary classifiers) add
  aux_loss_weight times their task loss to the objective (Szegedy et al. 2014 use 0.3).
  """

  def train_step(state, images, labels):
    aug_key, dropout_key = jax.random.split(state.step_key())
    x = preprocess.train(aug_key, images)

    def loss_fn(params):
      logits, updates = model.apply({'params': params, 'batch_stats': state.batch_stats}, x,
                                    train=True, mutable=['batch_stats', 'aux_logits'],
                                    rngs={'dropout': dropout_key})
      data_loss = jnp.mean(task.loss(logits, labels))
      for aux in jax.tree.leaves(updates.get('aux_logits', {})):
        data_loss += aux_loss_weight * jnp.mean(task.loss(aux, labels))
      return data_loss + optim.penalty(params, opt_cfg), (logits, updates.get('batch_stats', {}))

    (total_loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    sums = task.metric_sums(logits, labels, jnp.ones(labels.shape[:1], jnp.float32))
    metrics = {'loss': sums['loss'] / sums['count'], 'error': sums['errors'] / sums['count'],
               'total_loss': total_loss, 'lr': schedule(state.step)}
    metrics.update(diagnostics.norms(grads, state.params, updates, layer_order))
    new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                              opt_state=opt_state)
    return new_state, metrics

  return train_step


def make_eval_step(model, task, preprocess):
  """eval_step(state, images, labels, mask) -> metric sums; BatchNorm uses its running averages."""

  def eval_step(state, images, labels, mask):
    logits = model.apply({'params': state.params, 'batch_stats': state.batch_stats},
                         preprocess.eval(images), train=False)
    return task.metric_sums(logits, labels, mask)

  return eval_step


def jit_steps(model, task, tx, schedule, opt_cfg, preprocess, layer_order, mesh, aux_loss_weight=0.0):
  """(train_step, eval_step) as the loop runs them: jitted, state donated, outputs replicated."""
  replicated = sharding.replicated(mesh)
  train_step = jax.jit(make_train_step(model, task, tx, schedule, opt_cfg, preprocess, layer_order,
                                       aux_loss_weight),
                       donate_argnums=0, out_shardings=(replicated, replicated))
  eval_step = jax.jit(make_eval_step(model, task, preprocess), out_shardings=replicated)
  return train_step, eval_step
