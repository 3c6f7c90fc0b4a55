"""The Optax side: the expression fix-all writes (references replaced by their values), fed the
gradients torch was fed, from the same initial parameters. LBFGS evaluates its own loss on each
side (torch_lbfgs's `value_fn`), as one torch `step(closure)` does.

The text evaluated names only optax, jax.numpy, switcheroo_optax, literals and the
placeholders the rewrite asks the user to define (`param_labels` -> `_sw_labels`, a weight
decay `mask` -> `_sw_mask`), which are bound here to the problem's parameter groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

import switcheroo_optax

from .cases import Resolved
from .problems import Problem, split_groups
from .torch_runner import Run

_BUILTINS = {n: __builtins__[n] if isinstance(__builtins__, dict) else getattr(__builtins__, n)
             for n in ("float", "int", "abs", "min", "max", "round", "pow", "range", "sum", "bool", "dict", "list", "tuple")}


@dataclass
class OptaxRun:
    params: np.ndarray            # (steps + 1, n)
    lr: np.ndarray | None         # the schedule's value at each update count (None: no schedule)


def _group_of(problem: Problem, res: Resolved) -> list[int] | None:
    if res.groups is None:
        return None
    group = [0] * len(problem.init)
    for g, idx in enumerate(split_groups(len(problem.init), len(res.groups))):
        for j in idx:
            group[j] = g
    return group


def namespace(problem: Problem, res: Resolved) -> dict:
    ns = {"__builtins__": _BUILTINS, "optax": optax, "jnp": jnp, "jax": jax, "math": math,
          "switcheroo_optax": switcheroo_optax}
    group = _group_of(problem, res)
    if group is not None:
        if res.labels:
            ns["_sw_labels"] = tuple(res.labels[g] if g < len(res.labels) else f"group{g}" for g in group)
        ns["_sw_mask"] = tuple(bool(res.groups[g]["weight_decay"]) for g in group)
    return ns


def _flat(params) -> np.ndarray:
    return np.concatenate([np.asarray(p).ravel() for p in params])


def run(res: Resolved, problem: Problem, torch_run: Run, dtype) -> OptaxRun:
    ns = namespace(problem, res)
    tx = eval(res.optax, ns)
    params = tuple(jnp.asarray(p, dtype) for p in problem.init)
    state = tx.init(params)
    steps = len(torch_run.lr)
    if torch_run.grads is None:
        out = _run_lbfgs(tx, state, params, problem, steps, res.maximize)
    else:
        grads = tuple(jnp.asarray(np.stack([g[i] for g in torch_run.grads]), dtype) for i in range(len(params)))
        out = _run_fed(tx, state, params, grads, steps)
    return OptaxRun(out, schedule_values(res, ns, steps))


def schedule_values(res: Resolved, ns: dict, steps: int) -> np.ndarray | None:
    """The folded-in schedule's learning rate at each update count (None: no schedule)."""
    if res.schedule is None:
        return None
    schedule = eval(res.schedule, ns)
    # Optax calls a schedule with its int32 update count; so does this.
    return np.array([float(schedule(jnp.asarray(t, jnp.int32))) if callable(schedule) else float(schedule)
                     for t in range(steps)])


def _run_fed(tx, state, params, grads, steps: int) -> np.ndarray:
    def step(carry, g):
        p, s = carry
        updates, s = tx.update(g, s, p)
        p = optax.apply_updates(p, updates)
        return (p, s), jnp.concatenate([x.ravel() for x in p])

    try:
        flat = jax.jit(lambda c, gs: jax.lax.scan(step, c, gs)[1])((params, state), grads)
    except Exception:
        # A user's schedule lambda jax cannot trace (Python control flow on the count): run it
        # eagerly, update by update, as an un-jitted training loop would.
        carry, rows = (params, state), []
        for t in range(steps):
            carry, row = step(carry, tuple(g[t] for g in grads))
            rows.append(row)
        flat = jnp.stack(rows)
    return np.concatenate([_flat(params)[None, :], np.asarray(flat)], axis=0)


def _run_lbfgs(tx, state, params, problem: Problem, steps: int, maximize: bool) -> np.ndarray:
    sign = -1.0 if maximize else 1.0

    def loss(p):
        return sign * problem.jax_loss(p, None)

    @jax.jit
    def step(p, s):
        g = jax.grad(loss)(p)
        updates, s = tx.update(g, s, p, value=loss(p), grad=g, value_fn=loss)
        return optax.apply_updates(p, updates), s

    rows = [_flat(params)]
    for _ in range(steps):
        params, state = step(params, state)
        rows.append(_flat(params))
    return np.array(rows)
