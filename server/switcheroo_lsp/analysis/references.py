"""Where a name or an attribute occurs in a chunk, and the expressions around each occurrence:
what the closed-world check (reach.py) follows an optimizer through.

Only statements whose text mentions the name are walked (the scanner's logical lines give each
statement's text without generating code), and what is found is cached on the chunk like its
facts, so an edit walks again only the chunks it re-parsed. A walked statement records every
node's parent, so that a use can be read outward from the name: `opt` -> `opt.step` ->
`opt.step()` -> the statement.
"""

from __future__ import annotations

import libcst as cst

from .facts import StmtContext, children


class Refs:
    """One chunk's occurrences, filled in as names are asked for."""

    def __init__(self, chunk):
        self.chunk = chunk
        self.statements: list[StmtContext] = chunk.cache["facts"].statements
        self.parent: dict[int, cst.CSTNode] = {}       # id(node) -> its parent, for walked statements
        self._walked: dict[int, tuple[list, list]] = {}   # id(ctx) -> (its Names, its Attributes)
        self._found: dict[tuple[str, str], list] = {}
        self._stores: dict[int, bool] = {}
        units = chunk.chunk.logical_lines
        text = chunk.text
        self._unit_text = None
        if chunk.cache["facts"].units == len(units):      # the scanner and the tree agree
            ends = list(units[1:]) + [len(text)]
            self._unit_text = [text[a:b] for a, b in zip(units, ends)]

    def names(self, name: str) -> list[tuple[cst.Name, StmtContext]]:
        return self._occurrences("name", name)

    def attrs(self, attr: str) -> list[tuple[cst.Attribute, StmtContext]]:
        return self._occurrences("attr", attr)

    def _occurrences(self, kind: str, name: str) -> list:
        key = (kind, name)
        found = self._found.get(key)
        if found is None:
            found = []
            for ctx in self.statements:
                if self._unit_text is not None and name not in self._unit_text[ctx.unit_index]:
                    continue
                names, attrs = self.walk(ctx)
                if kind == "name":
                    found.extend((n, ctx) for n in names if n.value == name)
                else:
                    found.extend((a, ctx) for a in attrs if a.attr.value == name)
            self._found[key] = found
        return found

    def walk(self, ctx: StmtContext) -> tuple[list, list]:
        """The Names and Attributes of a statement's own expressions, parents recorded."""
        done = self._walked.get(id(ctx))
        if done is not None:
            return done
        names, attrs = [], []
        parent = self.parent
        for root in _roots(ctx):
            if root is not ctx.stmt:
                parent[id(root)] = ctx.stmt
            stack = [root]
            while stack:
                node = stack.pop()
                t = type(node)
                if t is cst.Name:
                    names.append(node)
                    continue
                if t is cst.Attribute:
                    attrs.append(node)
                    kids = (node.value,)
                elif t is cst.Arg:
                    kids = (node.value,)               # not the keyword's name
                elif t is cst.Param:
                    kids = tuple(x for x in (node.default, node.annotation) if x is not None)
                elif t is cst.Lambda:
                    p = node.params
                    kids = tuple(q.default for q in (*p.posonly_params, *p.params, *p.kwonly_params)
                                 if q.default is not None) + (node.body,)
                else:
                    kids = tuple(children(node))
                for kid in kids:
                    parent[id(kid)] = node
                    stack.append(kid)
        self._walked[id(ctx)] = done = (names, attrs)
        return done

    def parent_of(self, node, ctx: StmtContext):
        if node is ctx.stmt:
            return None
        self.walk(ctx)
        return self.parent.get(id(node))

    def is_store(self, node, ctx: StmtContext) -> bool:
        """Is `node` (a Name or an Attribute) written rather than read (`x = ...`, `for x in`,
        `self.x, y = ...`, `with ... as x`, `del x`)?"""
        known = self._stores.get(id(node))
        if known is None:
            child, up = node, self.parent_of(node, ctx)
            while isinstance(up, (cst.Tuple, cst.List, cst.Element, cst.StarredElement)):
                child, up = up, self.parent_of(up, ctx)
            if isinstance(up, (cst.AssignTarget, cst.AsName, cst.Del)):
                known = True
            elif isinstance(up, (cst.For, cst.CompFor, cst.AnnAssign, cst.NamedExpr)):
                known = up.target is child
            else:
                known = False
            self._stores[id(node)] = known
        return known


def refs(chunk) -> Refs:
    """The chunk's occurrences (one Refs per parse of the chunk)."""
    found = chunk.cache.get("refs")
    if found is None:
        found = chunk.cache["refs"] = Refs(chunk)
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
