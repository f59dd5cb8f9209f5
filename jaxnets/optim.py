"""The optimizer as one optax chain built from `config.optimizer`, and the regularizers that go into the loss.

The chain is: clip each element (clip_value), clip the global norm (clip_norm), the optimizer's
preconditioner (below), decoupled weight decay (weight_decay_mode='decoupled'), then scaling by
-schedule(step). The learning rate is applied last, so decoupled decay subtracts
weight_decay * schedule(step) * w from every optimizer's update (AdamW / SGDW), never passing through
momentum or adaptive scaling. Step t (counting from 0) uses schedule(t).

Each preconditioner follows optax's conventions; where eps sits:
  sgd       g
  momentum  v = g + momentum*v, gives v (no dampening, as PyTorch)
  nesterov  v = g + momentum*v, gives g + momentum*v
  adagrad   G = G + g^2 with G starting at initial_accumulator, gives g / sqrt(G + eps)
  adadelta  Eg = rho*Eg + (1-rho)*g^2; d = sqrt(Ex + eps) / sqrt(Eg + eps) * g; Ex = rho*Ex + (1-rho)*d^2;
            gives d (eps inside both roots; classic Adadelta is lr=1)
  rmsprop   n = rho*n + (1-rho)*g^2 with n starting at 0, gives g / sqrt(n + eps) (eps inside the root, as
            TF); with momentum > 0 that goes through `momentum`'s trace before the learning rate (as
            PyTorch; optax.rmsprop traces after it, which differs only while the schedule changes)
  adam      m, v moving averages (b1, b2), bias-corrected by 1 - b^t, gives m_hat / (sqrt(v_hat) + eps)
  adamw     adam; requires weight_decay_mode='decoupled'

Opt state is a plain pytree of arrays (optax named tuples), ready for orbax and jax.sharding.
"""

import jax
import jax.numpy as jnp
import optax

from jaxnets.registry import Registry


def _rmsprop(cfg):
  """RMSProp scaling, traced with `momentum` when it is positive."""
  rms = optax.scale_by_rms(decay=cfg.rho, eps=cfg.eps)
  return optax.chain(rms, optax.trace(decay=cfg.momentum)) if cfg.momentum else rms


def _adam(cfg):
  """Bias-corrected Adam scaling."""
  return optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)


# name -> cfg -> the preconditioner: gradients in, a step direction (signed like them) out; lr comes later.
OPTIMIZERS = Registry('optimizer')
OPTIMIZERS.register('sgd', lambda cfg: optax.identity())
OPTIMIZERS.register('momentum', lambda cfg: optax.trace(decay=cfg.momentum))
OPTIMIZERS.register('nesterov', lambda cfg: optax.trace(decay=cfg.momentum, nesterov=True))
OPTIMIZERS.register('adagrad', lambda cfg: optax.scale_by_rss(cfg.initial_accumulator, eps=cfg.eps))
OPTIMIZERS.register('adadelta', lambda cfg: optax.scale_by_adadelta(rho=cfg.rho, eps=cfg.eps))
OPTIMIZERS.register('rmsprop', _rmsprop)
OPTIMIZERS.register('adam', _adam)
OPTIMIZERS.register('adamw', _adam)

# weight_decay_mode -> weight_decay -> (strength of the L2 term in the loss, strength of decoupled decay).
DECAY_MODES = Registry('weight decay mode')
DECAY_MODES.register('l2', lambda wd: (wd, 0.0))
DECAY_MODES.register('decoupled', lambda wd: (0.0, wd))


def _require(ok, field, value, rule):
  """Raises a ValueError naming the field and its bad value unless `ok`."""
  if not ok:
    raise ValueError(f'{field} must be {rule}, got {value!r}')


def _step(sc, lr, total_steps, warmup_steps):
  """lr times decay_factor for every boundary (a fraction of total_steps) the step has reached."""
  bounds = tuple(sc.boundaries)
  _require(all(0 < b < 1 for b in bounds) and all(a < b for a, b in zip(bounds, bounds[1:])),
           'optimizer.schedule.boundaries', bounds, 'strictly increasing fractions in (0, 1)')
  _require(sc.decay_factor > 0, 'optimizer.schedule.decay_factor', sc.decay_factor, '> 0')
  steps = jnp.asarray([round(b * total_steps) for b in bounds])
  factor = sc.decay_factor
  return lambda step: lr * factor ** jnp.sum(step >= steps)


