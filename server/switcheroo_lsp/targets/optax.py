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
from .base import Import, Wrapper


@dataclass(frozen=True)
class OptaxTarget:
    name: str = "optax"
    label: str = "Optax"
    has_init_line: bool = True
    wrapper: Wrapper | None = None
    imports: tuple[Import, ...] = ()
    step_why: str = "Optax updates are pure functions: the new state and parameters are returned, not mutated"
    zero_grad_why: str = "jax.grad returns fresh gradients, nothing accumulates"
    plateau_problem: str = ""
    pattern: str = (
        "**The Optax pattern.** An Optax optimizer is a pair of pure functions. "
        "`state = opt.init(params)` builds its state once; each step, "
        "`updates, state = opt.update(grads, state, params)` returns the updates and the new state, and "
        "`params = optax.apply_updates(params, updates)` returns the new parameters. Nothing is mutated, "
        "and `jax.grad` returns fresh gradients, so nothing needs zeroing.")

    def construction_summary(self, transform: str, module: str | None) -> str:
        return transform

    def construction_title(self, head: str) -> str:
        return f"Convert to {head}"

    def no_module_message(self, qualified: str, why: str) -> str:
        raise AssertionError("the optax target wraps nothing: every parameter pytree will do")

    def init_lines(self, target: str, names: Names) -> list[str]:
        return [f"{names.state} = {target}.init({names.params})"]

    def init_reads(self, names: Names) -> list[str]:
        return [names.params]

    def steps_of(self, kinds: frozenset[str]) -> "OptaxTarget":
        return self

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

    def step_title(self, receiver: str, names: Names) -> str:
        return f"Convert {receiver}.step() to {receiver}.update + optax.apply_updates"

    def step_refs(self, names: Names) -> list[str]:
        return []

    def step_reads(self, names: Names) -> list[str]:
        return [names.grads, names.params, names.state]

    def params_hint(self, names: Names) -> str:
        return f"{names.params} = the parameter pytree to optimize"

    def grads_hint(self, names: Names) -> str:
        return f"{names.grads} = jax.grad(loss_fn)({names.params})"

    derives_grads: bool = False

    def grads_call(self, region, names: Names) -> str:
        raise AssertionError("the optax target does not derive gradients")

    def gradients_note(self, gradients, names: Names) -> str:
        return ""

    def todo_note(self, gradients, names: Names, missing) -> str:
        """Where the loss is computed: the statements a `loss_fn(params, ...)` would hold."""
        if gradients is None or names.grads not in missing:
            return ""
        if gradients.holds:
            return f"; loss_fn({names.params}, ...) would hold `{gradients.holds}`"
        if gradients.hint:
            return f"; the loss is computed by `{gradients.hint}`"
        return ""

    hyperparams_need_state: bool = True

    def hyperparam(self, receiver: str, names: Names, name: str, inner: bool = False, path: str = "") -> str:
        """`opt_state.hyperparams["learning_rate"]`: where optax.inject_hyperparams keeps it (the
        dict is the state's own: writing into it sets what the next update uses)."""
        return f'{names.state}{".inner_opt_state" if inner else ""}{path}.hyperparams["{name}"]'

    def manual_message(self, member: str, receiver: str, lbfgs: bool = False) -> str:
        r = receiver
        if member == "closure" and lbfgs:
            # switcheroo_optax.torch_lbfgs: one update is one torch step(closure).
            return (f"{r}.step(closure) → write the closure's loss as loss_fn(params), then "
                    f"updates, opt_state = {r}.update(grads, opt_state, params, value_fn=loss_fn); "
                    "params = optax.apply_updates(params, updates) (one update runs torch's max_iter iterations)")
        return {
            "closure": f"{r}.step(closure): Optax has no closures; compute the loss and gradients with "
                       "jax.value_and_grad, then call update",
            "step_value": f"the value of {r}.step() is used: rewrite by hand as "
                          f"updates, state = {r}.update(grads, state, params)",
            "state": f"{r}.state: torch's per-parameter state (momentum buffers, moments) lives in the "
                     "opt_state pytree in Optax, shaped by the transforms of the chain; read it from there",
            "state_dict": f"{r}.state_dict(): Optax keeps its state in the opt_state pytree; save and restore "
                          "it (with params) using your checkpoint library, e.g. orbax",
            "load_state_dict": f"{r}.load_state_dict(): Optax keeps its state in the opt_state pytree; save and "
                               "restore it (with params) using your checkpoint library, e.g. orbax",
            "add_param_group": f"{r}.add_param_group(): Optax optimizers are fixed at construction; build the "
                               "groups up front with optax.multi_transform",
            "param_groups": f"{r}.param_groups: Optax has no mutable groups; change hyperparameters with "
                            "optax.inject_hyperparams (opt_state.hyperparams[...]) or a schedule",
        }[member]


OPTAX = OptaxTarget()
