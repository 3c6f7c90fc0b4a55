"""torch.nn.utils.clip_grad_norm_."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax


def torch_clip_grad_norm(max_norm: float, norm_type: float = 2.0) -> optax.GradientTransformation:
    """torch's `clip_grad_norm_(params, max_norm, norm_type)` before the optimizer step, as
    the first transform of a chain: `optax.chain(torch_clip_grad_norm(1.0), optax.sgd(...))`.

    torch takes the norm of the per-tensor norms (`norm_type`, `inf` for the max-abs norm)
    and scales every gradient by `min(1, max_norm / (total_norm + 1e-6))`. Optax's
    `clip_by_global_norm` scales by `max_norm / total_norm` (no 1e-6; 1.4e-7 apart). torch's
    `error_if_nonfinite` cannot raise inside jit and is not reproduced.
    """
    p = float(norm_type)

    def total_norm(grads):
        leaves = [jnp.ravel(g) for g in jax.tree.leaves(grads)]
        if not leaves:
            return jnp.zeros([])
        if math.isinf(p):
            return jnp.max(jnp.stack([jnp.max(jnp.abs(x)) for x in leaves]))
        norms = jnp.stack([jnp.linalg.norm(x, ord=p) for x in leaves])
        return jnp.linalg.norm(norms, ord=p)

    def clip(grads, params=None):
        del params
        coef = jnp.minimum(max_norm / (total_norm(grads) + 1e-6), 1.0)
        return jax.tree.map(lambda g: g * coef.astype(g.dtype), grads)

    return optax.stateless(clip)
