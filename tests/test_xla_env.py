"""jaxnets' XLA defaults: the CPU fusion flag (results agree with XLA's default build) and the persistent
compilation cache (a second process compiles nothing), each with its off switch."""

import json
import os
import subprocess
import sys

import numpy as np

from jaxnets import xla_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_cpu_fusion_flag_is_added_unless_turned_off_or_set_by_the_user():
  environ = {'XLA_FLAGS': '--xla_dump_to=/tmp/d'}
  xla_env.configure_cpu_fusion(environ)
  assert environ['XLA_FLAGS'] == f'--xla_dump_to=/tmp/d {xla_env.CPU_FUSION_FLAG}'
  xla_env.configure_cpu_fusion(environ)  # Idempotent.
  assert environ['XLA_FLAGS'].count('ynn_fusion_type') == 1
  off = {'JAXNETS_CPU_FUSION': '0'}
  xla_env.configure_cpu_fusion(off)
  assert 'XLA_FLAGS' not in off
  own = {'XLA_FLAGS': '--xla_cpu_experimental_ynn_fusion_type=dot'}
  xla_env.configure_cpu_fusion(own)
  assert own['XLA_FLAGS'] == '--xla_cpu_experimental_ynn_fusion_type=dot'


def test_the_compilation_cache_goes_to_the_user_cache_unless_turned_off_or_set():
  environ = {'XDG_CACHE_HOME': '/tmp/xdg'}
  xla_env.configure_compilation_cache(environ)
  assert environ['JAX_COMPILATION_CACHE_DIR'] == '/tmp/xdg/jaxnets/jax'
  assert environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] == xla_env.CACHE_MIN_COMPILE_SECONDS
  own = {'JAX_COMPILATION_CACHE_DIR': '/elsewhere'}
  xla_env.configure_compilation_cache(own)
  assert own['JAX_COMPILATION_CACHE_DIR'] == '/elsewhere'
  off = {'JAXNETS_COMPILATION_CACHE': '0'}
  xla_env.configure_compilation_cache(off)
  assert off == {'JAXNETS_COMPILATION_CACHE': '0'}


_LOSS_AND_GRADS = '''
import json, sys
from jaxnets import xla_env
xla_env.configure()
import jax, jax.numpy as jnp, numpy as np
from jaxnets import models
model = models.create('cifar_resnet20', num_classes=10)
x = jnp.asarray(np.random.default_rng(0).normal(size=(16, 32, 32, 3)), jnp.float32)
labels = jnp.arange(16) % 10
variables = model.init(jax.random.key(0), x)

def loss(params):
  out, _ = model.apply({**variables, 'params': params}, x, train=True, mutable=['batch_stats'])
  return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(out), labels[:, None], 1))

step = jax.jit(jax.value_and_grad(loss))
runs = [step(variables['params']) for _ in range(2)]
flat = [np.concatenate([np.ravel(g) for g in jax.tree.leaves(grads)]) for _, grads in runs]
print(json.dumps({'flags': __import__('os').environ.get('XLA_FLAGS', ''), 'loss': float(runs[0][0]),
                  'grads': flat[0].tolist(), 'repeatable': bool((flat[0] == flat[1]).all())}))
'''


def _run(code: str, **env) -> dict:
  done = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, check=True,
                        env={k: v for k, v in {**os.environ, **env}.items() if v is not None})
  return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_fused_cpu_build_agrees_with_xla_default_to_float32_rounding():
  fused = _run(_LOSS_AND_GRADS, XLA_FLAGS=None, JAXNETS_CPU_FUSION=None)
  default = _run(_LOSS_AND_GRADS, XLA_FLAGS=None, JAXNETS_CPU_FUSION='0')
  assert 'ynn_fusion_type' in fused['flags'] and 'ynn_fusion_type' not in default['flags']
  assert fused['repeatable'] and default['repeatable']  # The same numbers twice in one process.
  # The two builds sum in other orders: float32 rounding (2^-24 per operation) grown through 20 layers
  # and a batch of 16. Stated bounds: loss to 1e-5 relative, the gradient to 1e-3 of its norm.
  assert abs(fused['loss'] - default['loss']) <= 1e-5 * abs(default['loss'])
  a, b = np.asarray(fused['grads']), np.asarray(default['grads'])
  assert np.linalg.norm(a - b) <= 1e-3 * np.linalg.norm(b)


_CACHE_HITS = '''
import json
from jaxnets import xla_env
xla_env.configure()
import jax, jax.numpy as jnp
hits = []
jax.monitoring.register_event_listener(lambda event, **kw: hits.append(event) if 'cache_hits' in event else None)
f = jax.jit(lambda x: jnp.tanh(x @ x.T).sum())
f(jnp.ones((64, 64))).block_until_ready()
print(json.dumps({'hits': len(hits)}))
'''


def test_a_second_process_takes_its_program_from_the_compilation_cache(tmp_path):
  env = {'XDG_CACHE_HOME': str(tmp_path), 'JAX_COMPILATION_CACHE_DIR': None,
         'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS': '0'}
  assert _run(_CACHE_HITS, **env)['hits'] == 0
  assert os.listdir(tmp_path / 'jaxnets' / 'jax')  # The program was written to the user cache.
  assert _run(_CACHE_HITS, **env)['hits'] >= 1
  assert _run(_CACHE_HITS, **env, JAXNETS_COMPILATION_CACHE='0')['hits'] == 0
