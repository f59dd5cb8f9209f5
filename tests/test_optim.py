"""Tests for jaxnets.optim: every optimizer, schedule, clip and decay against numpy hand computations."""

import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxnets import optim

W0 = np.array([0.5, -1.0, 2.0])
G1 = np.array([0.1, -0.2, 0.3])
G2 = np.array([-0.4, 0.5, 0.05])


def _cfg(schedule=None, **overrides):
  """A config.optimizer with decay off and a constant schedule, changed by `overrides` (which may set
  the named optimizer's own settings)."""
  sched = dict(name='constant', warmup_steps=0, boundaries=(0.5, 0.75), decay_factor=0.1)
  sched.update(schedule or {})
  cfg = dict(name='sgd', lr=0.1, weight_decay=0.0, weight_decay_mode='l2', l1=0.0, clip_value=0.0, clip_norm=0.0,
             schedule=sched, param_groups='')
  cfg.update(overrides)
  return ml_collections.ConfigDict(cfg)


def _resolved(cfg):
  """cfg with the optimizer's settings filled in from its defaults, for the reference formulas."""
  return ml_collections.ConfigDict({**cfg.to_dict(), **optim.settings(cfg)})


def _updates(cfg, params, grads, total_steps=100):
  """The chain's updates for successive gradients, applying each to the params before the next."""
  tx, _ = optim.create(cfg, total_steps)
  state = tx.init(params)
  out = []
  for g in grads:
    u, state = tx.update(g, state, params)
    params = optax.apply_updates(params, u)
    out.append(u)
  return out


# Textbook updates in float64: c is the config, gs the gradients, ws the params each step sees.
def _ref_sgd(c, gs, ws):
  return [-c.lr * g for g in gs]


def _ref_momentum(c, gs, ws, nesterov=False):
  v, out = 0.0, []
  for g in gs:
    v = c.momentum * v + g
    out.append(-c.lr * (g + c.momentum * v if nesterov else v))
  return out


def _ref_adagrad(c, gs, ws):
  acc, out = c.initial_accumulator, []
  for g in gs:
    acc = acc + g**2
    out.append(-c.lr * g / np.sqrt(acc + c.eps))
  return out


def _ref_adadelta(c, gs, ws):
  eg = ex = 0.0
  out = []
  for g in gs:
    eg = c.rho * eg + (1 - c.rho) * g**2
    d = np.sqrt(ex + c.eps) / np.sqrt(eg + c.eps) * g
    ex = c.rho * ex + (1 - c.rho) * d**2
    out.append(-c.lr * d)
  return out


def _ref_rmsprop(c, gs, ws):
  n = v = 0.0
  out = []
  for g in gs:
    n = c.rho * n + (1 - c.rho) * g**2
    v = c.momentum * v + g / np.sqrt(n + c.eps)
    out.append(-c.lr * v)
  return out


def _ref_adam(c, gs, ws):
  m = v = 0.0
  out = []
  for t, (g, w) in enumerate(zip(gs, ws), start=1):
    m = c.b1 * m + (1 - c.b1) * g
    v = c.b2 * v + (1 - c.b2) * g**2
    direction = (m / (1 - c.b1**t)) / (np.sqrt(v / (1 - c.b2**t)) + c.eps)
    decoupled = c.weight_decay if c.weight_decay_mode == 'decoupled' else 0.0
    out.append(-c.lr * (direction + decoupled * w))
  return out


REFERENCES = {
    'sgd': (_ref_sgd, {}),
    'momentum': (_ref_momentum, {}),
    'nesterov': (lambda c, gs, ws: _ref_momentum(c, gs, ws, nesterov=True), {}),
    'adagrad': (_ref_adagrad, {}),
    'adadelta': (_ref_adadelta, dict(lr=1.0, eps=1e-6, rho=0.95)),
    'rmsprop': (_ref_rmsprop, dict(lr=0.01, rho=0.99, momentum=0.9)),
    'rmsprop_no_momentum': (_ref_rmsprop, dict(name='rmsprop', lr=0.01, momentum=0.0)),
    # b2=0.99: with 0.999, float32 1 - b2**t loses about 1e-5 of relative precision inside optax.
    'adam': (_ref_adam, dict(lr=0.001, b2=0.99)),
    'adamw': (_ref_adam, dict(lr=0.001, b2=0.99, weight_decay=0.1, weight_decay_mode='decoupled')),
}


def test_every_optimizer_has_a_reference():
  assert set(optim.names()) <= set(REFERENCES)
  assert optim.names() == sorted(optim.names())


