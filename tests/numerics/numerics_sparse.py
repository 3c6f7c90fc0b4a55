"""The SparseAdam scenario of spec/verify_torch_optax.py: an embedding table E (10, 4), 3 of its
10 rows looked up per step (sparse gradients in torch, dense with zero rows in JAX)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numerics_harness as harness
import numpy as np
import optax
import torch

STEPS = harness.STEPS


def _problem():
    r = np.random.default_rng(1)
    E0 = r.standard_normal((10, 4))
    target = r.standard_normal((10, 4))
    rows = [r.choice(10, 3, replace=False) for _ in range(STEPS)]
    return E0, target, rows


def sparse_rows_diff(call: str, make_tx) -> float:
    """max |E_torch - E_optax| over 50 steps; `make_tx(params)` builds the Optax optimizer."""
    E0, target, rows = _problem()
    dtype = torch.get_default_dtype()
    E = torch.nn.Parameter(torch.tensor(E0, dtype=dtype))
    opt = harness.torch_optimizer(call, [E])
    target_t = torch.tensor(target, dtype=dtype)
    out_t = []
    for t in range(STEPS):
        opt.zero_grad()
        i = torch.tensor(rows[t])
        looked_up = torch.nn.functional.embedding(i, E, sparse=True)
        (0.5 * ((looked_up - target_t[i]) ** 2).sum() * (1 + t % 3)).backward()
        opt.step()
        out_t.append(E.detach().numpy().copy())

    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    Ej = jnp.asarray(E0, np_dtype)
    tx = make_tx(Ej)
    state = tx.init(Ej)
    target_j = jnp.asarray(target, np_dtype)

    @jax.jit
    def step(E, state, i, scale):
        g = jax.grad(lambda E: 0.5 * ((E[i] - target_j[i]) ** 2).sum() * scale)(E)
        u, state = tx.update(g, state, E)
        return optax.apply_updates(E, u), state

    out_j = []
    for t in range(STEPS):
        Ej, state = step(Ej, state, jnp.asarray(rows[t]), 1.0 + t % 3)
        out_j.append(np.asarray(Ej))
    return float(np.max(np.abs(np.array(out_t) - np.array(out_j))))
