"""The Flax NNX target: `nnx.Optimizer` owns the Optax state and updates the module in place.

    optimizer = nnx.Optimizer(model, optax.adam(learning_rate=0.01), wrt=nnx.Param)
    ...
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)

The transform inside is the same faithful Optax expression as the optax target's. The module is
where torch's `model.parameters()` came from; a construction without one (a bare tensor list,
filtered parameters) has no NNX form. `update(model, grads)` is the flax >= 0.11 signature.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..analysis.findings import Names
from .base import Import, Wrapper
from .optax import OPTAX

NNX_OPTIMIZER = Wrapper("nnx.Optimizer", (("wrt", "nnx.Param"),))


@dataclass(frozen=True)
class FlaxNnxTarget:
    name: str = "flax-nnx"
    label: str = "Flax NNX"
    has_init_line: bool = False
    wrapper: Wrapper | None = NNX_OPTIMIZER
    imports: tuple[Import, ...] = (Import("nnx", "flax.nnx", "from flax import nnx"),)
    step_why: str = "nnx.Optimizer keeps the Optax state and updates the module's nnx.Param variables in place"
    zero_grad_why: str = "nnx.grad returns fresh gradients, nothing accumulates"
    # nnx.Optimizer.update applies the updates itself: a plateau state cannot scale them afterwards.
    plateau_problem: str = ("nnx.Optimizer applies its updates itself, so a separate plateau state cannot "
                            "scale them; rebuild the optimizer around optax.contrib.reduce_on_plateau by hand, "
                            "or use the optax target")
    pattern: str = (
        "**The Flax NNX pattern.** `optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)` wraps an Optax "
        "transform `tx` and keeps its state; each step, `loss, grads = nnx.value_and_grad(loss_fn)(model)` "
        "returns fresh gradients (nothing needs zeroing) and `optimizer.update(model, grads)` updates the "
        "module's `nnx.Param` variables in place (flax ≥ 0.11).")

    def construction_summary(self, transform: str, module: str | None) -> str:
        return NNX_OPTIMIZER.text(module or "model", transform)

    def construction_title(self, head: str) -> str:
        return f"Convert to nnx.Optimizer({head})"

    def no_module_message(self, qualified: str, why: str) -> str:
        return (f"{qualified}: no Flax NNX form: nnx.Optimizer updates the nnx.Param variables of one module, "
                f"and {why}; hold these parameters in an nnx.Module, or use the optax target")

    def init_lines(self, target: str, names: Names) -> list[str]:
        return []

    def init_reads(self, names: Names) -> list[str]:
        return []

    hyperparams_need_state: bool = False

    def hyperparam(self, receiver: str, names: Names, name: str, inner: bool = False, path: str = "") -> str:
        """`optimizer.opt_state.hyperparams["learning_rate"][...]`: nnx.Optimizer keeps each
        hyperparameter as a variable (flax 0.12: `[...]` reads and writes its value)."""
        return f'{receiver}.opt_state{".inner_opt_state" if inner else ""}{path}.hyperparams["{name}"][...]'

    def steps_of(self, kinds: frozenset[str]):
        return OPTAX if kinds == {"optax"} else self

    def step_lines(self, receiver: str, names: Names, plateau_state: str, optax_name: str) -> list[str]:
        return [self.step_summary(receiver, names)]

    def step_summary(self, receiver: str, names: Names) -> str:
        return f"{receiver}.update({names.module or 'model'}, {names.grads})"

    def step_title(self, receiver: str, names: Names) -> str:
        return f"Convert {receiver}.step() to {self.step_summary(receiver, names)}"

    def step_refs(self, names: Names) -> list[str]:
        root = _root(names.module or "model")
        return [root] if root else []

    def step_reads(self, names: Names) -> list[str]:
        return [names.grads]

    def params_hint(self, names: Names) -> str:
        return f"{names.module or 'model'} = the nnx.Module to train"

    def grads_hint(self, names: Names) -> str:
        return f"loss, {names.grads} = nnx.value_and_grad(loss_fn)({names.module or 'model'})"

    derives_grads: bool = True

    def grads_call(self, region, names: Names) -> str:
        """`(loss, output), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)`."""
        bound = region.value
        if region.aux:
            aux = region.aux[0] if len(region.aux) == 1 else f"({', '.join(region.aux)})"
            bound = f"({bound}, {aux})"
        has_aux = ", has_aux=True" if region.aux else ""
        args = ", ".join([region.module] + region.extra)
        return f"{bound}, {names.grads} = nnx.value_and_grad({region.name}{has_aux})({args})"

    def gradients_note(self, gradients, names: Names) -> str:
        region = gradients.region if gradients is not None else None
        if region is None:
            return ""
        note = f"; {region.backward_text} → {self.grads_call(region, names)}, {region.name} holding `{gradients.holds}`"
        acc = region.accumulate
        if acc is not None and acc.keeps_sum:
            note += f"; {acc.why}"
        elif acc is not None:
            note += (f"; {acc.why}: optax.MultiSteps({acc.keywords()}) around the optimizer's transform, updated at "
                     "every backward()")
            if acc.condition is not None or "accumulate" in acc.why:
                note += " (as torch while each pass of the loop is a whole number of updates)"
        return note

    def todo_note(self, gradients, names: Names, missing) -> str:
        if gradients is None or names.grads not in missing or not gradients.reason:
            return ""
        return f"; not derived: {gradients.reason}"

    def manual_message(self, member: str, receiver: str, lbfgs: bool = False) -> str:
        r = receiver
        if member == "closure" and lbfgs:
            # switcheroo_optax.torch_lbfgs: one update is one torch step(closure); nnx.Optimizer
            # passes extra keywords on to the transform's update.
            return (f"{r}.step(closure) → write the closure's loss as loss_fn(params) over the parameters' "
                    f"nnx.State, then {r}.update(model, grads, value_fn=loss_fn) (one update runs torch's "
                    "max_iter iterations)")
        return {
            "closure": f"{r}.step(closure): Flax NNX has no closures; compute the loss and gradients with "
                       f"nnx.value_and_grad, then call {r}.update(model, grads)",
            "step_value": f"the value of {r}.step() is used: rewrite by hand around {r}.update(model, grads) "
                          "(it returns the updates it applied)",
            "state": f"{r}.state: torch's per-parameter state (momentum buffers, moments) lives in "
                     f"{r}.opt_state, shaped by the transforms of the chain; read it from there",
            "state_dict": f"{r}.state_dict(): nnx.Optimizer keeps its state in nnx.state({r}); save and restore "
                          "it (with the model's) using your checkpoint library, e.g. orbax",
            "load_state_dict": f"{r}.load_state_dict(): nnx.Optimizer keeps its state in nnx.state({r}); save "
                               "and restore it (with the model's) using your checkpoint library, e.g. orbax",
            "add_param_group": f"{r}.add_param_group(): nnx.Optimizer is fixed at construction; build the "
                               "groups up front with optax.multi_transform",
            "param_groups": f"{r}.param_groups: nnx.Optimizer has no mutable groups; change hyperparameters "
                            f"with optax.inject_hyperparams ({r}.opt_state.hyperparams[...]) or a schedule",
        }[member]


def _root(expr: str) -> str:
    """The name an expression starts from (`model` for `model`, `models` for `models[0]`)."""
    end = 0
    while end < len(expr) and (expr[end].isalnum() or expr[end] == "_"):
        end += 1
    return expr[:end]


FLAX_NNX = FlaxNnxTarget()
