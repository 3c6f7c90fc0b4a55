"""torch's Adafactor."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._common import lerp, step_number


class TorchAdafactorState(NamedTuple):
    count: jax.Array        # updates so far (int32)
    row_var: Any            # per leaf: running mean of g² over the last dim (params with >= 2 dims), else ()
    col_var: Any            # per leaf: running mean of g² over the second-to-last dim, else ()
    variance: Any           # per leaf: running g² (params with < 2 dims), else ()


def torch_adafactor(learning_rate: float = 0.01, beta2_decay: float = -0.8, eps1: float | None = None,
                    eps2: float = 1e-3, d: float = 1.0, weight_decay: float = 0.0) -> optax.GradientTransformation:
    """torch's `Adafactor(lr, beta2_decay, eps=(eps1, eps2), d, weight_decay)`, as the update
    itself (do not follow it with a learning rate). Needs `params` in `update`.

    Per parameter, at step t (from 1)::

        rho = min(lr, 1 / sqrt(t));  alpha = max(eps2, rms(param)) * rho;  w = t ** beta2_decay
        >= 2 dims: factor the LAST two dims:
            row_var = lerp(row_var, mean(g², -1), w);  col_var = lerp(col_var, mean(g², -2), w)
            var = row_var @ col_var / max(mean(row_var, -2), eps1)
        <  2 dims: var = lerp(var, g², w)
        u = g / sqrt(max(var, eps1²));  u /= max(1, rms(u) / d)
        param <- param * (1 - lr * weight_decay) - alpha * u

    eps1 = None means the parameter dtype's machine epsilon, as in torch. `optax.adafactor`
    has other defaults altogether (0.34 apart) and factors the two *largest* dims of a >2-D
    parameter; this transform factors the last two, like torch, so it is exact for any shape.
    """

    def init(params):
        def row(p):
            return jnp.zeros(p.shape[:-1] + (1,), p.dtype) if p.ndim >= 2 else jnp.zeros((0,), p.dtype)

        def col(p):
            return jnp.zeros(p.shape[:-2] + (1, p.shape[-1]), p.dtype) if p.ndim >= 2 else jnp.zeros((0,), p.dtype)

        def var(p):
            return jnp.zeros_like(p) if p.ndim < 2 else jnp.zeros((0,), p.dtype)

        return TorchAdafactorState(jnp.zeros([], jnp.int32), jax.tree.map(row, params),
                                   jax.tree.map(col, params), jax.tree.map(var, params))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("torch_adafactor needs params: call update(grads, state, params)")
        t = step_number(state.count)
        w = t ** beta2_decay
        rho = jnp.minimum(learning_rate, 1.0 / t ** 0.5)

        def one(g, p, row_var, col_var, variance):
            e1 = jnp.finfo(p.dtype).eps if eps1 is None else eps1
            size = p.size
            alpha = jnp.maximum(eps2, jnp.linalg.norm(p.ravel()) / size ** 0.5) * rho
            w_ = w.astype(p.dtype)
            if g.ndim >= 2:
                row_var = lerp(row_var, jnp.mean(g * g, axis=-1, keepdims=True), w_)
                col_var = lerp(col_var, jnp.mean(g * g, axis=-2, keepdims=True), w_)
                var = (row_var @ col_var) / jnp.maximum(jnp.mean(row_var, axis=-2, keepdims=True), e1)
            else:
                variance = lerp(variance, g * g, w_)
                var = variance
            u = jax.lax.rsqrt(jnp.maximum(var, e1 * e1)) * g
            denom = jnp.maximum(1.0, jnp.linalg.norm(u.ravel()) / (size ** 0.5 * d))
            step = (-alpha / denom).astype(p.dtype) * u
            if not (isinstance(weight_decay, (int, float)) and weight_decay == 0):
                step = step - (learning_rate * weight_decay) * p
            return step, row_var, col_var, variance

        groups = jax.tree.map(one, updates, params, state.row_var, state.col_var, state.variance)
        treedef = jax.tree.structure(updates)
        leaves = treedef.flatten_up_to(groups)
        out, rows, cols, vars_ = (treedef.unflatten([x[i] for x in leaves]) for i in range(4))
        return out, TorchAdafactorState(optax.safe_increment(state.count), rows, cols, vars_)

    return optax.GradientTransformation(init, update)
