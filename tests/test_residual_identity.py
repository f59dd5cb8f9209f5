"""The residual gradient identity: for y = x + F(x), dL/dx = dL/dy + (dL/dy) F'(x)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets.models.resnet import BasicBlock, BasicBranch, BottleneckBlock, BottleneckBranch


@pytest.mark.parametrize('block_cls, branch_cls, features, channels', [
    (BasicBlock, BasicBranch, 8, 8), (BottleneckBlock, BottleneckBranch, 4, 16)])
def test_block_gradient_is_upstream_plus_branch_vjp(block_cls, branch_cls, features, channels):
  x = jax.random.normal(jax.random.key(0), (2, 6, 6, channels))
  block = block_cls(features)  # Identity shortcut: same shape in and out.
  variables = block.init(jax.random.key(1), x, train=False)
  weights = jax.random.normal(jax.random.key(2), x.shape)
  loss = lambda y: jnp.sum(weights * jnp.tanh(y))

  # The block is y = relu(z), z = x + F(x). jax.grad through the whole block:
  grad_x = jax.grad(lambda x: loss(block.apply(variables, x, train=False)))(x)

  # The identity, from F alone: dL/dz from the output side, then dL/dz + vjp_F(dL/dz).
  branch = branch_cls(features)
  branch_vars = jax.tree.map(lambda v: v['branch'], variables, is_leaf=lambda v: 'branch' in v)
  f = lambda x: branch.apply(branch_vars, x, train=False)
  f_x, f_vjp = jax.vjp(f, x)
  z = x + f_x
  dl_dz = jax.grad(lambda z: loss(jax.nn.relu(z)))(z)
  (branch_term,) = f_vjp(dl_dz)
  np.testing.assert_allclose(grad_x, dl_dz + branch_term, rtol=1e-5, atol=1e-6)
  # The skip adds dL/dz unchanged: the gradient cannot vanish through the identity path.
  assert not np.allclose(branch_term, 0)


def test_plain_twin_lacks_the_identity_term():
  x = jax.random.normal(jax.random.key(0), (2, 6, 6, 8))
  residual, plain = BasicBlock(8, residual=True), BasicBlock(8, residual=False)
  variables = residual.init(jax.random.key(1), x, train=False)
  loss = lambda block: lambda x: jnp.sum(block.apply(variables, x, train=False))
  f = lambda x: BasicBranch(8).apply(
      jax.tree.map(lambda v: v['branch'], variables, is_leaf=lambda v: 'branch' in v), x, train=False)
  z = x + f(x)
  upstream = (z > 0).astype(jnp.float32)
  np.testing.assert_allclose(jax.grad(loss(residual))(x),
                             upstream + jax.vjp(f, x)[1](upstream)[0], rtol=1e-5, atol=1e-6)
  upstream_plain = (f(x) > 0).astype(jnp.float32)
  np.testing.assert_allclose(jax.grad(loss(plain))(x), jax.vjp(f, x)[1](upstream_plain)[0],
                             rtol=1e-5, atol=1e-6)
