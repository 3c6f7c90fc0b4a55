"""Plan a set of fixes: each site's rewrite family adds its changes to one `Plan`.

Fixes compose through the plan: the optimizer's construction is rewritten once with everything
folded into it (schedule, clipping), whichever fixes asked; imports follow from what the new
code uses. One module per family: optimizers, steps, schedules, clipping, imports; todos.py
keeps one TODO per scope and name.
"""

from __future__ import annotations

import libcst as cst

from ..analysis.facts import StmtContext
from ..analysis.findings import Site
from ..analysis.tracing import Identity
from .changes import Folded, Plan
from .clipping import plan_clip
from .hyperparams import plan_hyperparam
from .imports import optax_name, plan_imports
from .optimizers import plan_optimizer
from .schedules import plan_schedule, plan_scheduler_step
from .steps import plan_step, plan_zero_grad, step_target
from .todos import one_per_scope


class Planner:
    """What every family reads: the analysis, its target, and what the file calls optax."""

    def __init__(self, result):
        self.result = result
        self.program = result.program
        self.builder = result.builder
        self.target = result.target
        self.source = result.doc.source
        self.optax_name = optax_name(result.program)
        self.rewritten: dict[Identity, tuple] = {}      # ident -> (emission, extras) as last planned

    def plan(self, sites: list[Site]) -> Plan:
        plan = Plan(has_hash=self._has_hash)
        seen: set[int] = set()
        used: list[Site] = []
        folded: dict[Identity, Folded] = {}
        constructs: dict[Identity, Site] = {}
        hyper: list[Site] = []
        for site in sites:
            # One statement may carry several findings (OPX102 + OPX203): plan it once.
            if id(site.ctx.stmt) in seen:
                continue
            seen.add(id(site.ctx.stmt))
            used.append(site)
            kind = site.finding.kind
            if kind == "construct":
                constructs[site.identity] = site
            elif kind in ("schedule", "schedule_undefined"):
                plan_schedule(self, site, plan, folded)
            elif kind == "clip":
                plan_clip(self, site, plan, folded)
            elif kind == "sched_step":
                plan_scheduler_step(site, plan)
            elif kind in ("step", "undefined"):
                plan_step(self, site, plan, folded)
            elif kind == "zero_grad":
                plan_zero_grad(site, plan)
            elif kind == "hyperparam":
                hyper.append(site)
        for site in hyper:          # after the steps: whether the state is inside MultiSteps is known
            plan_hyperparam(self, site, plan, folded)
        converted: list[tuple[cst.Call, StmtContext]] = []
        for ident in list(constructs) + [i for i in folded if i not in constructs]:
            site = constructs.get(ident) or self.result.construct_sites.get(ident)
            if plan_optimizer(self, ident, site, folded.get(ident), plan) and ident.kind == "torch":
                converted.append((ident.call, ident.ctx))
        for site in used:
            if site.finding.kind in ("schedule", "schedule_undefined"):
                converted.append((site.sched.call, site.sched.ctx))
                for member in site.absorbed:
                    value = getattr(member.stmt, "value", None)
                    if isinstance(value, cst.Call):
                        converted.append((value, member))
            elif site.finding.kind == "clip":
                converted.append((site.ctx.stmt.value, site.ctx))
        one_per_scope(plan, self.program)
        plan_imports(self, plan, converted)
        return plan


    def _has_hash(self, ctx: StmtContext) -> bool:
        """Can the statement hold a comment? (Looking for comments in its tree costs a walk.)"""
        return "#" in self.program.text(ctx.stmt, ctx)


def title(site: Site, target) -> str:
    """The quick fix's title (`target` words the construction's and the step's)."""
    kind = site.finding.kind
    if kind == "construct":
        t = target.construction_title(site.emission.head)
        return t if site.emission.exact else t + " (approximate)"
    if kind in ("step", "undefined"):
        return step_target(target, site).step_title(site.receiver, site.names)
    if kind in ("schedule", "schedule_undefined"):
        if site.schedule.kind == "plateau":
            return "Convert ReduceLROnPlateau to optax.contrib.reduce_on_plateau"
        return f"Fold {site.sched.name} into the optimizer's learning_rate"
    if kind == "sched_step":
        if site.schedule.kind == "plateau":
            return f"Convert {site.receiver}.step(metric) to a reduce_on_plateau update"
        return f"Remove {site.receiver}.step(): the schedule advances with every update"
    if kind == "clip":
        return f"Fold the clipping into the optimizer: {site.clip}"
    if kind == "hyperparam":
        return "Keep the learning rate in the optimizer's state (optax.inject_hyperparams)"
    return "Remove zero_grad(): JAX gradients are not accumulated"
