"""A document parsed with libcst, one top-level statement (chunk) at a time.

`ParsedDocument.parse(text)` cuts the text into chunks (document/chunks.py) and parses each.
`doc.replaced(new_text)` finds the changed region, rescans from the chunk before it until the
scan meets a chunk boundary of the old text past the change, and parses only the chunks in
between whose text is new: every other chunk, with its libcst tree and whatever the analysis
cached on it, is reused as it is (libcst nodes carry no positions, so a chunk that moved is
still valid). The result always equals `ParsedDocument.parse(new_text)`.

libcst nodes have no positions. `ParsedChunk.unit_positions` gives them for one statement
unit (a simple statement line, a compound statement's header, a decorator, a clause) by
generating the code of that unit alone, placed at the logical line the scanner found for it,
with a codegen state that only counts characters (libcst's position provider also splits every
token into lines and enters a context manager per node: five times the cost).
"""

from __future__ import annotations

import ast
import bisect
import re
from dataclasses import dataclass, field
from typing import Any

import libcst as cst
from libcst._nodes.internal import CodegenState
from libcst.metadata.position_provider import PositionProvidingCodegenState

from .chunks import Chunk, scan
from .text import Pos, Source

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_PASS_SUITE = cst.SimpleStatementSuite(body=[cst.Pass()])


@dataclass(frozen=True)
class ParseError:
    message: str
    pos: Pos            # in the document


class _Ranges:
    """What PositionProvidingCodegenState records into (it expects a metadata provider)."""
    __slots__ = ("_computed",)

    def __init__(self):
        self._computed: dict = {}


class _Offsets(CodegenState):
    """Codegen that records where each node's code begins and ends, in characters."""

    def __init__(self, default_indent: str, default_newline: str, indent_tokens: list[str]):
        super().__init__(default_indent, default_newline)
        self.indent_tokens = indent_tokens
        self.length = 0
        self.starts: dict = {}
        self.ends: dict = {}

    def add_indent_tokens(self) -> None:
        for token in self.indent_tokens:
            self.length += len(token)

    def add_token(self, value: str) -> None:
        self.length += len(value)

    def before_codegen(self, node) -> None:
        self.starts[node] = self.length

    def after_codegen(self, node) -> None:
        self.ends[node] = self.length


_CODEGEN = cst.Module(body=())


def _code_length(nodes) -> int:
    return sum(len(_CODEGEN.code_for_node(n)) for n in nodes)


@dataclass(eq=False)
class ParsedChunk:
    chunk: Chunk
    module: cst.Module | None
    error: tuple[str, int, int] | None = None     # message, 0-based line and column in the chunk
    cache: dict[str, Any] = field(default_factory=dict)   # what the analysis keeps per chunk
    _line_starts: list[int] | None = None

    @property
    def text(self) -> str:
        return self.chunk.text

    @property
    def line_count(self) -> int:
        """Line breaks in the chunk (a chunk ends at a line start, except the last one)."""
        return len(self.line_starts) - 1

    @property
    def line_starts(self) -> list[int]:
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in _LINE_BREAK.finditer(self.chunk.text)]
        return self._line_starts

    def rel_pos(self, offset: int) -> tuple[int, int]:
        """(line, column) of an offset in the chunk, both 0-based."""
        starts = self.line_starts
        line = bisect.bisect_right(starts, offset) - 1
        return line, offset - starts[line]

    def unit_positions(self, unit: cst.CSTNode, index: int, elif_clause: bool = False) -> "_UnitPositions":
        """Positions (relative to the chunk) of the nodes of one statement unit whose logical
        line is the chunk's `index`-th."""
        offset = self.chunk.logical_lines[index]
        _, col = self.rel_pos(offset)
        stripped = header_only(unit)
        indent = self.chunk.text[offset - col:offset]
        state = _Offsets(self.module.default_indent, self.module.default_newline, [indent] if indent else [])
        if elif_clause:
            stripped._codegen(state, is_elif=True)
        else:
            stripped._codegen(state)
        return _UnitPositions(self, offset - col, state, unit, stripped)

    def all_positions(self) -> dict:
        """Every node's position in the chunk, from generating the whole chunk's code: the
        fallback when the scanner's logical lines and the tree disagree."""
        if "all_positions" not in self.cache:
            state = PositionProvidingCodegenState(default_indent=self.module.default_indent,
                                                  default_newline=self.module.default_newline, provider=_Ranges())
            self.module._codegen(state)
            self.cache["all_positions"] = {
                node: ((r.start.line - 1, r.start.column), (r.end.line - 1, r.end.column))
                for node, r in state.provider._computed.items()}
        return self.cache["all_positions"]