@pytest.mark.parametrize('case', sorted(REFERENCES))
def test_two_updates_match_hand_computation(case):
  reference, overrides = REFERENCES[case]
  cfg = _cfg(**{'name': case, **overrides})
  u1, u2 = _updates(cfg, {'kernel': jnp.asarray(W0, jnp.float32)}, [{'kernel': jnp.asarray(G1)},
                                                                     {'kernel': jnp.asarray(G2)}])
  c = _resolved(cfg)
  want1, want2 = reference(c, [G1, G2], [W0, W0 + reference(c, [G1], [W0])[0]])
  np.testing.assert_allclose(u1['kernel'], want1, rtol=1e-5)
  np.testing.assert_allclose(u2['kernel'], want2, rtol=1e-5)


def _lr(schedule, steps):
  return np.array([schedule(s) for s in steps])


def test_constant_schedule():
  _, schedule = optim.create(_cfg(lr=0.3), 1000)
  np.testing.assert_allclose(_lr(schedule, [0, 1, 999, 1000]), 0.3, rtol=1e-6)


def test_step_schedule_he_et_al():
  _, schedule = optim.create(_cfg(schedule=dict(name='step')), 64000)
  steps = [0, 31999, 32000, 47999, 48000, 63999]
  np.testing.assert_allclose(_lr(schedule, steps), [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6)


def test_linear_warmup_then_constant():
  _, schedule = optim.create(_cfg(lr=0.2, schedule=dict(warmup_steps=100)), 1000)
  np.testing.assert_allclose(_lr(schedule, [0, 25, 50, 99, 100, 999]),
                             [0.0, 0.05, 0.1, 0.198, 0.2, 0.2], rtol=1e-6, atol=1e-8)


def test_warmup_keeps_step_boundaries_absolute():
  _, schedule = optim.create(_cfg(schedule=dict(name='step', warmup_steps=400)), 64000)
  np.testing.assert_allclose(_lr(schedule, [200, 400, 31999, 32000, 48000]),
                             [0.05, 0.1, 0.1, 0.01, 0.001], rtol=1e-6)


def test_cosine_schedule_endpoints():
  _, schedule = optim.create(_cfg(schedule=dict(name='cosine')), 1000)
  np.testing.assert_allclose(_lr(schedule, [0, 500, 1000]), [0.1, 0.05, 0.0], rtol=1e-6, atol=1e-8)
  _, schedule = optim.create(_cfg(schedule=dict(name='cosine', warmup_steps=100)), 1000)
  np.testing.assert_allclose(_lr(schedule, [50, 100, 550, 1000]), [0.05, 0.1, 0.05, 0.0],
                             rtol=1e-6, atol=1e-8)


def test_schedule_names():
  assert optim.schedule_names() == ['constant', 'cosine', 'step']


GRADS = {'kernel': np.array([[3.0, -0.1], [0.2, -4.0]]), 'bias': np.array([0.5, -0.05])}
PARAMS = {'kernel': np.ones((2, 2)), 'bias': np.ones(2)}


def _sgd_step(grads, **overrides):
  """One plain-SGD update with lr=1, so it is minus the processed gradient."""
  params, grads = jax.tree.map(jnp.asarray, (PARAMS, grads))
  (u,) = _updates(_cfg(lr=1.0, **overrides), params, [grads])
  return u


def test_clip_by_value():
  u = _sgd_step(GRADS, clip_value=0.25)
  for k in GRADS:
    np.testing.assert_allclose(u[k], -np.clip(GRADS[k], -0.25, 0.25), rtol=1e-6)


@pytest.mark.parametrize('max_norm', [1.0, 100.0])
def test_clip_by_global_norm(max_norm):
  norm = np.sqrt(sum(np.sum(g**2) for g in GRADS.values()))
  u = _sgd_step(GRADS, clip_norm=max_norm)
  for k in GRADS:
    np.testing.assert_allclose(u[k], -GRADS[k] * min(1.0, max_norm / norm), rtol=1e-6)


def test_clip_value_comes_before_global_norm():
  clipped = {k: np.clip(g, -0.25, 0.25) for k, g in GRADS.items()}
  norm = np.sqrt(sum(np.sum(g**2) for g in clipped.values()))
  u = _sgd_step(GRADS, clip_value=0.25, clip_norm=0.3)
  for k in GRADS:
    np.testing.assert_allclose(u[k], -clipped[k] * 0.3 / norm, rtol=1e-6)


NET = {'dense': {'kernel': np.array([[0.5, -1.5], [2.0, 0.25]]), 'bias': np.array([0.3, -0.7])},
       'bn': {'scale': np.array([1.5, 0.5]), 'bias': np.array([-0.2, 0.1])}}
NET_GRADS = jax.tree.map(lambda w: 0.1 * np.sign(w) + 0.05, NET)


def _first_update(name, mode, wd=0.01):
  """The first update of `name` under weight decay `mode`, adding the penalty's gradient for 'l2'."""
  cfg = _cfg(name=name, weight_decay=wd, weight_decay_mode=mode)
  params = jax.tree.map(jnp.asarray, NET)
  grads = jax.tree.map(jnp.add, jax.tree.map(jnp.asarray, NET_GRADS), jax.grad(optim.penalty)(params, cfg))
  return _updates(cfg, params, [grads])[0]


def test_decay_mask_selects_kernels_only():
  want = {'dense': {'kernel': True, 'bias': False}, 'bn': {'scale': False, 'bias': False}}
  assert optim.decay_mask(NET) == want


def test_sgd_l2_equals_decoupled_on_kernels_and_spares_the_rest():
  l2, decoupled = _first_update('sgd', 'l2'), _first_update('sgd', 'decoupled')
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), l2, decoupled)
  want = -0.1 * (NET_GRADS['dense']['kernel'] + 0.01 * NET['dense']['kernel'])
  np.testing.assert_allclose(l2['dense']['kernel'], want, rtol=1e-6)
  for path in [('dense', 'bias'), ('bn', 'scale'), ('bn', 'bias')]:
    np.testing.assert_allclose(l2[path[0]][path[1]], -0.1 * NET_GRADS[path[0]][path[1]], rtol=1e-6)


