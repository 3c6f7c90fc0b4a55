"""The document's facts: every chunk's facts (cached on the chunk), joined in document order.

Only the module scope is built anew for each version: the chunks' top-level bindings are
concatenated into it. Everything nested (functions, classes, their statements) stays as the
chunk's walk left it, so joining costs a pass over the chunks, not over the code.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..document.parsed import ParsedChunk, ParsedDocument
from ..document.text import Span
from .facts import CallSite, ChunkFacts, ReceiverUse, Scope, StmtContext, collect


@dataclass(eq=False)
class Program:
    doc: ParsedDocument
    module: Scope                      # the document's module scope
    scopes: list[Scope]
    calls: list[CallSite]
    receiver_uses: list[ReceiverUse]
    functions: dict
    imports: list[StmtContext]
    chunk_index: dict[int, int]        # id(ParsedChunk) -> its index in the document

    def order(self, ctx: StmtContext) -> tuple[int, int]:
        """A statement's place in the document, for "before" and "after"."""
        return self.chunk_index[id(ctx.chunk)], ctx.seq

    def chunk_start_line(self, ctx: StmtContext) -> int:
        return self.doc.start_lines[self.chunk_index[id(ctx.chunk)]]

    def span(self, node, ctx: StmtContext) -> Span:
        """Where a node of `ctx`'s statement unit is, in the document."""
        from ..document.text import Pos
        chunk: ParsedChunk = ctx.chunk
        (sl, sc), (el, ec) = unit_positions(chunk, ctx)[node]
        base = self.chunk_start_line(ctx)
        return Span(Pos(base + sl, sc), Pos(base + el, ec))

    def text(self, node, ctx: StmtContext) -> str:
        """A node's source text."""
        return self.doc.source.segment(self.span(node, ctx))


def unit_positions(chunk: ParsedChunk, ctx: StmtContext) -> dict:
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


def build(doc: ParsedDocument) -> Program:
    module = Scope("module", None, None)
    scopes, calls, uses, imports = [module], [], [], []
    functions: dict = {}
    index = {}
    for i, chunk in enumerate(doc.chunks):
        index[id(chunk)] = i
        if chunk.module is None:
            continue
        facts = chunk_facts(chunk)
        for name, bindings in facts.module.bindings.items():
            module.bindings.setdefault(name, []).extend(bindings)
        scopes.extend(facts.scopes[1:])
        calls.extend(facts.calls)
        uses.extend(facts.receiver_uses)
        imports.extend(facts.imports)
        functions.update(facts.functions)
    return Program(doc, module, scopes, calls, uses, functions, imports, index)
