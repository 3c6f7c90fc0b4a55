"""torch's Rprop."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class TorchRpropState(NamedTuple):
    step_sizes: Any         # per-entry step size (torch: step_size), starts at learning_rate
    prev: Any               # the previous (masked) gradient (torch: prev)


def torch_rprop(learning_rate: float = 0.01, eta_minus: float = 0.5, eta_plus: float = 1.2,
                min_step_size: float = 1e-6, max_step_size: float = 50.0) -> optax.GradientTransformation:
    """torch's `Rprop(lr, etas=(eta_minus, eta_plus), step_sizes=(min, max))`, as the update
    itself (do not follow it with a learning rate: `learning_rate` is the initial step size).

    Per entry, with `s = sign(g * prev)`::

        factor = eta_plus if s > 0, eta_minus if s < 0, 1 if s == 0
        step_size = clip(step_size * factor, min_step_size, max_step_size)
        g = 0 where factor == eta_minus          (a sign change: skip this entry once)
        update = -sign(g) * step_size;  prev = g

    `optax.rprop` returns the previous step's update instead of the current one and does not
    clip the first step size (1.40 apart after 50 steps).
    """

    def init(params):
        return TorchRpropState(optax.tree.full_like(params, learning_rate), optax.tree.zeros_like(params))

    def update(updates, state, params=None):
        del params

        def one(g, prev, step_size):
            s = jnp.sign(g * prev)
            factor = jnp.where(s > 0, eta_plus, jnp.where(s < 0, eta_minus, 1.0)).astype(g.dtype)
            step_size = jnp.clip(step_size * factor, min_step_size, max_step_size)
            g = jnp.where(factor == jnp.asarray(eta_minus, g.dtype), jnp.zeros_like(g), g)
            return -jnp.sign(g) * step_size, g, step_size

        triples = jax.tree.map(one, updates, state.prev, state.step_sizes)
        treedef = jax.tree.structure(updates)
        leaves = treedef.flatten_up_to(triples)
        out = treedef.unflatten([x[0] for x in leaves])
        prev = treedef.unflatten([x[1] for x in leaves])
        step_sizes = treedef.unflatten([x[2] for x in leaves])
        return out, TorchRpropState(step_sizes, prev)

    return optax.GradientTransformation(init, update)
