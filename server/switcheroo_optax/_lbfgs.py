"""torch's LBFGS without a line search."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

_CURVATURE_MIN = 1e-10     # torch stores a (y, s) pair only when y·s exceeds this


class TorchLbfgsState(NamedTuple):
    n_iter: jax.Array          # iterations so far, over all updates (torch: state['n_iter'])
    d: jax.Array               # last search direction (flat)
    t: jax.Array               # last step length
    old_dirs: jax.Array        # (history_size, n): gradient differences y, oldest first
    old_stps: jax.Array        # (history_size, n): steps s, oldest first
    ro: jax.Array              # (history_size,): 1 / (y·s)
    num_old: jax.Array         # how many rows of the history are in use
    h_diag: jax.Array          # scale of the initial inverse Hessian, y·s / y·y
    prev_flat_grad: jax.Array  # gradient at the previous iteration


def torch_lbfgs(learning_rate: float = 1.0, max_iter: int = 20, max_eval: int | None = None,
                tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                history_size: int = 100) -> optax.GradientTransformationExtraArgs:
    """torch's `LBFGS(lr, max_iter, max_eval, tolerance_grad, tolerance_change, history_size)`
    with `line_search_fn=None`, as the update itself: **one `update` is one torch
    `step(closure)`**.

    Call it as `update(grads, state, params, value_fn=loss_fn)` where `grads` is the gradient
    at `params` and `loss_fn(params)` returns the loss (what torch's closure computes). Like
    torch, it then runs up to `max_iter` iterations, re-evaluating `loss_fn` after each move
    but the last, and stops early when torch does: max |g| <= tolerance_grad, a direction that
    does not descend by tolerance_change, a step or loss change below tolerance_change, or
    `max_eval` evaluations (default `max_iter * 5 // 4`). With `max_iter=1`, `value_fn` is not
    needed (one iteration, no re-evaluation).

    Each iteration is torch's: the two-loop recursion over the last `history_size` pairs
    `(y, s)` kept only when y·s > 1e-10, initial inverse Hessian `y·s / y·y`, step length
    `min(1, 1 / ||g||_1) * lr` on the very first iteration and `lr` afterwards.
    `optax.lbfgs(linesearch=None)` differs in that first step (it uses ||g||_2) and has no
    inner iterations or early exits. torch's `line_search_fn='strong_wolfe'` is not
    reproduced here (optax's zoom line search is a different search).
    """
    evals_limit = max_iter * 5 // 4 if max_eval is None else max_eval
    size = int(history_size)

    def init(params):
        flat, _ = ravel_pytree(params)
        n, dt = flat.size, flat.dtype
        zeros = jnp.zeros((n,), dt)
        return TorchLbfgsState(
            n_iter=jnp.zeros([], jnp.int32), d=zeros, t=jnp.zeros([], dt),
            old_dirs=jnp.zeros((size, n), dt), old_stps=jnp.zeros((size, n), dt), ro=jnp.zeros((size,), dt),
            num_old=jnp.zeros([], jnp.int32), h_diag=jnp.ones([], dt), prev_flat_grad=zeros)

    def two_loop(g, st: TorchLbfgsState, num_old, h_diag):
        def backward(k, carry):
            q, al = carry
            i = num_old - 1 - k
            a = jnp.dot(st.old_stps[i], q) * st.ro[i]
            return q - a * st.old_dirs[i], al.at[i].set(a)

        q, al = jax.lax.fori_loop(0, num_old, backward, (-g, jnp.zeros((size,), g.dtype)))

        def forward(i, r):
            be = jnp.dot(st.old_dirs[i], r) * st.ro[i]
            return r + (al[i] - be) * st.old_stps[i]

        return jax.lax.fori_loop(0, num_old, forward, q * h_diag)

    def direction(g, st: TorchLbfgsState):
        """torch's direction update; returns the new state (history, d) without t."""
        first = st.n_iter == 1
        y = g - st.prev_flat_grad
        s = st.d * st.t
        ys = jnp.dot(y, s)
        push = jnp.logical_and(jnp.logical_not(first), ys > _CURVATURE_MIN)
        full = st.num_old == size
        slot = jnp.minimum(st.num_old, size - 1)

        def pushed(rows, row):
            rows = jnp.where(full, jnp.roll(rows, -1, axis=0), rows)
            return rows.at[slot].set(row)

        old_dirs = jnp.where(push, pushed(st.old_dirs, y), st.old_dirs)
        old_stps = jnp.where(push, pushed(st.old_stps, s), st.old_stps)
        ro = jnp.where(push, pushed(st.ro[:, None], (1.0 / ys)[None])[:, 0], st.ro)
        num_old = jnp.where(push, jnp.minimum(st.num_old + 1, size), st.num_old)
        h_diag = jnp.where(push, ys / jnp.dot(y, y), st.h_diag)
        num_old = jnp.where(first, 0, num_old)
        h_diag = jnp.where(first, jnp.ones_like(h_diag), h_diag)
        st = st._replace(old_dirs=old_dirs, old_stps=old_stps, ro=ro, num_old=num_old, h_diag=h_diag)
        d = jax.lax.cond(first, lambda: -g, lambda: two_loop(g, st, num_old, h_diag))
        return st._replace(d=d)

    def update(updates, state, params=None, *, value_fn: Callable | None = None, value=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError("torch_lbfgs needs params: call update(grads, state, params, value_fn=loss_fn)")
        if max_iter > 1 and value_fn is None:
            raise ValueError(f"torch_lbfgs(max_iter={max_iter}) runs {max_iter} iterations per update, like one "
                             "torch step(closure): pass value_fn=loss_fn (params -> loss) to update()")
        g0, _ = ravel_pytree(updates)
        x0, unravel = ravel_pytree(params)
        dt = x0.dtype
        g0 = g0.astype(dt)

        def value_and_grad(x):
            loss, grad = jax.value_and_grad(lambda x: value_fn(unravel(x)))(x)
            return jnp.asarray(loss, dt), grad.astype(dt)

        if max_iter > 1:
            loss0 = jnp.asarray(value_fn(params) if value is None else value, dt)
        else:
            loss0 = jnp.zeros([], dt)

        def body(carry):
            x, g, loss, k, evals, opt_cond, _, st = carry
            k = k + 1
            st = st._replace(n_iter=optax.safe_increment(st.n_iter))
            st = direction(g, st)
            prev_loss = loss
            first = st.n_iter == 1
            t = jnp.where(first, jnp.minimum(1.0, 1.0 / jnp.sum(jnp.abs(g))) * learning_rate,
                          jnp.asarray(learning_rate, dt)).astype(dt)
            st = st._replace(t=t, prev_flat_grad=g)
            gtd = jnp.dot(g, st.d)
            no_descent = gtd > -tolerance_change
            x = jnp.where(no_descent, x, x + t * st.d)
            if max_iter > 1:
                evaluate = jnp.logical_and(jnp.logical_not(no_descent), k != max_iter)
                loss, g = jax.lax.cond(evaluate, value_and_grad, lambda _: (loss, g), x)
                evals = evals + evaluate.astype(jnp.int32)
                opt_cond = jnp.where(evaluate, jnp.max(jnp.abs(g)) <= tolerance_grad, opt_cond)
            done = (no_descent | (k == max_iter) | (evals >= evals_limit) | opt_cond
                    | (jnp.max(jnp.abs(st.d * t)) <= tolerance_change)
                    | (jnp.abs(loss - prev_loss) < tolerance_change))
            return x, g, loss, k, evals, opt_cond, done, st

        converged = jnp.max(jnp.abs(g0)) <= tolerance_grad
        carry = (x0, g0, loss0, jnp.zeros([], jnp.int32), jnp.ones([], jnp.int32), jnp.asarray(False),
                 converged, state)
        x, *_, st = jax.lax.while_loop(lambda c: jnp.logical_not(c[6]), body, carry)
        return unravel(x - x0), st

    return optax.GradientTransformationExtraArgs(init, update)