def test_adam_l2_differs_from_decoupled_on_kernels_only():
  l2, decoupled = _first_update('adam', 'l2', wd=0.5), _first_update('adam', 'decoupled', wd=0.5)
  assert not np.allclose(l2['dense']['kernel'], decoupled['dense']['kernel'], rtol=1e-3)
  for path in [('dense', 'bias'), ('bn', 'scale'), ('bn', 'bias')]:
    np.testing.assert_allclose(l2[path[0]][path[1]], decoupled[path[0]][path[1]], rtol=1e-6)


def test_decoupled_decay_follows_the_schedule():
  cfg = _cfg(weight_decay=0.5, weight_decay_mode='decoupled', schedule=dict(warmup_steps=4))
  params = {'kernel': jnp.asarray(W0)}
  zero = {'kernel': jnp.zeros(3)}
  u0, u1 = _updates(cfg, params, [zero, zero])
  np.testing.assert_allclose(u0['kernel'], 0.0)
  np.testing.assert_allclose(u1['kernel'], -0.5 * 0.025 * W0, rtol=1e-6)


def test_penalty_value_and_l1_gradient_sign():
  params = jax.tree.map(jnp.asarray, NET)
  kernel = NET['dense']['kernel']
  cfg = _cfg(weight_decay=0.01, l1=0.001)
  want = 0.005 * np.sum(kernel**2) + 0.001 * np.sum(np.abs(kernel))
  np.testing.assert_allclose(optim.penalty(params, cfg), want, rtol=1e-6)
  cfg = _cfg(weight_decay=0.01, weight_decay_mode='decoupled', l1=0.001)
  np.testing.assert_allclose(optim.penalty(params, cfg), 0.001 * np.sum(np.abs(kernel)), rtol=1e-6)
  grads = jax.grad(optim.penalty)(params, cfg)
  np.testing.assert_allclose(grads['dense']['kernel'], 0.001 * np.sign(kernel), rtol=1e-6)
  for path in [('dense', 'bias'), ('bn', 'scale'), ('bn', 'bias')]:
    np.testing.assert_array_equal(grads[path[0]][path[1]], 0.0)
  assert optim.penalty(params, _cfg(weight_decay=0.01, weight_decay_mode='decoupled')) == 0.0


def test_opt_state_is_plain_arrays_and_jits():
  cfg = _cfg(name='nesterov', clip_value=1.0, clip_norm=1.0, weight_decay=1e-4, weight_decay_mode='decoupled',
             schedule=dict(name='step', warmup_steps=10))
  tx, _ = optim.create(cfg, 100)
  params = jax.tree.map(jnp.asarray, NET)
  state = tx.init(params)
  assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(state))
  update = jax.jit(tx.update)
  u, state = update(jax.tree.map(jnp.asarray, NET_GRADS), state, params)
  assert jax.tree.structure(u) == jax.tree.structure(params)


