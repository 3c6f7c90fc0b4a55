"""transformers' Adafactor (transformers.optimization.Adafactor)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._common import step_number


class HfAdafactorState(NamedTuple):
    count: jax.Array        # updates so far (int32)
    row_var: Any            # per leaf: running mean of g² + eps1 over the last dim (>= 2 dims), else ()
    col_var: Any            # per leaf: running mean over the second-to-last dim (>= 2 dims), else ()
    variance: Any           # per leaf: running g² + eps1 (< 2 dims), else ()
    momentum: Any           # per leaf: the running update (beta1 given), else ()


def hf_adafactor(learning_rate=None, eps1: float = 1e-30, eps2: float = 1e-3, clip_threshold: float = 1.0,
                 decay_rate: float = -0.8, beta1: float | None = None, weight_decay: float = 0.0,
                 scale_parameter: bool = True, relative_step: bool = True,
                 warmup_init: bool = False) -> optax.GradientTransformation:
    """transformers' `Adafactor(params, lr, eps=(eps1, eps2), clip_threshold, decay_rate, beta1,
    weight_decay, scale_parameter, relative_step, warmup_init)`, as the update itself (do not follow
    it with a learning rate). Needs `params` in `update`. `learning_rate` may be a schedule (a
    function of the update count), used when `relative_step=False`.

    Per parameter, at step t (from 1)::

        step = min(1e-6 * t if warmup_init else 1e-2, 1 / sqrt(t)) if relative_step else lr
        alpha = max(eps2, rms(param)) * step if scale_parameter else step
        beta2t = 1 - t ** decay_rate;  u = g² + eps1
        >= 2 dims: row = beta2t * row + (1 - beta2t) * mean(u, -1);  col likewise over -2
                   update = g / sqrt(row / mean(row, -1)) / sqrt(col)    (row, col broadcast)
        <  2 dims: v = beta2t * v + (1 - beta2t) * u;  update = g / sqrt(v)
        update = alpha * update / max(1, rms(update) / clip_threshold)
        beta1:     m = beta1 * m + (1 - beta1) * update;  update = m
        param <- param - weight_decay * alpha * param - update

    `optax.adafactor` factors only dimensions of 128 or more, applies the learning rate before the
    parameter scale and decays the weights without it; torch's own `Adafactor` is another
    algorithm (switcheroo_optax.torch_adafactor).
    """

    def init(params):
        def row(p):
            return jnp.zeros(p.shape[:-1], p.dtype) if p.ndim >= 2 else jnp.zeros((0,), p.dtype)

        def col(p):
            return jnp.zeros(p.shape[:-2] + p.shape[-1:], p.dtype) if p.ndim >= 2 else jnp.zeros((0,), p.dtype)

        def var(p):
            return jnp.zeros_like(p) if p.ndim < 2 else jnp.zeros((0,), p.dtype)

        def mom(p):
            return jnp.zeros_like(p) if beta1 is not None else jnp.zeros((0,), p.dtype)

        return HfAdafactorState(jnp.zeros([], jnp.int32), jax.tree.map(row, params), jax.tree.map(col, params),
                                jax.tree.map(var, params), jax.tree.map(mom, params))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("hf_adafactor needs params: call update(grads, state, params)")
        t = step_number(state.count)
        if relative_step:
            min_step = 1e-6 * t if warmup_init else 1e-2
            step = jnp.minimum(min_step, 1.0 / jnp.sqrt(t))
        else:
            step = learning_rate(state.count) if callable(learning_rate) else learning_rate
        beta2t = 1.0 - t ** decay_rate

        def rms(x):
            return jnp.linalg.norm(x.ravel()) / x.size ** 0.5

        def one(g, p, row_var, col_var, variance, momentum):
            alpha = jnp.maximum(eps2, rms(p)) * step if scale_parameter else step
            u = g * g + eps1
            if g.ndim >= 2:
                row_var = beta2t * row_var + (1.0 - beta2t) * jnp.mean(u, axis=-1)
                col_var = beta2t * col_var + (1.0 - beta2t) * jnp.mean(u, axis=-2)
                r = jax.lax.rsqrt(row_var / jnp.mean(row_var, axis=-1, keepdims=True))[..., None]
                c = jax.lax.rsqrt(col_var)[..., None, :]
                direction = r * c * g
            else:
                variance = beta2t * variance + (1.0 - beta2t) * u
                direction = jax.lax.rsqrt(variance) * g
            direction = direction / jnp.maximum(rms(direction) / clip_threshold, 1.0)
            direction = direction * alpha
            if beta1 is not None:
                momentum = beta1 * momentum + (1 - beta1) * direction
                direction = momentum
            out = -direction
            if not (isinstance(weight_decay, (int, float)) and weight_decay == 0):
                out = out - (weight_decay * alpha) * p
            return out.astype(p.dtype), row_var, col_var, variance, momentum

        groups = jax.tree.map(one, updates, params, state.row_var, state.col_var, state.variance, state.momentum)
        treedef = jax.tree.structure(updates)
        leaves = treedef.flatten_up_to(groups)
        out, rows, cols, vars_, moms = (treedef.unflatten([x[i] for x in leaves]) for i in range(5))
        return out, HfAdafactorState(optax.safe_increment(state.count), rows, cols, vars_, moms)

    return optax.GradientTransformation(init, update)