class _UnitPositions:
    """Where the nodes of one unit are: `positions[node]` is ((line, col), (line, col)) in the
    chunk, without a node's own parentheses and a small statement's `;` (as libcst's
    syntactic positions, and as Python's own would be)."""

    def __init__(self, chunk: ParsedChunk, base: int, state: _Offsets, unit, stripped):
        self.chunk, self.base, self.state, self.unit, self.stripped = chunk, base, state, unit, stripped

    def __getitem__(self, node):
        key = self.stripped if node is self.unit else node
        start, end = self.state.starts[key], self.state.ends[key]
        if key is self.stripped and isinstance(key, cst.BaseCompoundStatement):
            end = self.state.starts.get(key.body, end)      # a compound statement's header: up to its body
        # An expression's own parentheses are not part of it (`from x import (a)`'s are a statement's).
        lpar, rpar = (key.lpar, key.rpar) if isinstance(key, cst.BaseExpression) else ((), ())
        if lpar:
            start += _code_length(lpar)
        if rpar:
            end -= _code_length(rpar)
        semicolon = getattr(key, "semicolon", None)
        if isinstance(semicolon, cst.Semicolon):
            end -= _code_length([semicolon])
        return self.chunk.rel_pos(self.base + start), self.chunk.rel_pos(self.base + end)

    def get(self, node, default=None):
        try:
            return self[node]
        except KeyError:
            return default


def header_only(unit: cst.CSTNode) -> cst.CSTNode:
    """The unit without what lies on other logical lines: comment lines above it, its body,
    its decorators and its later clauses."""
    changes: dict[str, Any] = {}
    if hasattr(unit, "leading_lines"):
        changes["leading_lines"] = ()
    if isinstance(unit, cst.BaseCompoundStatement) or isinstance(
            unit, (cst.Else, cst.ExceptHandler, cst.ExceptStarHandler, cst.Finally, cst.MatchCase)):
        if not isinstance(unit.body, cst.SimpleStatementSuite):     # a one-line body is on this line
            changes["body"] = _PASS_SUITE
    if isinstance(unit, (cst.FunctionDef, cst.ClassDef)):
        changes["decorators"] = ()
        changes["lines_after_decorators"] = ()
    if isinstance(unit, (cst.If, cst.For, cst.While, cst.Try, cst.TryStar)):
        changes["orelse"] = None
    if isinstance(unit, (cst.Try, cst.TryStar)):
        changes["handlers"] = () if isinstance(unit, cst.Try) else (unit.handlers[0],)
        changes["finalbody"] = None
        if isinstance(unit, cst.TryStar):   # needs a handler: keep one (positions of the header only matter)
            changes["handlers"] = (unit.handlers[0].with_changes(body=_PASS_SUITE),)
        elif not changes["handlers"]:
            changes["finalbody"] = cst.Finally(body=_PASS_SUITE)
    if isinstance(unit, cst.Match):
        changes["cases"] = (cst.MatchCase(pattern=cst.MatchAs(), body=_PASS_SUITE),)
    return unit.with_changes(**changes) if changes else unit


_ERROR_AT = re.compile(r"^(?:parser error: )?error at (\d+):(\d+): ")


def parse_chunk(chunk: Chunk) -> ParsedChunk:
    try:
        return ParsedChunk(chunk, cst.parse_module(chunk.text))
    except cst.ParserSyntaxError as e:
        # libcst's native parser says "parser error: error at L:C: expected ..." (1-based line).
        m = _ERROR_AT.match(e.message)
        line, col = (int(m.group(1)) - 1, int(m.group(2))) if m else (e.raw_line - 1, e.raw_column)
        message = e.message[m.end():] if m else e.message
        return ParsedChunk(chunk, None, (message, max(line, 0), max(col, 0)))
    except RecursionError:
        return ParsedChunk(chunk, None, ("the code nests too deeply to parse", 0, 0))


