"""Adam-family directions that differ from Optax's built-ins: AMSGrad, NAdam, SparseAdam."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._common import bias_correction, lerp, step_number


class ScaleByTorchAmsgradState(NamedTuple):
    count: jax.Array        # updates so far (int32)
    mu: Any                 # first moment (torch: exp_avg)
    nu: Any                 # second moment (torch: exp_avg_sq)
    nu_max: Any             # running maximum of the raw second moment (torch: max_exp_avg_sq)


def scale_by_torch_amsgrad(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> optax.GradientTransformation:
    """The direction of torch's `Adam(amsgrad=True)` / `AdamW(amsgrad=True)`, without the
    learning rate (follow it with `optax.scale_by_learning_rate(lr)`).

    torch keeps the running maximum of the *raw* second moment and bias-corrects it
    afterwards with the current step's correction::

        m = lerp(m, g, 1 - b1);  v = b2 v + (1 - b2) g²;  v_max = max(v_max, v)
        direction = (m / (1 - b1^t)) / (sqrt(v_max) / sqrt(1 - b2^t) + eps)

    `optax.amsgrad` takes the maximum of the bias-corrected moment instead, which is not the
    same sequence (0.15 apart after 50 steps of a small quadratic).
    """

    def init(params):
        zeros = optax.tree.zeros_like(params)
        return ScaleByTorchAmsgradState(jnp.zeros([], jnp.int32), zeros, zeros, zeros)

    def update(updates, state, params=None):
        del params
        t = step_number(state.count)
        mu = jax.tree.map(lambda m, g: lerp(m, g, 1 - b1), state.mu, updates)
        nu = jax.tree.map(lambda v, g: v * b2 + (1 - b2) * (g * g), state.nu, updates)
        nu_max = jax.tree.map(jnp.maximum, state.nu_max, nu)

        def direction(m, vmax):
            bc1 = bias_correction(b1, t, m)
            bc2 = bias_correction(b2, t, m)
            denom = jnp.sqrt(vmax) / jnp.sqrt(bc2) + eps
            return (m / denom) / bc1

        out = jax.tree.map(direction, mu, nu_max)
        return out, ScaleByTorchAmsgradState(optax.safe_increment(state.count), mu, nu, nu_max)

    return optax.GradientTransformation(init, update)


class ScaleByTorchNadamState(NamedTuple):
    count: jax.Array        # updates so far (int32)
    mu_product: jax.Array   # product of the momentum schedule so far (torch: mu_product)
    mu: Any                 # first moment
    nu: Any                 # second moment


def scale_by_torch_nadam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                         momentum_decay: float = 4e-3) -> optax.GradientTransformation:
    """The direction of torch's `NAdam`, without the learning rate (follow it with
    `optax.scale_by_learning_rate(lr)`).

    torch schedules the momentum coefficient, `mu_t = b1 (1 - 0.5 * 0.96^(t * momentum_decay))`,
    keeps the product of all `mu_t`, and adds eps outside the bias-corrected square root::

        m = lerp(m, g, 1 - b1);  v = b2 v + (1 - b2) g²;  denom = sqrt(v / (1 - b2^t)) + eps
        direction = (1 - mu_t) / (1 - prod mu) * g / denom
                  + mu_{t+1} / (1 - prod mu * mu_{t+1}) * m / denom

    `optax.nadam` is the limit `momentum_decay -> inf` (6.3e-2 apart at torch's 0.004).
    """

    def init(params):
        zeros = optax.tree.zeros_like(params)
        return ScaleByTorchNadamState(jnp.zeros([], jnp.int32), jnp.ones([], jnp.result_type(float)), zeros, zeros)

    def update(updates, state, params=None):
        del params
        t = step_number(state.count)
        mu_t = b1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        mu_product = state.mu_product * mu_t
        mu_product_next = mu_product * mu_next
        mu = jax.tree.map(lambda m, g: lerp(m, g, 1 - b1), state.mu, updates)
        nu = jax.tree.map(lambda v, g: v * b2 + (1 - b2) * (g * g), state.nu, updates)

        def direction(g, m, v):
            bc2 = bias_correction(b2, t, v)
            denom = jnp.sqrt(v / bc2) + eps
            c_grad = ((1.0 - mu_t) / (1.0 - mu_product)).astype(g.dtype)
            c_mom = (mu_next / (1.0 - mu_product_next)).astype(g.dtype)
            return c_grad * (g / denom) + c_mom * (m / denom)

        out = jax.tree.map(direction, updates, mu, nu)
        return out, ScaleByTorchNadamState(optax.safe_increment(state.count), mu_product, mu, nu)

    return optax.GradientTransformation(init, update)


class ScaleByTorchSparseAdamState(NamedTuple):
    count: jax.Array        # updates so far (int32): torch's per-parameter step
    mu: Any
    nu: Any


def _touched_rows(g):
    """True for the rows (first axis) that carry any nonzero gradient, broadcast to g."""
    if g.ndim <= 1:
        return g != 0
    rows = jnp.any(g != 0, axis=tuple(range(1, g.ndim)), keepdims=True)
    return jnp.broadcast_to(rows, g.shape)


def scale_by_torch_sparse_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> optax.GradientTransformation:
    """The direction of torch's `SparseAdam`, without the learning rate (follow it with
    `optax.scale_by_learning_rate(lr)`).

    torch's SparseAdam receives sparse gradients (e.g. from `nn.Embedding(sparse=True)`) and
    updates only the rows present in them: their moments and parameters move, every other
    row's moments stay exactly as they were. eps is added to the raw `sqrt(v)`::

        on present rows:  m += (1 - b1)(g - m);  v += (1 - b2)(g² - v)
                          direction = sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
        elsewhere:        nothing changes, direction 0

    JAX gradients are dense; a row that was not looked up has an all-zero gradient row, so
    "present" here means "has a nonzero gradient somewhere in the row" (rows along the first
    axis; single entries for 1-D parameters). A looked-up row whose gradient is exactly zero
    everywhere is the one case that differs: torch would still decay its moments.
    `t` counts every update, as torch's per-parameter step does.
    """

    def init(params):
        zeros = optax.tree.zeros_like(params)
        return ScaleByTorchSparseAdamState(jnp.zeros([], jnp.int32), zeros, zeros)

    def update(updates, state, params=None):
        del params
        t = step_number(state.count)
        masks = jax.tree.map(_touched_rows, updates)
        mu = jax.tree.map(lambda k, m, g: jnp.where(k, m + (g - m) * (1 - b1), m), masks, state.mu, updates)
        nu = jax.tree.map(lambda k, v, g: jnp.where(k, v + (g * g - v) * (1 - b2), v), masks, state.nu, updates)

        def direction(k, m, v):
            bc1 = bias_correction(b1, t, m)
            bc2 = bias_correction(b2, t, m)
            step = jnp.sqrt(bc2) / bc1
            return jnp.where(k, step * (m / (jnp.sqrt(v) + eps)), jnp.zeros_like(m))

        out = jax.tree.map(direction, masks, mu, nu)
        return out, ScaleByTorchSparseAdamState(optax.safe_increment(state.count), mu, nu)

    return optax.GradientTransformation(init, update)
