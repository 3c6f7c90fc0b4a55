"""The statements the gradients' analysis reads (gradients.py, region.py, accumulation.py): a
block's statements in order with their contexts, what each one does (effects.py, cached), how a
message names one (its text on one line, never its line number: a message and a TODO must stay
true while lines move), and which run before which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import libcst as cst

from ..document.parsed import header_only
from .arguments import one_line
from .effects import Effects, effects
from .facts import Scope, StmtContext


@dataclass(eq=False)
class Unit:
    """One statement of a block: a small statement (on its line) or a compound statement."""
    node: cst.CSTNode
    ctx: StmtContext
    line: cst.CSTNode | None = None         # the SimpleStatementLine of a small statement

    @property
    def whole_line(self) -> bool:
        return self.line is None or len(self.line.body) == 1


_COMMENT = re.compile(r"[ \t]+#[^\r\n]*|^[ \t]*#[^\r\n]*", re.MULTILINE)


def _joined(text: str) -> str:
    """Code over several lines on one: `f(\n    a,\n)` -> `f(a,)`... with single spaces."""
    out = " ".join(text.split())
    return out.replace("( ", "(").replace(" )", ")").replace("[ ", "[").replace(" ]", "]")


class NotDerived(Exception):
    """Why a step's gradients cannot be derived (OPX203 says it); `hint`: where the loss is
    computed, for a target that only names it."""

    def __init__(self, reason: str, hint: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


class Statements:
    """Per analysis: statements by node, blocks as lists of statements, effects (cached)."""

    def __init__(self, program):
        self.program = program
        self._ctx_index: dict[int, dict[int, StmtContext]] = {}
        self._effects: dict[tuple[int, tuple], Effects] = {}

    def ctx_of(self, node, chunk) -> StmtContext | None:
        index = self._ctx_index.get(id(chunk))
        if index is None:
            index = self._ctx_index[id(chunk)] = {}
            for ctx in chunk.cache["facts"].statements:
                if ctx.unit is ctx.stmt or id(ctx.stmt) not in index:
                    index[id(ctx.stmt)] = ctx
        return index.get(id(node))

    def units(self, block, chunk) -> list[Unit] | None:
        """The statements of a block; the document's top level spans every chunk."""
        if isinstance(block, cst.Module):
            out = []
            for c in self.program.primary.doc.chunks:
                if c.module is not None:
                    out.extend(self._units_of(c.module.body, c))
            return out
        if isinstance(block, cst.SimpleStatementSuite):
            return None          # a one-line body: no room for a loss function
        return self._units_of(block.body, chunk)

    def _units_of(self, body, chunk) -> list[Unit]:
        out = []
        for stmt in body:
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    ctx = self.ctx_of(small, chunk)
                    if ctx is not None:
                        out.append(Unit(small, ctx, stmt))
            else:
                ctx = self.ctx_of(stmt, chunk)
                if ctx is not None:
                    out.append(Unit(stmt, ctx))
        return out

    def effects(self, node, module: tuple[str, ...]) -> Effects:
        key = (id(node), module)
        found = self._effects.get(key)
        if found is None:
            found = self._effects[key] = effects(node, module)
        return found

    def text(self, unit: Unit) -> str:
        return self.program.text(unit.node, unit.ctx)

    def _brief(self, u: Unit) -> str:
        """A statement on one short line, without its comments (a compound one: its header). From
        its text: a codegen joining lines costs far more, and this runs for every step."""
        text = _COMMENT.sub("", self.text(u))
        if isinstance(u.node, cst.BaseSmallStatement):
            return short(_joined(text))
        header = _joined(text.split(":\n", 1)[0].split(":\r\n", 1)[0]).rstrip(":")    # the text is its header's
        return short(header + ":") + " ..."

    def _header(self, u: Unit) -> str:
        """`if (i + 1) % accum == 0:`: a compound statement's header on one line."""
        text = " ".join(one_line(header_only(u.node)).split())
        return text[:-len(" pass")] if text.endswith(": pass") else text

    def _preceding(self, unit: Unit) -> list[Unit]:
        """The statements that run before `unit` in the same iteration of the innermost loop (or
        call of the function): preceding ones in its block and in every enclosing block."""
        ctx = unit.ctx
        path = ctx.path
        out: list[Unit] = []
        i = len(path) - 1
        current = unit.node if isinstance(path[i], cst.SimpleStatementLine) else path[i]
        while i >= 1:
            block = path[i - 1]
            if not isinstance(block, (cst.Module, cst.IndentedBlock)):
                break
            units = self.units(block, ctx.chunk) or []
            at = next((k for k, u in enumerate(units) if u.node is current), None)
            if at is None:
                break
            out = units[:at] + out
            owner = path[i - 2] if i >= 2 else None
            if owner is None or isinstance(owner, (cst.For, cst.While, cst.FunctionDef, cst.ClassDef)):
                break
            i -= 2
            current = path[i]
        return out


def dominates(k: StmtContext, c: StmtContext) -> bool:
    """Does statement k (before c) run whenever c does? Its block holds c, or it is in with-blocks
    (which always run their body) inside a block that holds c."""
    path = k.path
    block = k.body
    i = len(path) - 2           # path[-1] is k's line (or k itself), path[-2] its block
    while True:
        if block in c.path:
            return True
        owner = path[i - 1] if i >= 1 else None
        if not isinstance(owner, cst.With) or i < 2:
            return False
        i -= 2
        block = path[i]


def walk_statements(node):
    """Every small and compound statement inside a compound statement (itself included)."""
    out = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.SimpleStatementLine) or isinstance(n, cst.SimpleStatementSuite):
            out.extend(n.body)
            continue
        out.append(n)
        for name in ("body", "orelse", "handlers", "finalbody"):
            child = getattr(n, name, None)
            if isinstance(child, (list, tuple)):
                stack.extend(child)
            elif isinstance(child, cst.BaseSuite):
                stack.extend(child.body)
            elif isinstance(child, cst.CSTNode):
                stack.append(child)
    return out


def header_reads(node) -> set[str]:
    """The names a compound statement's header reads."""
    parts = []
    for name in ("test", "iter", "items", "subject", "decorators", "bases"):
        value = getattr(node, name, None)
        if isinstance(value, cst.CSTNode):
            parts.append(value)
        elif isinstance(value, (list, tuple)):
            parts.extend(v for v in value if isinstance(v, cst.CSTNode))
    reads = set()
    for p in parts:
        e = effects(cst.Expr(p.item if isinstance(p, cst.WithItem) else getattr(p, "value", p)
                             if isinstance(p, (cst.Arg, cst.Decorator)) else p), ())
        reads |= e.reads
    return reads


def where(scope: Scope) -> str:
    node = scope.node
    if isinstance(node, cst.FunctionDef):
        return f"{node.name.value}()"
    return "this file"


def short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