_UNSET = object()


def python_syntax_error(text: str) -> ParseError | None:
    """Python's own complaint about `text` (None when Python parses it, or cannot say where)."""
    try:
        compile(text, "<document>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as e:
        if not e.lineno:
            return None
        return ParseError(e.msg, Pos(e.lineno - 1, max((e.offset or 1) - 1, 0)))
    except (ValueError, RecursionError, MemoryError):     # NUL bytes, absurd nesting
        return None
    return None


class ParsedDocument:
    """The chunks of one text, each parsed (or not, where it has a syntax error)."""

    def __init__(self, source: Source, chunks: list[ParsedChunk], starts: list[int]):
        self.source = source
        self.chunks = chunks
        self.starts = starts            # each chunk's offset in the text
        self._start_lines: list[int] | None = None
        self._python_error: ParseError | None | object = _UNSET

    @classmethod
    def parse(cls, text: str) -> "ParsedDocument":
        starts, chunks = [], []
        for begin, chunk in scan(text, 0):
            starts.append(begin)
            chunks.append(parse_chunk(chunk))
        return cls(Source(text), chunks, starts)

    @property
    def text(self) -> str:
        return self.source.text

    @property
    def start_lines(self) -> list[int]:
        """Each chunk's first line in the document."""
        if self._start_lines is None:
            lines, line = [], 0
            for c in self.chunks:
                lines.append(line)
                line += c.line_count
            self._start_lines = lines
        return self._start_lines

    @property
    def syntax_error(self) -> ParseError | None:
        """The first syntax error, as Python reports it (compile's message and line: `'(' was
        never closed` where it opens); libcst's own where only libcst rejects the code."""
        for i, c in enumerate(self.chunks):
            if c.error is not None:
                if self._python_error is _UNSET:
                    self._python_error = python_syntax_error(self.source.text)
                if self._python_error is not None:
                    return self._python_error
                message, line, col = c.error
                return ParseError(message, Pos(self.start_lines[i] + line, col))
        return None

    def replaced(self, text: str) -> "ParsedDocument":
        """The document for a new text, re-parsing only the chunks the change touches."""
        old = self.source.text
        if text == old:
            return self
        prefix = _common_prefix(old, text)
        suffix = _common_suffix(old, text, min(len(old), len(text)) - prefix)
        delta = len(text) - len(old)
        change_end = len(text) - suffix          # in the new text
        k = max(bisect.bisect_right(self.starts, prefix) - 1, 0)
        restart = max(k - 1, 0)
        # Chunks that begin in the changed region may reappear elsewhere (a block moved): reuse
        # them by text. Those past it are reused as the tail, so never twice.
        reusable: dict[str, list[ParsedChunk]] = {}
        for s, c in zip(self.starts[restart:], self.chunks[restart:]):
            if s < len(old) - suffix:
                reusable.setdefault(c.text, []).append(c)
        old_index = {s: i for i, s in enumerate(self.starts)}
        starts, chunks = self.starts[:restart], self.chunks[:restart]
        for begin, chunk in scan(text, self.starts[restart] if self.chunks else 0):
            if begin >= change_end and begin > 0:
                j = old_index.get(begin - delta)
                if j is not None and begin - delta >= len(old) - suffix:
                    starts.extend(s + delta for s in self.starts[j:])
                    chunks.extend(self.chunks[j:])
                    break
            starts.append(begin)
            same = reusable.get(chunk.text)
            chunks.append(same.pop(0) if same else parse_chunk(chunk))
        return ParsedDocument(Source(text), chunks, starts)


def _common_prefix(a: str, b: str) -> int:
    """Length of the common prefix, by bisection on slice comparisons (C speed)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: str, b: str, limit: int) -> int:
    lo, hi = 0, max(limit, 0)
    la, lb = len(a), len(b)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[la - mid:la - lo] == b[lb - mid:lb - lo]:
            lo = mid
        else:
            hi = mid - 1
    return lo
