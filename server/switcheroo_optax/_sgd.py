"""torch's SGD with momentum that may change while training (set by hand through param_groups)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class TorchSgdState(NamedTuple):
    momentum_buffer: Any    # torch: state["momentum_buffer"]
    started: Any            # torch: the buffer exists (a momentum other than 0 has been used)


def torch_sgd(learning_rate: Any, momentum: Any = 0.0, dampening: Any = 0.0,
              nesterov: bool = False) -> optax.GradientTransformation:
    """The update of torch's `SGD` (after its L2 decay and `maximize`, which the chain puts first),
    faithful when `momentum` changes between steps (`optax.inject_hyperparams(torch_sgd)`, the
    loop writing `opt_state.hyperparams["momentum"]`).

    torch keeps no momentum buffer while momentum is 0: at the first step whose momentum is not
    0 the buffer *is* that step's gradient (undampened), later ones are
    `momentum * buf + (1 - dampening) * g`, and a step whose momentum is 0 again leaves the buffer
    alone and moves by the gradient. `optax.sgd`'s trace accumulates from the first update
    whatever the momentum, so a momentum raised from 0 later (a warmup, torch's default 0 set by
    hand) trains a different model (0.4 apart after 50 steps, tests/numerics/test_hyperparams.py).
    jit-safe: the choices are `jnp.where`s on a flag kept in the state.
    """

    def init(params):
        return TorchSgdState(optax.tree.zeros_like(params), jnp.zeros([], dtype=bool))

    def update(updates, state, params=None):
        del params
        on = jnp.asarray(momentum) != 0

        def buffer(buf, g):
            later = momentum * buf + (1 - dampening) * g
            return jnp.where(on, jnp.where(state.started, later, g), buf)

        bufs = jax.tree.map(buffer, state.momentum_buffer, updates)

        def direction(g, buf):
            moved = g + momentum * buf if nesterov else buf
            return -learning_rate * jnp.where(on, moved, g)

        out = jax.tree.map(direction, updates, bufs)
        return out, TorchSgdState(bufs, state.started | on)

    return optax.GradientTransformation(init, update)
