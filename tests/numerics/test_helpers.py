"""switcheroo_optax transforms that no catalog row emits on its own (the training-loop rewrite
may): run against torch directly."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
import jax.numpy as jnp  # noqa: E402

import numerics_harness as harness  # noqa: E402
import switcheroo_optax  # noqa: E402

pytestmark = pytest.mark.numerics


@pytest.mark.parametrize("max_norm,norm_type", [(1.0, 2.0), (0.5, float("inf")), (3.0, 1.0), (2.0, 3.0), (1e3, 2.0)])
def test_torch_clip_grad_norm_matches_clip_grad_norm_(max_norm, norm_type):
    with harness.precision("float64") as dt:
        call = "torch.optim.SGD(params, lr=0.01, momentum=0.9)"
        w = torch.tensor(harness.W0, requires_grad=True)
        M = torch.tensor(harness.M0, requires_grad=True)
        opt = harness.torch_optimizer(call, [w, M])
        A, B = torch.tensor(harness.A), torch.tensor(harness.B)
        traj_t = []
        for t in range(harness.STEPS):
            with torch.no_grad():
                x = torch.cat([w, M.reshape(-1)])
                g = A @ x - B + torch.tensor(harness.NOISE[t])
            w.grad, M.grad = g[:harness.N_W].clone(), g[harness.N_W:].reshape(harness.M_SHAPE).clone()
            torch.nn.utils.clip_grad_norm_([w, M], max_norm, norm_type=norm_type)
            opt.step()
            traj_t.append(np.concatenate([w.detach().numpy(), M.detach().numpy().ravel()]))
        tx = optax.chain(switcheroo_optax.torch_clip_grad_norm(max_norm, norm_type), optax.sgd(0.01, momentum=0.9))
        traj_j = harness.run_optax(tx, dt)
    assert np.max(np.abs(np.array(traj_t) - traj_j)) <= 1e-12


def test_helpers_run_on_dict_params_under_jit_in_float32():
    """What rewritten programs do: dict pytrees, jit, float32 without x64."""
    params = {"w": jnp.ones((3, 2), jnp.float32), "b": jnp.zeros((2,), jnp.float32)}
    loss = lambda p: jnp.sum((p["w"] @ jnp.ones(2) - 1.0) ** 2) + jnp.sum(p["b"] ** 2 - p["b"])  # noqa: E731
    transforms = [
        optax.chain(switcheroo_optax.scale_by_torch_amsgrad(), optax.scale_by_learning_rate(0.01)),
        optax.chain(switcheroo_optax.scale_by_torch_nadam(), optax.scale_by_learning_rate(0.01)),
        optax.chain(switcheroo_optax.scale_by_torch_adagrad(), optax.scale_by_learning_rate(0.01)),
        optax.chain(switcheroo_optax.scale_by_torch_sparse_adam(), optax.scale_by_learning_rate(0.01)),
        switcheroo_optax.torch_rprop(0.01),
        switcheroo_optax.torch_adafactor(0.01),
        switcheroo_optax.torch_lbfgs(1.0, max_iter=1),
        optax.chain(switcheroo_optax.torch_clip_grad_norm(1.0), optax.sgd(0.1)),
    ]
    with jax.enable_x64(False):
        for tx in transforms:
            state = tx.init(params)

            @jax.jit
            def step(p, s, tx=tx):
                g = jax.grad(loss)(p)
                u, s = tx.update(g, s, p)
                return optax.apply_updates(p, u), s

            p = params
            for _ in range(5):
                p, state = step(p, state)
            assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(p))
            assert float(loss(p)) < float(loss(params)), tx


def test_torch_lbfgs_needs_value_fn_for_several_iterations():
    tx = switcheroo_optax.torch_lbfgs(1.0, max_iter=5)
    params = jnp.ones(3)
    with pytest.raises(ValueError, match="value_fn"):
        tx.update(params, tx.init(params), params)
