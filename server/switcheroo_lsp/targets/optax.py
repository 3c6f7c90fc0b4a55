"""The functional Optax target: state and parameters threaded by hand.

    opt = optax.adam(learning_rate=0.01)
    opt_state = opt.init(params)
    ...
    updates, opt_state = opt.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..analysis.findings import Names


@dataclass(frozen=True)
class OptaxTarget:
    name: str = "optax"
    has_init_line: bool = True
    step_why: str = "Optax updates are pure functions: the new state and parameters are returned, not mutated"
    pattern: str = (
        "**The Optax pattern.** An Optax optimizer is a pair of pure functions. "
        "`state = opt.init(params)` builds its state once; each step, "
        "`updates, state = opt.update(grads, state, params)` returns the updates and the new state, and "
        "`params = optax.apply_updates(params, updates)` returns the new parameters. Nothing is mutated, "
        "and `jax.grad` returns fresh gradients, so nothing needs zeroing.")

    def construction_summary(self, transform: str) -> str:
        return transform

    def construction_text(self, transform: str, owner: str | None) -> str:
        return transform

    def init_lines(self, target: str, names: Names) -> list[str]:
        return [f"{names.state} = {target}.init({names.params})"]

    def init_reads(self, names: Names) -> list[str]:
        return [names.params]

    def step_lines(self, receiver: str, names: Names, plateau_state: str, optax_name: str) -> list[str]:
        n, ox = names, optax_name
        lines = [f"updates, {n.state} = {receiver}.update({n.grads}, {n.state}, {n.params})"]
        if plateau_state:
            # ReduceLROnPlateau: the plateau state's scale multiplies every update.
            lines.append(f"{n.params} = {ox}.apply_updates({n.params}, {ox}.tree.scale({plateau_state}.scale, "
                         "updates))")
        else:
            lines.append(f"{n.params} = {ox}.apply_updates({n.params}, updates)")
        return lines

    def step_summary(self, receiver: str, names: Names) -> str:
        n = names
        return (f"updates, {n.state} = {receiver}.update({n.grads}, {n.state}, {n.params}); "
                f"{n.params} = optax.apply_updates({n.params}, updates)")

    def step_reads(self, names: Names) -> list[str]:
        return [names.grads, names.params, names.state]

    def params_hint(self, names: Names) -> str:
        return f"{names.params} = the parameter pytree to optimize"

    def grads_hint(self, names: Names) -> str:
        return f"{names.grads} = jax.grad(loss_fn)({names.params})"


OPTAX = OptaxTarget()
