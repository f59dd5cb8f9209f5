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

import dataclasses
import re
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from jaxnets import assignments
from jaxnets.registry import Registry

# Fields of config.optimizer that every optimizer takes; any other field is a setting of the named
# optimizer and must be one of its own (so switching optimizer.name never carries another's setting).
COMMON_FIELDS = ('name', 'lr', 'weight_decay', 'weight_decay_mode', 'l1', 'clip_value', 'clip_norm', 'schedule',
                 'param_groups')
FROZEN = 'frozen'
# Each optimizer setting's valid range, as (check, rule for the error message).
_RANGES = {'momentum': (lambda v: 0 <= v < 1, 'in [0, 1)'), 'rho': (lambda v: 0 <= v < 1, 'in [0, 1)'),
           'b1': (lambda v: 0 <= v < 1, 'in [0, 1)'), 'b2': (lambda v: 0 <= v < 1, 'in [0, 1)'),
           'eps': (lambda v: v > 0, '> 0'), 'initial_accumulator': (lambda v: v >= 0, '>= 0')}


@dataclasses.dataclass(frozen=True)
class Optimizer:
  """A preconditioner built from its settings (a dict), and those settings' defaults."""
  make: Callable[[dict], optax.GradientTransformation]
  defaults: dict


def _rmsprop(h):
  """RMSProp scaling, traced with `momentum` when it is positive."""
  rms = optax.scale_by_rms(decay=h['rho'], eps=h['eps'])
  return optax.chain(rms, optax.trace(decay=h['momentum'])) if h['momentum'] else rms


_ADAM = Optimizer(lambda h: optax.scale_by_adam(b1=h['b1'], b2=h['b2'], eps=h['eps']),
                  {'b1': 0.9, 'b2': 0.999, 'eps': 1e-8})  # Kingma & Ba (2015).

# name -> the preconditioner: gradients in, a step direction (signed like them) out; lr comes later.
OPTIMIZERS = Registry('optimizer')
OPTIMIZERS.register('sgd', Optimizer(lambda h: optax.identity(), {}))
OPTIMIZERS.register('momentum', Optimizer(lambda h: optax.trace(decay=h['momentum']), {'momentum': 0.9}))
OPTIMIZERS.register('nesterov', Optimizer(lambda h: optax.trace(decay=h['momentum'], nesterov=True),
                                          {'momentum': 0.9}))
OPTIMIZERS.register('adagrad', Optimizer(lambda h: optax.scale_by_rss(h['initial_accumulator'], eps=h['eps']),
                                         {'initial_accumulator': 0.1, 'eps': 1e-8}))
OPTIMIZERS.register('adadelta', Optimizer(lambda h: optax.scale_by_adadelta(rho=h['rho'], eps=h['eps']),
                                          {'rho': 0.95, 'eps': 1e-6}))  # Zeiler (2012).
OPTIMIZERS.register('rmsprop', Optimizer(_rmsprop, {'rho': 0.9, 'eps': 1e-8, 'momentum': 0.0}))
OPTIMIZERS.register('adam', _ADAM)
OPTIMIZERS.register('adamw', _ADAM)


def settings(cfg) -> dict:
  """The named optimizer's settings: its defaults, overridden by the fields config.optimizer sets.

  A field the optimizer does not take is an error naming its settings, and each value is range-checked.
  """
  optimizer = OPTIMIZERS.get(cfg.name)
  given = {k: v for k, v in cfg.items() if k not in COMMON_FIELDS}
  unknown = sorted(set(given) - set(optimizer.defaults))
  if unknown:
    own = ', '.join(sorted(optimizer.defaults)) or 'none'
    raise ValueError(f'optimizer {cfg.name!r} takes no setting {", ".join(map(repr, unknown))}; its settings: '
                     f'{own}; every optimizer takes {", ".join(COMMON_FIELDS)}')
  values = {**optimizer.defaults, **given}
  for key, value in values.items():
    check, rule = _RANGES[key]
    _require(check(value), f'optimizer.{key}', value, rule)
  return values


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
  """The optimizer chain for `cfg` (config.optimizer) over `total_steps`, and its learning-rate schedule.

  With parameter groups (see `parse_groups`) the chain runs on the trainable parameters only, each
  group's updates scaled by its multiplier; frozen parameters get a zero update and hold no state.
  """
  preconditioner = OPTIMIZERS.get(cfg.name).make(settings(cfg))
  _require(total_steps > 0, 'total_steps', total_steps, '> 0')
  _require(cfg.lr > 0, 'optimizer.lr', cfg.lr, '> 0')
  for field in ('weight_decay', 'l1', 'clip_value', 'clip_norm'):
    _require(cfg[field] >= 0, f'optimizer.{field}', cfg[field], '>= 0')
  _, decoupled = _decay_split(cfg)
  schedule = _schedule(cfg, total_steps)
  groups = parse_groups(cfg.param_groups)
  tx = optax.chain(
      optax.clip(cfg.clip_value) if cfg.clip_value else optax.identity(),
      optax.clip_by_global_norm(cfg.clip_norm) if cfg.clip_norm else optax.identity(),
      preconditioner,
      optax.add_decayed_weights(decoupled, mask=decay_mask) if decoupled else optax.identity(),
      optax.scale_by_learning_rate(schedule),
  )
  if not groups:
    return tx, schedule
  scaled = optax.chain(tx, _scale_by_group(groups))
  labels = lambda params: jax.tree.map(lambda m: FROZEN if m == 0 else 'trainable', multipliers(params, groups))
  return optax.multi_transform({'trainable': scaled, FROZEN: optax.set_to_zero()}, labels), schedule


