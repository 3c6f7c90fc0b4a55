"""One `# TODO(switcheroo): define NAME ...` per scope and name, on the first place that needs it.

Each rewrite says what it needs defined (an init line its params, a step its grads): six
constructions at module level over one module would each ask for `params`. Once a plan is
complete, a name asked for earlier in the same scope (the document's module scope counts as one,
whichever chunk or cell) is taken out of later TODO lines, and a line left with no name goes.
A step's gradients are new at every step: they are asked for once per block (two steps after
one `backward()`), not once per function (a second loop computes its own).
"""

from __future__ import annotations

import re

import libcst as cst

from .changes import Plan

_DEFINE = re.compile(r"^# TODO\(switcheroo\): define (?P<names>[\w.]+(?:, [\w.]+)*)(?P<rest>\s.*)?$")


def one_per_scope(plan: Plan, program) -> None:
    """Drop the names a TODO line asks for that an earlier one of the same scope asked for."""
    changes = sorted(plan.changes.values(), key=lambda c: program.order(c.ctx))
    asked: dict[object, set[str]] = {}
    for change in changes:
        ctx = change.ctx
        scope = "module" if ctx.scope.kind == "module" else id(ctx.scope)
        block = (scope, "top" if isinstance(ctx.body, cst.Module) else id(ctx.body))
        seen = (asked.setdefault(scope, set()), asked.setdefault(block, set()))
        # Above the statement, in its place, after it: the order the lines are written in.
        change.before = _pruned(change.before, seen, plan.per_step)
        if change.texts is not None:
            change.texts = _pruned(change.texts, seen, plan.per_step)
        change.after = _pruned(change.after, seen, plan.per_step)


def _pruned(texts: list, seen: tuple[set[str], set[str]], per_step: set[str]) -> list:
    in_scope, in_block = seen
    out = []
    for text in texts:
        m = _DEFINE.match(text) if isinstance(text, str) else None
        if m is None:
            out.append(text)
            continue
        names = m.group("names").split(", ")
        fresh = [n for n in names if n not in (in_block if n in per_step else in_scope)]
        in_scope.update(names)
        in_block.update(names)
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
