"""`opt.param_groups[0]["lr"] = v` (or a loop setting every group's) -> the state's
hyperparameter, `opt_state.hyperparams["learning_rate"] = v`; a read of it likewise. Over groups
that became an optax.multi_transform, each write goes to its group's state
(`opt_state.inner_states["group1"].inner_state.hyperparams[...]`), a loop unrolled group by
group (analysis/group_writes.py). The construction keeps them there (optax.inject_hyperparams:
the builder's emission injects them)."""

from __future__ import annotations

import libcst as cst

from ..analysis.findings import Site
from ..analysis.group_writes import group_of, unroll
from ..analysis.hyper_state import where as state_place
from .changes import Folded, Plan


def plan_hyperparam(p, site: Site, plan: Plan, folded: dict) -> None:
    form, state = site.hyper, site.hyper_state
    # The construction is rewritten with it, whichever fixes asked (one state, one place); a
    # receiver that may be one of several (a class chosen at run time) rewrites each of them.
    owners = [site.identity] if site.identity is not None else [i for i in site.ids if i.kind == "torch"]
    folds = [folded.setdefault(i, Folded()) for i in owners]
    inner = any(f.accumulate is not None for f in folds)   # inside optax.MultiSteps: its inner state's

    def where(key: str, group: int, write: bool = False) -> str:
        return state_place(p.target, site.receiver, site.names, state, key, group, inner, write)

    if form.kind == "read":
        text = where(form.key, group_of(form, state.groups.count))
        if form.quote != '"':       # inside an f-string quoted with "
            text = text.replace('"', form.quote)
        plan.change(site.ctx).swap = (form.read, cst.parse_expression(text))
        return
    writes = unroll(form, state.groups, lambda g, k: where(k, g))
    lines = [f"{where(w.key, w.group, write=True)} {w.op} {w.value}" for w in writes]
    if form.kind == "write":
        plan.replace(site.ctx, lines)
    else:                   # the loop over the groups: each group's writes, in torch's order
        plan.remove(site.ctx)
        plan.add_after(site.ctx, lines)
