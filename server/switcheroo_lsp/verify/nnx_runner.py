"""The Flax NNX side: the transform the flax-nnx fix wraps, run the way that fix runs it —
`nnx.Optimizer(model, tx, wrt=nnx.Param)` over an `nnx.Module` holding the problem's tensors,
`optimizer.update(model, grads)` each step with the gradients torch was fed. LBFGS evaluates its
own loss (`value_fn` over the parameters' nnx.State), as one torch `step(closure)` does.

Placeholders the rewrite asks the user to define (`param_labels`, a weight decay `mask`) are
bound to functions of the state that label each tensor with its problem group: the nnx.State's
leaves are the module's tensors in attribute order (`p00`, `p01`, ...).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .cases import Resolved
from .optax_runner import OptaxRun, namespace, schedule_values
from .problems import Problem
from .torch_runner import Run


class _Net(nnx.Module):
    def __init__(self, arrays):
        for i, a in enumerate(arrays):
            setattr(self, _name(i), nnx.Param(a))


def _name(i: int) -> str:
    return f"p{i:02d}"


def _tensors(net: _Net, n: int) -> list:
    return [getattr(net, _name(i))[...] for i in range(n)]


def _per_leaf(values: tuple):
    """A function of a pytree of the tensors (the nnx.State) giving `values` in its shape."""
    return lambda tree: jax.tree.unflatten(jax.tree.structure(tree), list(values))


def run(res: Resolved, problem: Problem, torch_run: Run, dtype) -> OptaxRun:
    ns = namespace(problem, res)
    for placeholder in ("_sw_labels", "_sw_mask"):
        if placeholder in ns:
            ns[placeholder] = _per_leaf(ns[placeholder])
    tx = eval(res.optax, ns)
    n = len(problem.init)
    net = _Net([jnp.asarray(p, dtype) for p in problem.init])
    optimizer = nnx.Optimizer(net, tx, wrt=nnx.Param)
    steps = len(torch_run.lr)
    rows = [_flat(_tensors(net, n))]
    if torch_run.grads is None:
        step = _lbfgs_step(problem, n, res.maximize)
        for _ in range(steps):
            step(optimizer, net)
            rows.append(_flat(_tensors(net, n)))
    else:
        step = _fed_step(n)
        for fed in torch_run.grads:
            step(optimizer, net, [jnp.asarray(g, dtype) for g in fed])
            rows.append(_flat(_tensors(net, n)))
    return OptaxRun(np.array(rows), schedule_values(res, ns, steps))


def _fed_step(n: int):
    @nnx.jit
    def step(optimizer, net, fed):
        # A loss linear in the tensors has exactly `fed` as its gradient: nnx.grad hands it over
        # as the nnx.State that `optimizer.update(model, grads)` takes.
        grads = nnx.grad(lambda m: sum(jnp.sum(t * g) for t, g in zip(_tensors(m, n), fed)))(net)
        optimizer.update(net, grads)
    return step


def _lbfgs_step(problem: Problem, n: int, maximize: bool):
    sign = -1.0 if maximize else 1.0

    def of_state(state) -> list:
        return [state[_name(i)][...] for i in range(n)]

    @nnx.jit
    def step(optimizer, net):
        grads = nnx.grad(lambda m: sign * problem.jax_loss(_tensors(m, n), None))(net)
        optimizer.update(net, grads, value_fn=lambda state: sign * problem.jax_loss(of_state(state), None))
    return step


def _flat(tensors) -> np.ndarray:
    return np.concatenate([np.asarray(t).ravel() for t in tensors])
