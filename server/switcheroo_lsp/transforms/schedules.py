"""A torch scheduler -> its schedule folded into the optimizer (the statement goes), or
ReduceLROnPlateau's own state; `scheduler.step()` -> removed, or the plateau's update."""

from __future__ import annotations

import re

import libcst as cst

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
    target = site.sched.target
    if isinstance(target, cst.Name) and _read_elsewhere(p, target.value, ctx):
        # Other code reads the scheduler (`return opt, sched`): it keeps a name, now the schedule.
        plan.replace(ctx, [f"{target.value} = {rename_optax(schedule.text, p.optax_name)}"])
    else:
        plan.remove(ctx)
    for member in site.absorbed:        # SequentialLR's members go with it
        plan.remove(member)
    if schedule.kind in ("constant", "proxy"):
        return          # a factor of 1, or a report: the optimizer's learning rate stays as it is
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


def _read_elsewhere(p, name: str, ctx) -> bool:
    """Is `name` used in the file other than where it is bound here and as `name.step(...)`?"""
    span = p.program.span(ctx.stmt, ctx)
    own = (p.source.offset(span.start), p.source.offset(span.end))
    text = p.source.text
    for m in re.finditer(rf"(?<![\w.]){re.escape(name)}\b", text):
        if own[0] <= m.start() < own[1] or text.startswith(".step(", m.end()):
            continue
        return True
    return False
