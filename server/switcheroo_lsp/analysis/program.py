"""The facts the tracer reads: the analysed document's chunks joined in order, and the documents
of the project it imports or is imported by (units), each with its module scope.

Only module scopes are built anew for each version: the chunks' top-level bindings are
concatenated into them. Everything nested (functions, classes, their statements) stays as each
chunk's walk left it (cached on the chunk), so joining costs a pass over the chunks, not over
the code. Findings are made for the first unit only; the others are there to be traced through.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..document.parsed import ParsedChunk, ParsedDocument
from ..document.text import Pos, Span
from .facts import CallSite, ChunkFacts, ReceiverUse, Scope, StmtContext, collect


@dataclass(eq=False)
class Unit:
    """One document of the program."""
    doc: ParsedDocument
    module_name: str | None = None       # dotted, where the workspace knows it
    path: str | None = None
    is_package: bool = False             # an `__init__.py`: its relative imports start at itself
    aliases: tuple[str, ...] = ()        # other names it is imported by (`model` for a script's sibling)
    module: Scope = field(default_factory=lambda: Scope("module", None, None))
    chunk_index: dict[int, int] = field(default_factory=dict)     # id(ParsedChunk) -> index
    index: int = 0                       # the unit's place in the program


@dataclass(eq=False)
class Program:
    units: list[Unit]
    scopes: list[Scope]
    calls: list[CallSite]                # every unit's
    receiver_uses: list[ReceiverUse]     # the first unit's (the others' are not reported)
    functions: dict
    imports: list[StmtContext]           # the first unit's
    modules: dict[str, Unit]             # module name -> unit
    _unit_of_chunk: dict[int, Unit]
    _unit_of_module: dict[int, Unit]     # id(a chunk's cst.Module) or id(a unit's module scope) -> unit
    # The project's modules the document imports, by top-level name, read or not yet (the engine
    # says; an import's section must not depend on what was loaded when a fix was asked).
    first_party: frozenset = frozenset()

    @property
    def primary(self) -> Unit:
        return self.units[0]

    @property
    def doc(self) -> ParsedDocument:
        return self.primary.doc

    @property
    def module(self) -> Scope:
        """The analysed document's module scope."""
        return self.primary.module

    def unit_of(self, ctx: StmtContext) -> Unit:
        return self._unit_of_chunk[id(ctx.chunk)]

    def unit_of_scope(self, scope: Scope) -> Unit | None:
        """The unit a module scope (a chunk's, or a unit's joined one) belongs to."""
        key = id(scope) if scope.node is None else id(scope.node)
        return self._unit_of_module.get(key)

    def module_scope(self, scope: Scope) -> Scope:
        """The joined module scope standing for a chunk's module scope."""
        unit = self.unit_of_scope(scope)
        return unit.module if unit is not None else scope

    def in_primary(self, ctx: StmtContext) -> bool:
        return self._unit_of_chunk.get(id(ctx.chunk)) is self.primary

    def order(self, ctx: StmtContext) -> tuple[int, int, int]:
        """A statement's place in the program, for "before" and "after"."""
        unit = self.unit_of(ctx)
        return unit.index, unit.chunk_index[id(ctx.chunk)], ctx.seq

    def span(self, node, ctx: StmtContext) -> Span:
        """Where a node of `ctx`'s statement unit is, in its document."""
        unit = self.unit_of(ctx)
        (sl, sc), (el, ec) = unit_positions(ctx.chunk, ctx)[node]
        base = unit.doc.start_lines[unit.chunk_index[id(ctx.chunk)]]
        return Span(Pos(base + sl, sc), Pos(base + el, ec))

    def text(self, node, ctx: StmtContext) -> str:
        """A node's source text."""
        return self.unit_of(ctx).doc.source.segment(self.span(node, ctx))


def unit_positions(chunk: ParsedChunk, ctx: StmtContext):
    """Positions of the nodes of ctx's unit, relative to the chunk (cached on the chunk)."""
    cache = chunk.cache.setdefault("units", {})
    key = id(ctx.unit)
    found = cache.get(key)
    if found is None:
        if chunk.cache["facts"].units != len(chunk.chunk.logical_lines):
            found = chunk.all_positions()     # the scanner and the tree disagree: ask libcst
        else:
            found = chunk.unit_positions(ctx.unit, ctx.unit_index, ctx.elif_clause)
        cache[key] = found
    return found


def chunk_facts(chunk: ParsedChunk) -> ChunkFacts:
    facts = chunk.cache.get("facts")
    if facts is None:
        facts = chunk.cache["facts"] = collect(chunk.module, chunk)
    return facts


def build(doc: ParsedDocument, others: list[Unit] = (), module_name: str | None = None, path: str | None = None,
          is_package: bool = False) -> Program:
    """The program of `doc` (its findings) and of the other units (traced through)."""
    units = [Unit(doc, module_name, path, is_package)] + [
        Unit(u.doc, u.module_name, u.path, u.is_package, aliases=u.aliases) for u in others if u.doc is not doc]
    scopes, calls, uses, imports = [], [], [], []
    functions: dict = {}
    unit_of_chunk, unit_of_module, modules = {}, {}, {}
    for n, unit in enumerate(units):
        unit.index = n
        unit_of_module[id(unit.module)] = unit
        scopes.append(unit.module)
        for name in (unit.module_name, *unit.aliases):
            if name:
                modules.setdefault(name, unit)
        for i, chunk in enumerate(unit.doc.chunks):
            unit.chunk_index[id(chunk)] = i
            unit_of_chunk[id(chunk)] = unit
            if chunk.module is None:
                continue
            facts = chunk_facts(chunk)
            unit_of_module[id(chunk.module)] = unit
            for name, bindings in facts.module.bindings.items():
                unit.module.bindings.setdefault(name, []).extend(bindings)
            scopes.extend(facts.scopes[1:])
            calls.extend(facts.calls)
            functions.update(facts.functions)
            if n == 0:
                uses.extend(facts.receiver_uses)
                imports.extend(facts.imports)
    return Program(units, scopes, calls, uses, imports=imports, functions=functions, modules=modules,
                   _unit_of_chunk=unit_of_chunk, _unit_of_module=unit_of_module)
