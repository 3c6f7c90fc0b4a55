"""torch's Adagrad direction."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class ScaleByTorchAdagradState(NamedTuple):
    sum_of_squares: Any     # torch: state_sum


def scale_by_torch_adagrad(initial_accumulator_value: float = 0.0, eps: float = 1e-10) -> optax.GradientTransformation:
    """The direction of torch's `Adagrad`, without the learning rate (follow it with
    `optax.scale_by_learning_rate(lr)`, or with `lambda count: lr / (1 + count * lr_decay)`
    for torch's `lr_decay`).

    torch starts the accumulator at `initial_accumulator_value` (0 by default) and adds eps
    *outside* the square root::

        s = s + g²;  direction = g / (sqrt(s) + eps)

    `optax.adagrad` starts at 0.1 and puts eps (1e-7 by default) inside the square root; its
    closest setting is still 1.3e-6 apart after 50 steps.
    """

    def init(params):
        return ScaleByTorchAdagradState(optax.tree.full_like(params, initial_accumulator_value))

    def update(updates, state, params=None):
        del params
        s = jax.tree.map(lambda s, g: s + g * g, state.sum_of_squares, updates)
        out = jax.tree.map(lambda g, s: g / (jnp.sqrt(s) + eps), updates, s)
        return out, ScaleByTorchAdagradState(s)

    return optax.GradientTransformation(init, update)
