"""A problem large enough for bitsandbytes' 8-bit states (they apply to tensors of 4096 elements
or more): a 64x96 matrix and a 4096-vector on a diagonal quadratic with curvatures 0.1..10 and a
fixed noise sequence, 50 steps in float32 (bitsandbytes computes in float32 anyway)."""

from __future__ import annotations

import jax.numpy as jnp
import numerics_harness as harness
import numpy as np
import optax
import torch

SHAPES = [(64, 96), (4096,)]
STEPS = 50


def _problem():
    r = np.random.default_rng(1)
    curvature = []
    for shape in SHAPES:
        d = np.geomspace(0.1, 10, int(np.prod(shape)))
        r.shuffle(d)
        curvature.append(d.reshape(shape))
    b = [r.standard_normal(s) for s in SHAPES]
    x0 = [r.standard_normal(s) for s in SHAPES]
    noise = [0.5 * r.standard_normal((STEPS,) + s) for s in SHAPES]
    return curvature, b, x0, noise


def _grads(x, t, problem):
    curvature, b, _, noise = problem
    return [d * xi - bi + n[t] for d, xi, bi, n in zip(curvature, x, b, noise)]


def large_diff(call: str, tx) -> float:
    """max |p_torch - p_optax| over 50 steps of `call` (torch, float32) and `tx` (Optax, float32)."""
    problem = _problem()
    x0 = problem[2]
    params = [torch.tensor(x, dtype=torch.float32, requires_grad=True) for x in x0]
    opt = harness.torch_optimizer(call, params)
    out_t = []
    for t in range(STEPS):
        for p, g in zip(params, _grads([p.detach().numpy().astype(np.float64) for p in params], t, problem)):
            p.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
        out_t.append(np.concatenate([p.detach().numpy().ravel() for p in params]))
    ps = [jnp.asarray(x, jnp.float32) for x in x0]
    state = tx.init(ps)
    out_j = []
    for t in range(STEPS):
        g = [jnp.asarray(x, jnp.float32) for x in _grads([np.asarray(p, np.float64) for p in ps], t, problem)]
        u, state = tx.update(g, state, ps)
        ps = optax.apply_updates(ps, u)
        out_j.append(np.concatenate([np.asarray(p).ravel() for p in ps]))
    return float(np.max(np.abs(np.array(out_t) - np.array(out_j))))
