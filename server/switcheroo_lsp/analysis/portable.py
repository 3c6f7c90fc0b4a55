"""An expression read in one scope, as text that means the same where an optimizer is built:
what a clipping limit, an accumulation count or a scheduler's loop length becomes when it is
folded into the construction (`b` is the analysis's constructions.Builder: its tracer and program).
"""

from __future__ import annotations

import libcst as cst

from .arguments import one_line
from .facts import Scope, StmtContext, children, dotted


def visible_at(b, expr, scope: Scope, construction: StmtContext) -> str | None:
    """`expr` (evaluated in `scope`) as text that means the same where the optimizer is built:
    itself where it is visible there; a parameter by what the file's single call site passes
    (or its default, when no call passes it); `self.x` by what the class stored in it."""
    if isinstance(expr, (cst.Integer, cst.Float)):
        return one_line(expr)
    if (isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and scope is not None
            and scope.kind == "function" and scope.class_scope is not None and expr.value.value == scope.self_name):
        stored = scope.class_scope.attr_bindings.get(expr.attr.value, [])
        if len(stored) == 1 and stored[0].kind == "value" and stored[0].ctx is not None:
            return portable(b, stored[0].node, stored[0].ctx.scope, construction)
        return None
    parts = dotted(expr)
    if not parts:
        return None
    root = parts[0]
    bindings = b.tracer.lookup(root, scope)
    if bindings and len(bindings) == 1 and bindings[0].kind == "param" and not same_scope(scope, construction.scope):
        incoming = b.tracer.incoming.get(bindings[0], [])
        if not incoming and len(parts) == 1 and b.tracer.calls_to.get(scope):
            return default_of(bindings[0].node)   # every call site leaves it at its default
        if len(incoming) != 1 or b.tracer.calls_to.get(scope) != 1:
            return None
        passed = portable(b, incoming[0][0], incoming[0][1], construction)
        if passed is None or len(parts) == 1:
            return passed
        # `args.max_grad_norm` where `args` is what the call site passes: its attribute there.
        node = incoming[0][0]
        head = passed if isinstance(node, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)) else f"({passed})"
        return ".".join([head, *parts[1:]])
    where = b.tracer.lookup(root, construction.scope)
    if not where or where is not bindings:
        return None
    built = b.program.order(construction)
    if any(x.ctx is not None and same_scope(x.scope, construction.scope) and b.program.order(x.ctx) >= built
           for x in where):
        return None          # bound only after the optimizer is built
    return one_line(expr)


def same_scope(a: Scope, c: Scope) -> bool:
    """The same scope (every chunk's module scope is the document's)."""
    return a is c or (a is not None and c is not None and a.kind == "module" and c.kind == "module")


def portable(b, expr, scope: Scope, construction: StmtContext) -> str | None:
    """`expr` as text valid where the optimizer is built, or None."""
    if isinstance(expr, (cst.Integer, cst.Float, cst.Name, cst.Attribute)):
        return visible_at(b, expr, scope, construction)
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name) and visible_at(b, node, scope, construction) != node.value:
            return None
        if isinstance(node, (cst.Attribute, cst.Arg)):
            stack.append(node.value)       # an attribute's or a keyword's name is not a variable
            continue
        stack.extend(children(node))
    return one_line(expr)


def default_of(param: cst.Param) -> str | None:
    """A parameter's default, when it is a number."""
    if isinstance(param.default, (cst.Integer, cst.Float)):
        return one_line(param.default)
    return None