@pytest.mark.parametrize('field, value', [('name', 'foo'), ('weight_decay_mode', 'l3')])
def test_unknown_names_list_choices(field, value):
  with pytest.raises(ValueError, match=f"'{value}'; valid choices: ") as e:
    optim.create(_cfg(**{field: value}), 100)
  choices = optim.names() if field == 'name' else ['decoupled', 'l2']
  assert ', '.join(choices) in str(e.value)


def test_unknown_schedule_lists_choices():
  with pytest.raises(ValueError, match="unknown schedule 'linear'; valid choices: constant, cosine, step"):
    optim.create(_cfg(schedule=dict(name='linear')), 100)


def test_penalty_rejects_unknown_mode():
  with pytest.raises(ValueError, match="'l3'; valid choices: decoupled, l2"):
    optim.penalty(NET, _cfg(weight_decay_mode='l3'))


@pytest.mark.parametrize('overrides, field, value', [
    (dict(lr=0.0), 'optimizer.lr', '0.0'),
    (dict(lr=-0.1), 'optimizer.lr', '-0.1'),
    (dict(weight_decay=-1e-4), 'optimizer.weight_decay', '-0.0001'),
    (dict(l1=-1.0), 'optimizer.l1', '-1.0'),
    *[(dict(schedule=dict(name='step', boundaries=b)), 'optimizer.schedule.boundaries', re.escape(str(b)))
      for b in [(0.75, 0.5), (0.5, 1.0), (0.0, 0.5)]],
    (dict(schedule=dict(warmup_steps=101)), 'optimizer.schedule.warmup_steps', '101'),
    (dict(name='adamw'), 'optimizer.weight_decay_mode', "'l2'"),
])
def test_bad_values_name_field_and_value(overrides, field, value):
  with pytest.raises(ValueError, match=f'{field}.*{value}'):
    optim.create(_cfg(**overrides), 100)


def test_each_optimizer_takes_only_its_own_settings():
  # The defaults are the papers' and the customary ones; rmsprop has no momentum unless asked.
  assert optim.settings(_cfg(name='momentum')) == {'momentum': 0.9}
  assert optim.settings(_cfg(name='rmsprop')) == {'rho': 0.9, 'eps': 1e-8, 'momentum': 0.0}
  assert optim.settings(_cfg(name='adadelta')) == {'rho': 0.95, 'eps': 1e-6}
  assert optim.settings(_cfg(name='rmsprop', momentum=0.5))['momentum'] == 0.5
  with pytest.raises(ValueError, match=r"optimizer 'adam' takes no setting 'momentum'; its settings: b1, b2, eps"):
    optim.create(_cfg(name='adam', momentum=0.9), 100)
  with pytest.raises(ValueError, match=r"optimizer 'sgd' takes no setting 'lrr'; its settings: none"):
    optim.create(_cfg(lrr=0.1), 100)


@pytest.mark.parametrize('overrides, message', [
    (dict(name='momentum', momentum=1.5), r'optimizer\.momentum must be in \[0, 1\), got 1\.5'),
    (dict(name='adam', b2=1.0), r'optimizer\.b2 must be in \[0, 1\), got 1\.0'),
    (dict(name='adam', eps=0.0), r'optimizer\.eps must be > 0, got 0\.0'),
    (dict(lr=-1.0), r'optimizer\.lr must be > 0, got -1\.0'),
])
def test_settings_out_of_range_name_the_field(overrides, message):
  with pytest.raises(ValueError, match=message):
    optim.create(_cfg(**overrides), 100)


GROUPED = {'backbone': {'conv': {'kernel': np.full((2,), 2.0)}, 'bn': {'scale': np.ones(2)}},
           'head': {'kernel': np.full((2,), 3.0), 'bias': np.zeros(2)}}


def test_frozen_group_gets_no_update_and_holds_no_state():
  cfg = _cfg(name='momentum', lr=0.5, param_groups='backbone/.*=frozen')
  params = jax.tree.map(jnp.asarray, GROUPED)
  grads = jax.tree.map(jnp.ones_like, params)
  tx, _ = optim.create(cfg, 10)
  state = tx.init(params)
  # Momentum traces only the head's two leaves (2 + 2 numbers), besides the schedule's step count:
  # the frozen backbone has no optimizer state.
  assert sum(x.size for x in jax.tree.leaves(state)) == 4 + 1
  u1, state = tx.update(grads, state, params)
  u2, _ = tx.update(grads, state, params)
  for u in (u1, u2):
    np.testing.assert_array_equal(u['backbone']['conv']['kernel'], 0.0)
    np.testing.assert_array_equal(u['backbone']['bn']['scale'], 0.0)
  np.testing.assert_allclose(u1['head']['kernel'], -0.5, rtol=1e-6)
  np.testing.assert_allclose(u2['head']['kernel'], -0.5 * 1.9, rtol=1e-6)  # v = g + 0.9 v.