def parse_groups(text: str) -> list[tuple[str, float]]:
  """[(pattern, multiplier), ...] from config.optimizer.param_groups, 'pattern=multiplier ...'.

  A pattern is a regular expression matched against a parameter's whole path ('backbone/stage1_block0/
  conv/kernel'); the first group that matches a parameter gives its learning-rate multiplier, 1 when
  none does. A multiplier of 0 or 'frozen' freezes the group.
  """
  groups = []
  for pattern, value in assignments.parse(text, 'optimizer.param_groups'):
    multiplier = 0.0 if value == FROZEN else value
    _require(isinstance(multiplier, (int, float)) and multiplier >= 0, f'optimizer.param_groups {pattern!r}',
             value, f"a learning-rate multiplier >= 0 or '{FROZEN}'")
    try:
      re.compile(pattern)
    except re.error as e:
      raise ValueError(f'optimizer.param_groups: bad pattern {pattern!r}: {e}') from e
    groups.append((pattern, float(multiplier)))
  return groups


def path_name(key_path) -> str:
  """'backbone/stage1_block0/conv/kernel' for a pytree key path."""
  return '/'.join(str(getattr(k, 'key', getattr(k, 'name', k))) for k in key_path)


def _multiplier(path: str, groups) -> float:
  """The multiplier of the first group whose pattern matches `path` (1 if none does)."""
  return next((m for pattern, m in groups if re.fullmatch(pattern, path)), 1.0)


def multipliers(tree, groups) -> dict:
  """Each leaf's learning-rate multiplier; a pattern that matches no leaf is an error (a typo, likely)."""
  paths = [path_name(p) for p, _ in jax.tree_util.tree_leaves_with_path(tree)]
  unmatched = [pattern for pattern, _ in groups if not any(re.fullmatch(pattern, p) for p in paths)]
  if unmatched:
    raise ValueError(f'optimizer.param_groups pattern {unmatched[0]!r} matches no parameter; the parameters '
                     f'are named like {", ".join(paths[:4])}, ...')
  return jax.tree_util.tree_map_with_path(lambda p, _: _multiplier(path_name(p), groups), tree)


def _scale_by_group(groups) -> optax.GradientTransformation:
  """Multiplies each update by its group's learning-rate multiplier (stateless)."""

  def update(updates, state, params=None):
    del params
    return jax.tree_util.tree_map_with_path(lambda p, u: u * _multiplier(path_name(p), groups), updates), state

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def keep_frozen(new, old, cfg, carried=()):
  """The model's other variables after a step ({'batch_stats': ...}), with those of frozen groups kept
  as in `old`. A variable's path within its collection is matched, as a parameter's is: with
  'backbone/.*=frozen', batch_stats/backbone/... stays put (in training mode a frozen BatchNorm layer
  still normalizes by the batch's statistics; it only stops updating its running averages). A carried
  recurrent state (the `carried` collections) is data, not weights: it always moves on."""
  groups = parse_groups(cfg.param_groups)
  if not any(m == 0 for _, m in groups):
    return new
  kept = jax.tree_util.tree_map_with_path(
      lambda p, n, o: o if _multiplier(path_name(p[1:]), groups) == 0 else n, new, old)
  return {k: new[k] if k in carried else v for k, v in kept.items()}


def decay_mask(params):
  """True at leaves named `kernel` (conv and dense weights), the only ones weight decay and L1 act on."""
  return jax.tree_util.tree_map_with_path(
      lambda path, _: jax.tree_util.keystr(path[-1:], simple=True) == 'kernel', params)


def penalty(params, cfg):
  """The loss's regularizer: 0.5*weight_decay*sum(w^2) (mode 'l2' only) + l1*sum|w| over kernels.

  Only `kernel` leaves (see decay_mask) of parameters that are not frozen are penalized: biases and
  BatchNorm scale/bias are not.
  """
  in_loss, _ = _decay_split(cfg)
  groups = parse_groups(cfg.param_groups)
  trainable = jax.tree.leaves(multipliers(params, groups)) if groups else [1.0] * len(jax.tree.leaves(params))
  kernels = [w for w, m, t in zip(jax.tree.leaves(params), jax.tree.leaves(decay_mask(params)), trainable)
             if m and t]
  total = jnp.zeros([])
  if in_loss:
    total += 0.5 * in_loss * sum(jnp.sum(jnp.square(w)) for w in kernels)
  if cfg.l1:
    total += cfg.l1 * sum(jnp.sum(jnp.abs(w)) for w in kernels)
  return total
