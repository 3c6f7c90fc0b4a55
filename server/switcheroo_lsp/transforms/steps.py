"""`opt.step()` -> the target's update lines; `opt.zero_grad()` -> removed."""

from __future__ import annotations

from ..analysis.findings import Site
from .changes import Plan
from .gradients import plan_gradients


def plan_step(p, site: Site, plan: Plan, folded: dict) -> None:
    target = step_target(p.target, site)
    if plan_gradients(p, site, plan, folded, target) and site.gradients.region.moves_update:
        return              # the update moved next to the gradients' call (every micro-step)
    texts = []
    plan.per_step.add(site.names.grads)
    if site.missing:
        texts.append(f"# TODO(switcheroo): define {', '.join(site.missing)} here{_hint(target, site)}"
                     f"{target.todo_note(site.gradients, site.names, site.missing)}")
    plan.replace(site.ctx, texts + target.step_lines(site.receiver, site.names, site.plateau_state, p.optax_name))
    if site.state_init is not None:     # an optimizer stored on self: its state starts beside it
        init_ctx, lines = site.state_init
        plan.add_after(init_ctx, lines)


def _hint(target, site: Site) -> str:
    """How to define the grads a step needs (nothing to say about the rest: parameters and a
    state kept across calls are the caller's to pass in)."""
    return f" ({target.grads_hint(site.names)})" if site.names.grads in site.missing else ""


def step_target(target, site: Site):
    """The target whose step form applies to the stepped optimizer (one already in Optax is
    stepped the functional way)."""
    return target.steps_of(frozenset(i.kind for i in site.ids))


def plan_zero_grad(site: Site, plan: Plan) -> None:
    plan.remove(site.ctx)
    plan.change(site.ctx).zero_grad = True