def test_group_multipliers_scale_the_update_and_zero_freezes():
  params = jax.tree.map(jnp.asarray, GROUPED)
  grads = jax.tree.map(jnp.ones_like, params)
  (u,) = _updates(_cfg(lr=0.5, param_groups='backbone/conv/.*=0.1 backbone/.*=0 head/bias=2'), params, [grads])
  np.testing.assert_allclose(u['backbone']['conv']['kernel'], -0.05, rtol=1e-6)  # First match wins.
  np.testing.assert_array_equal(u['backbone']['bn']['scale'], 0.0)
  np.testing.assert_allclose(u['head']['bias'], -1.0, rtol=1e-6)
  np.testing.assert_allclose(u['head']['kernel'], -0.5, rtol=1e-6)  # No group: multiplier 1.


def test_groups_drive_the_weight_decay_and_the_penalty():
  params = jax.tree.map(jnp.asarray, GROUPED)
  zero = jax.tree.map(jnp.zeros_like, params)
  cfg = _cfg(lr=0.5, weight_decay=0.1, weight_decay_mode='decoupled', param_groups='backbone/.*=frozen head/.*=0.1')
  (u,) = _updates(cfg, params, [zero])
  np.testing.assert_array_equal(u['backbone']['conv']['kernel'], 0.0)  # Frozen: no decay either.
  np.testing.assert_allclose(u['head']['kernel'], -0.5 * 0.1 * 0.1 * 3.0, rtol=1e-6)
  l2 = _cfg(weight_decay=0.1, param_groups='backbone/.*=frozen')
  np.testing.assert_allclose(optim.penalty(params, l2), 0.5 * 0.1 * np.sum(GROUPED['head']['kernel'] ** 2),
                             rtol=1e-6)


def test_frozen_groups_keep_their_statistics():
  old = {'batch_stats': {'backbone': {'bn': {'mean': np.zeros(2)}}, 'head_bn': {'mean': np.zeros(2)}}}
  new = jax.tree.map(lambda x: x + 1, old)
  # The same patterns as the parameters': paths within the collection.
  kept = optim.keep_frozen(new, old, _cfg(param_groups='backbone/.*=frozen'))
  np.testing.assert_array_equal(kept['batch_stats']['backbone']['bn']['mean'], 0.0)
  np.testing.assert_array_equal(kept['batch_stats']['head_bn']['mean'], 1.0)
  assert optim.keep_frozen(new, old, _cfg(param_groups='backbone/.*=0.1')) is new  # Nothing frozen.


def test_a_frozen_recurrent_layer_still_carries_its_state():
  old = {'batch_stats': {'rnn': {'mean': np.zeros(2)}}, 'carry': {'rnn': {'layer0_state': np.zeros((4, 2))}}}
  new = jax.tree.map(lambda x: x + 1, old)
  kept = optim.keep_frozen(new, old, _cfg(param_groups='rnn/.*=frozen'), carried=('carry',))
  np.testing.assert_array_equal(kept['batch_stats']['rnn']['mean'], 0.0)
  np.testing.assert_array_equal(kept['carry']['rnn']['layer0_state'], 1.0)


@pytest.mark.parametrize('groups, message', [
    ('head/.*=fast', r"optimizer\.param_groups 'head/\.\*' must be a learning-rate multiplier >= 0 or 'frozen', got 'fast'"),
    ('head/.*=-1', r'must be a learning-rate multiplier >= 0'),
    ('head/(=1', r"bad pattern 'head/\('"),
])
def test_bad_param_groups_are_named(groups, message):
  with pytest.raises(ValueError, match=message):
    optim.create(_cfg(param_groups=groups), 10)


def test_a_group_matching_no_parameter_is_an_error():
  tx, _ = optim.create(_cfg(param_groups='neck/.*=0.1'), 10)
  with pytest.raises(ValueError, match=r"pattern 'neck/\.\*' matches no parameter; the parameters are named like "
                                       r"backbone/bn/scale"):
    tx.init(jax.tree.map(jnp.asarray, GROUPED))
