"""A torch scheduler -> its schedule folded into the optimizer (the statement goes), or
ReduceLROnPlateau's own state; `scheduler.step()` -> removed, or the plateau's update."""

from __future__ import annotations

from ..analysis.arguments import code
from ..analysis.findings import Site
from ..analysis.tracing import Identity
from ..knowledge.emit import rename_optax
from .changes import Folded, Plan


def plan_schedule(p, site: Site, plan: Plan, folded: dict[Identity, Folded]) -> None:
    schedule, ctx = site.schedule, site.ctx
    if schedule.kind == "plateau":
        target = code(site.sched.target) if site.sched.target is not None else "plateau"
        texts = [f"{target} = {schedule.text}",
                 f"{site.plateau_state} = {target}.init({site.names.params})"]
        plan.replace(ctx, [rename_optax(t, p.optax_name) for t in texts])
        return
    plan.remove(ctx)
    for member in site.absorbed:        # SequentialLR's members go with it
        plan.remove(member)
    f = folded.setdefault(site.identity, Folded())
    f.learning_rate, f.momentum = schedule.text, schedule.momentum or None
    if site.steps_per_epoch_missing:
        f.todo.append("# TODO(switcheroo): define steps_per_epoch (optimizer updates per epoch) for the schedule")


def plan_scheduler_step(site: Site, plan: Plan) -> None:
    if site.schedule.kind != "plateau":
        plan.remove(site.ctx)
        return
    state = site.plateau_state
    plan.replace(site.ctx, [f"_, {state} = {site.receiver}.update(updates={site.names.params}, state={state}, "
                            f"value={site.metric})"])
