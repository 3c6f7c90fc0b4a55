"""A torch optimizer's construction -> the faithful Optax expression (construction.py builds its
nodes) with the schedule and clipping folded in, wrapped in the target's optimizer object where
it has one (wrapping.py), and the target's init lines after it; an optimizer already in Optax
gets the schedule and clipping patched in."""

from __future__ import annotations

import libcst as cst

from ..analysis.arguments import code
from ..analysis.findings import Site
from ..analysis.tracing import Identity, argument
from ..knowledge import catalog
from . import construction, wrapping
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
        default_indent = module.default_indent if module is not None else "    "
        row = catalog.OPTIMIZERS.get(ident.name)

        accumulate = folded.accumulate if folded else None
        column = p.program.span(ident.call, ctx).start.col

        def build(call: cst.Call, at: int | None = column, inside: int | None = None) -> cst.BaseExpression:
            """`at`: where the new expression starts on the call's line (None: on a line of its own);
            `inside`: it is on a line of its own inside the wrapper, this many columns in."""
            if accumulate is not None and at is not None:
                at = len(indent)        # on a line of its own inside MultiSteps(, shifted one step in
            named = factory_args(call) if ident.factory or row is None else named_args(row, call)
            fit = None
            if accumulate is None:      # (MultiSteps shifts it afterwards: it stays on one line)
                fit = (inside, inside) if inside is not None else (at, len(indent)) if wrapper is None else None
            tx = construction.build(call, emission, named, p.optax_name, indent, default_indent,
                                    (column, at) if at is not None else None, fit)
            return _multi_steps(tx, accumulate, p.optax_name, default_indent) if accumulate is not None else tx

        wrapper = p.target.wrapper
        if wrapper is None:
            new = build(ident.call)
        else:
            owner = p.builder.module_for(ident).node
            if owner is None:
                return False        # no module to wrap: the construction's OPX202 says so
            new = wrapping.wrap(ident.call, _params_arg(ident.call), build, wrapper, owner, column, default_indent,
                                indent)
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


def _multi_steps(tx: cst.BaseExpression, accumulate, optax_name: str, default_indent: str) -> cst.Call:
    """`optax.MultiSteps(<tx>, every_k_schedule=..., use_grad_mean=..., accumulator_dtype=...)`,
    one argument per line: N backward() per update (gradients.Accumulation)."""
    def line(last: str) -> cst.ParenthesizedWhitespace:
        return cst.ParenthesizedWhitespace(indent=True, last_line=cst.SimpleWhitespace(last))

    keywords = cst.parse_expression(f"f({accumulate.keywords()})").args
    args = [cst.Arg(wrapping.shifted(tx, default_indent))] + [
        a.with_changes(equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                             whitespace_after=cst.SimpleWhitespace(""))) for a in keywords]
    args = [a.with_changes(comma=cst.Comma(whitespace_after=line(default_indent if i < len(args) - 1 else "")))
            for i, a in enumerate(args)]
    return cst.Call(func=cst.parse_expression(f"{optax_name}.MultiSteps"), args=args,
                    whitespace_before_args=line(default_indent))


def _params_arg(call: cst.Call) -> cst.Arg | None:
    node = argument(call, 0, "params")
    return next((a for a in call.args if a.value is node), None)


def factory_args(call: cst.Call) -> dict[str, cst.Arg]:
    """A factory call's (create_optimizer_v2) or a chosen class's Args by keyword: the emission's
    references name the class's arguments, which these keywords share; positional ones are left."""
    return {arg.keyword.value: arg for arg in call.args if arg.keyword is not None and not arg.star}


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
