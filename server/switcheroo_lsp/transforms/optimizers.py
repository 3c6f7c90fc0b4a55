"""A torch optimizer's construction -> the faithful Optax expression (construction.py builds its
nodes) with the schedule and clipping folded in, and the target's init lines after it; an
optimizer already in Optax gets the schedule and clipping patched in."""

from __future__ import annotations

import libcst as cst

from ..analysis.arguments import code
from ..analysis.findings import Site
from ..analysis.tracing import Identity
from ..knowledge import catalog
from . import construction
from .changes import Folded, Plan


def plan_optimizer(p, ident: Identity, site: Site | None, folded: Folded | None, plan: Plan) -> bool:
    """Rewrite the optimizer's construction once, with everything folded into it."""
    extras = folded.extras() if folded else None
    ctx = ident.ctx
    if ctx is None:
        return False
    todo = []
    if ident.kind == "torch":
        if site is None or site.emission is None:
            return False
        emission = p.builder.emission(ident, extras) if extras is not None else site.emission
        if emission is None or emission.problems:
            return False
        if emission.placeholders:
            todo = [f"# TODO(switcheroo): {emission.notes[0]}"]
        module = ctx.chunk.module
        indent = p.source.indent_of(p.program.span(ctx.stmt, ctx).start.line)
        new = construction.build(ident.call, emission, named_args(catalog.OPTIMIZERS[ident.name], ident.call),
                                 p.optax_name, indent, module.default_indent if module is not None else "    ")
        p.rewritten[ident] = (emission, extras)
    elif ident.kind == "optax" and extras is not None:
        new = construction.patch_optax(ident.call, extras.learning_rate, extras.prefix, p.optax_name)
    else:
        return False
    plan.change(ctx).swap = (ident.call, new)
    plan.add_before(ctx, list(folded.todo if folded else []) + todo)
    if ident.kind == "torch" and p.builder.has_init_line(ident) and site.names is not None:
        lines = p.target.init_lines(code(ident.target), site.names)
        missing = p.builder.init_missing(ident, site.names)
        if missing:
            lines = [f"# TODO(switcheroo): define {', '.join(missing)} here (the parameter pytree to optimize)"] \
                + lines
        plan.add_after(ctx, lines)
    return True


def named_args(row, call: cst.Call) -> dict[str, cst.Arg]:
    """The call's Args by torch's argument names."""
    names = ["params"] + [n for n, _ in row.signature]
    out, index = {}, 0
    for arg in call.args:
        if arg.star:
            continue
        if arg.keyword is not None:
            out[arg.keyword.value] = arg
        else:
            if index < len(names):
                out[names[index]] = arg
            index += 1
    return out
