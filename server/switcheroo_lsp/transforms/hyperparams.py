"""`opt.param_groups[0]["lr"] = v` (or a loop setting every group's) -> the state's
hyperparameter, `opt_state.hyperparams["learning_rate"] = v`; a read of it likewise. The
construction keeps it there (optax.inject_hyperparams: the builder's emission injects it)."""

from __future__ import annotations

import libcst as cst

from ..analysis.findings import Site
from ..knowledge.hyperparams import optax_name
from .changes import Folded, Plan


def plan_hyperparam(p, site: Site, plan: Plan, folded: dict) -> None:
    form = site.hyper
    # The construction is rewritten with it, whichever fixes asked (one state, one place).
    fold = folded.setdefault(site.identity, Folded())
    inner = fold.accumulate is not None         # inside optax.MultiSteps: its inner state's

    def where(key: str) -> str:
        return p.target.hyperparam(site.receiver, site.names, optax_name(key), inner)

    if form.kind == "read":
        text = where(form.key)
        if form.quote != '"':       # inside an f-string quoted with "
            text = text.replace('"', form.quote)
        plan.change(site.ctx).swap = (form.read, cst.parse_expression(text))
        return
    lines = [f"{where(key)} {op} {value}" for key, op, value in form.writes]
    if form.kind == "write":
        plan.replace(site.ctx, lines)
    else:                   # the loop over every group: one write of the state's
        plan.remove(site.ctx)
        plan.add_after(site.ctx, lines)