def _cosine(sc, lr, total_steps, warmup_steps):
  """Half a cosine from lr at the end of warm-up down to 0 at total_steps."""
  decay = optax.cosine_decay_schedule(lr, max(total_steps - warmup_steps, 1))
  return lambda step: decay(step - warmup_steps)


# name -> (schedule cfg, lr, total_steps, warmup_steps) -> lr as a function of the step, after warm-up.
SCHEDULES = Registry('schedule')
SCHEDULES.register('constant', lambda sc, lr, total_steps, warmup_steps: optax.constant_schedule(lr))
SCHEDULES.register('step', _step)
SCHEDULES.register('cosine', _cosine)


def names() -> list[str]:
  """Every registered optimizer name."""
  return OPTIMIZERS.names()


def schedule_names() -> list[str]:
  """Every registered learning-rate schedule name."""
  return SCHEDULES.names()


def _decay_split(cfg):
  """(L2 strength in the loss, decoupled strength in the update) from weight_decay and its mode."""
  split = DECAY_MODES.get(cfg.weight_decay_mode)
  if cfg.name == 'adamw' and cfg.weight_decay_mode != 'decoupled':
    raise ValueError(f"optimizer.name='adamw' is Adam with decoupled weight decay: set "
                     f"optimizer.weight_decay_mode='decoupled', got {cfg.weight_decay_mode!r}")
  return split(cfg.weight_decay)


def _schedule(cfg, total_steps):
  """The learning rate per step: linear warm-up from 0, then the named schedule."""
  sc = cfg.schedule
  warmup_steps = sc.warmup_steps
  _require(0 <= warmup_steps <= total_steps, 'optimizer.schedule.warmup_steps', warmup_steps,
           f'in [0, total_steps={total_steps}]')
  base = SCHEDULES.get(sc.name)(sc, cfg.lr, total_steps, warmup_steps)
  if not warmup_steps:
    return base
  warmup = optax.linear_schedule(0.0, cfg.lr, warmup_steps)
  return lambda step: jnp.where(step < warmup_steps, warmup(step), base(step))


def create(cfg, total_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """The optimizer chain for `cfg` (config.optimizer) over `total_steps`, and its learning-rate schedule."""
  preconditioner = OPTIMIZERS.get(cfg.name)(cfg)
  _require(total_steps > 0, 'total_steps', total_steps, '> 0')
  _require(cfg.lr > 0, 'optimizer.lr', cfg.lr, '> 0')
  for field in ('weight_decay', 'l1', 'clip_value', 'clip_norm'):
    _require(cfg[field] >= 0, f'optimizer.{field}', cfg[field], '>= 0')
  _, decoupled = _decay_split(cfg)
  schedule = _schedule(cfg, total_steps)
  tx = optax.chain(
      optax.clip(cfg.clip_value) if cfg.clip_value else optax.identity(),
      optax.clip_by_global_norm(cfg.clip_norm) if cfg.clip_norm else optax.identity(),
      preconditioner,
      optax.add_decayed_weights(decoupled, mask=decay_mask) if decoupled else optax.identity(),
      optax.scale_by_learning_rate(schedule),
  )
  return tx, schedule


def decay_mask(params):
  """True at leaves named `kernel` (conv and dense weights), the only ones weight decay and L1 act on."""
  return jax.tree_util.tree_map_with_path(
      lambda path, _: jax.tree_util.keystr(path[-1:], simple=True) == 'kernel', params)


def penalty(params, cfg):
  """The loss's regularizer: 0.5*weight_decay*sum(w^2) (mode 'l2' only) + l1*sum|w| over kernels.

  Only `kernel` leaves (see decay_mask) are penalized: biases and BatchNorm scale/bias are not.
  """
  in_loss, _ = _decay_split(cfg)
  kernels = [w for w, m in zip(jax.tree.leaves(params), jax.tree.leaves(decay_mask(params))) if m]
  total = jnp.zeros([])
  if in_loss:
    total += 0.5 * in_loss * sum(jnp.sum(jnp.square(w)) for w in kernels)
  if cfg.l1:
    total += cfg.l1 * sum(jnp.sum(jnp.abs(w)) for w in kernels)
  return total
