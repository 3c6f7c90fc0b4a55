"""One `# TODO(switcheroo): define NAME ...` per scope and name, on the first place that needs it.

Each rewrite says what it needs defined (an init line its params, a step its grads): six
constructions at module level over one module would each ask for `params`. Once a plan is
complete, a name asked for earlier in the same scope (the document's module scope counts as one,
whichever chunk or cell) is taken out of later TODO lines, and a line left with no name goes.
An earlier ask counts only where its block always runs first: the same block or one around the
later place (an `if` branch's TODO does not serve its `else`). A step's gradients are new at
every step: they are asked for once per block and `backward()` (two steps after one
`backward()`), not once per function (a second loop computes its own).
"""

from __future__ import annotations

import re

import libcst as cst

from .changes import Plan

_DEFINE = re.compile(r"^# TODO\(switcheroo\): define (?P<names>[\w.]+(?:, [\w.]+)*)(?P<rest>\s.*)?$")
_TOP = "top"        # the module's own statement list, whichever chunk holds the statement
_BACKWARD = re.compile(r"\.backward\(|\bgrad\(")    # new gradients between two steps


def one_per_scope(plan: Plan, program) -> None:
    """Drop the names a TODO line asks for that an earlier one asked for where it always runs
    first (see the module's docstring)."""
    changes = sorted(plan.changes.values(), key=lambda c: program.order(c.ctx))
    source = program.doc.source
    asked: dict[tuple, list] = {}       # (scope, name) -> (block, where its statement ends) it was asked in
    for ctx, names in _already_asked(program):
        scope, block = _where(ctx)
        end = source.offset(program.span(ctx.stmt, ctx).end)
        for name in names:
            asked.setdefault((scope, name), []).append((block, end))
    for change in changes:
        ctx = change.ctx
        scope, block = _where(ctx)
        around = {id(n) for n in ctx.path} | {block, _TOP if scope == "module" else None}
        span = program.span(ctx.stmt, ctx)
        start, end = source.offset(span.start), source.offset(span.end)

        def covered(name: str) -> bool:
            asks = asked.get((scope, name), ())
            if name in plan.per_step:       # the same gradients: no backward() since
                return any(b == block and not _BACKWARD.search(source.text, e, start) for b, e in asks)
            return any(b in around for b, _ in asks)

        def ask(name: str) -> None:
            asked.setdefault((scope, name), []).append((block, end))

        # Above the statement, in its place, after it: the order the lines are written in.
        change.before = _pruned(change.before, covered, ask)
        if change.texts is not None:
            change.texts = _pruned(change.texts, covered, ask)
        change.after = _pruned(change.after, covered, ask)


def _where(ctx) -> tuple:
    """(scope, block) of a statement, as the asks are keyed."""
    scope = "module" if ctx.scope.kind == "module" else id(ctx.scope)
    return scope, _TOP if isinstance(ctx.body, cst.Module) else id(ctx.body)


def _already_asked(program):
    """(statement, names) of the TODO lines earlier fixes wrote above their init lines (`#
    TODO(switcheroo): define params here` over `opt_state = opt.init(params)`): fixing one
    finding at a time then asks no more than fix-all does. (Comments are not in the analysis's
    statements; the init lines are, among the calls.)"""
    source = program.doc.source
    if "# TODO(switcheroo): define" not in source.text:
        return
    for site in program.calls:
        func = site.call.func
        if not (isinstance(func, cst.Attribute) and func.attr.value == "init" and program.in_primary(site.ctx)):
            continue
        line = program.span(site.ctx.stmt, site.ctx).start.line
        m = _DEFINE.match(source.line(line - 1).strip()) if line > 0 else None
        if m is not None:
            yield site.ctx, m.group("names").split(", ")


def _pruned(texts: list, covered, ask) -> list:
    out = []
    for text in texts:
        m = _DEFINE.match(text) if isinstance(text, str) else None
        if m is None:
            out.append(text)
            continue
        names = m.group("names").split(", ")
        fresh = [n for n in names if not covered(n)]
        for n in names:
            ask(n)
        if not fresh:
            continue
        if fresh == names:
            out.append(text)
            continue
        rest = m.group("rest") or ""
        hint = _HINT.match(rest)
        if hint is not None and not set(fresh) & set(hint.group("lhs").split(", ")):
            rest = " here"      # an example of how to define a name no longer asked for here
        out.append(f"# TODO(switcheroo): define {', '.join(fresh)}{rest}")
    return out


_HINT = re.compile(r"^ here \((?P<lhs>[\w., ]+?) = ")
