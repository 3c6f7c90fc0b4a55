"""Every occurrence of a name or an attribute in a chunk, and the expression around each: what
the closed-world check (reach.py) follows an optimizer through.

Built lazily, only for chunks whose text mentions a name being followed, and cached on the
chunk like its facts (an edit rebuilds it only for the chunks it re-parsed). Each statement's
own expressions are walked (a compound statement's header, not its body: the body's
statements are statements of their own), recording every node's parent, so that a use can be
read outward from the name: `opt` -> `opt.step` -> `opt.step()` -> the statement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from .facts import StmtContext, children


@dataclass(eq=False)
class Refs:
    names: dict[str, list[tuple[cst.Name, StmtContext]]] = field(default_factory=dict)
    attrs: dict[str, list[tuple[cst.Attribute, StmtContext]]] = field(default_factory=dict)
    parent: dict[int, cst.CSTNode] = field(default_factory=dict)     # id(node) -> its parent


def refs(chunk) -> Refs:
    """The chunk's occurrences (computed once per parse of the chunk)."""
    found = chunk.cache.get("refs")
    if found is None:
        found = chunk.cache["refs"] = _collect(chunk.cache["facts"].statements)
    return found


def _roots(ctx: StmtContext):
    """The expressions a statement owns (a compound statement: its header's)."""
    stmt, unit = ctx.stmt, ctx.unit
    if isinstance(unit, cst.Decorator):
        return [unit.decorator]
    if ctx.line is not None:
        return [] if isinstance(stmt, (cst.Import, cst.ImportFrom, cst.Global, cst.Nonlocal)) else [stmt]
    if isinstance(stmt, cst.FunctionDef):
        p = stmt.params
        params = [*p.posonly_params, *p.params, *p.kwonly_params,
                  *(x for x in (p.star_arg, p.star_kwarg) if isinstance(x, cst.Param))]
        out = [x for q in params for x in (q.default, q.annotation) if x is not None]
        return out + ([stmt.returns] if stmt.returns is not None else [])
    if isinstance(stmt, cst.ClassDef):
        return [a.value for a in (*stmt.bases, *stmt.keywords)]
    if isinstance(stmt, (cst.If, cst.While)):
        return [stmt.test]
    if isinstance(stmt, cst.For):
        return [stmt.target, stmt.iter]
    if isinstance(stmt, cst.With):
        return list(stmt.items)
    if isinstance(stmt, cst.ExceptHandler):
        return [x for x in (stmt.type, stmt.name) if x is not None]
    if isinstance(stmt, cst.Match):
        return [stmt.subject]
    if isinstance(stmt, cst.MatchCase):
        return [x for x in (stmt.pattern, stmt.guard) if x is not None]
    return []


def _collect(statements: list[StmtContext]) -> Refs:
    out = Refs()
    names, attrs, parent = out.names, out.attrs, out.parent
    for ctx in statements:
        for root in _roots(ctx):
            if root is not ctx.stmt:
                parent[id(root)] = ctx.stmt
            stack = [root]
            while stack:
                node = stack.pop()
                t = type(node)
                if t is cst.Name:
                    names.setdefault(node.value, []).append((node, ctx))
                    continue
                if t is cst.Attribute:
                    attrs.setdefault(node.attr.value, []).append((node, ctx))
                    kids = (node.value,)
                elif t is cst.Arg:
                    kids = (node.value,)               # not the keyword's name
                elif t is cst.Param:
                    kids = tuple(x for x in (node.default, node.annotation) if x is not None)
                elif t is cst.Lambda:
                    p = node.params
                    kids = tuple(q.default for q in (*p.posonly_params, *p.params, *p.kwonly_params)
                                 if q.default is not None) + (node.body,)
                elif t in (cst.Import, cst.ImportFrom, cst.Global, cst.Nonlocal):
                    continue
                else:
                    kids = tuple(children(node))
                for kid in kids:
                    parent[id(kid)] = node
                    stack.append(kid)
    return out


def is_store(node: cst.CSTNode, parent) -> bool:
    """Is `node` (a Name or an Attribute) written rather than read (`x = ...`, `for x in`,
    `self.x, y = ...`, `with ... as x`, `del x`)? `parent(node)` gives a node's parent."""
    child, up = node, parent(node)
    while isinstance(up, (cst.Tuple, cst.List, cst.Element, cst.StarredElement)):
        child, up = up, parent(up)
    if isinstance(up, (cst.AssignTarget, cst.AsName)):
        return True
    if isinstance(up, (cst.For, cst.CompFor)):
        return up.target is child
    if isinstance(up, (cst.AnnAssign, cst.NamedExpr)):
        return up.target is child
    return isinstance(up, cst.Del)
