"""Source text with the line and column bookkeeping every other module relies on.

Positions in the core are (0-based line, 0-based column in code points). Lines break only at
"\\r\\n", "\\r" and "\\n" — what Python's tokenizer and the LSP both use (`str.splitlines`
also breaks at form feeds and U+2028, which would shift every later line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, order=True)
class Pos:
    line: int
    col: int


@dataclass(frozen=True, order=True)
class Span:
    start: Pos
    end: Pos

    def contains(self, pos: Pos) -> bool:
        return self.start <= pos <= self.end

    def overlaps(self, other: "Span") -> bool:
        return self.start <= other.end and other.start <= self.end


class Source:
    """Immutable text plus line offsets."""

    def __init__(self, text: str):
        self.text = text

    @cached_property
    def line_starts(self) -> list[int]:
        starts = [0]
        starts.extend(m.end() for m in _LINE_BREAK.finditer(self.text))
        return starts

    @cached_property
    def newline(self) -> str:
        m = _LINE_BREAK.search(self.text)
        return m.group(0) if m else "\n"

    @property
    def line_count(self) -> int:
        return len(self.line_starts)

    def line(self, n: int) -> str:
        """Line n without its line break."""
        starts = self.line_starts
        if n < 0 or n >= len(starts):
            return ""
        end = starts[n + 1] if n + 1 < len(starts) else len(self.text)
        return self.text[starts[n]:end].rstrip("\r\n")

    def line_end_offset(self, n: int, with_break: bool = False) -> int:
        starts = self.line_starts
        if n + 1 < len(starts):
            end = starts[n + 1]
            return end if with_break else end - len(self._break_at(end))
        return len(self.text)

    def _break_at(self, end: int) -> str:
        if self.text.endswith("\r\n", 0, end):
            return "\r\n"
        return self.text[end - 1:end]

    def offset(self, pos: Pos) -> int:
        return self.line_starts[pos.line] + pos.col

    def pos_at(self, offset: int) -> Pos:
        import bisect
        line = bisect.bisect_right(self.line_starts, offset) - 1
        return Pos(line, offset - self.line_starts[line])

    def segment(self, span: Span) -> str:
        return self.text[self.offset(span.start):self.offset(span.end)]

    def continues(self, line: int) -> bool:
        """Does physical line `line` end with a backslash continuation?"""
        return self.line(line).endswith("\\")

    def logical_start(self, line: int) -> int:
        """The first physical line of the logical line `line` belongs to (through backslashes)."""
        while line > 0 and self.continues(line - 1):
            line -= 1
        return line

    def logical_end(self, line: int) -> int:
        """The last physical line of the logical line `line` belongs to."""
        while line + 1 < self.line_count and self.continues(line):
            line += 1
        return line

    def indent_of(self, line: int) -> str:
        text = self.line(line)
        return text[:len(text) - len(text.lstrip(" \t\f"))]


def to_units(line_text: str, col: int, encoding: str) -> int:
    """Code-point column -> column in the client's units ('utf-16', 'utf-8', 'utf-32')."""
    if encoding == "utf-32" or line_text[:col].isascii():
        return col
    prefix = line_text[:col]
    if encoding == "utf-8":
        return len(prefix.encode("utf-8"))
    return len(prefix.encode("utf-16-le")) // 2


def from_units(line_text: str, units: int, encoding: str) -> int:
    """Column in the client's units -> code-point column, clamped to the line."""
    if units <= 0:
        return 0
    if encoding == "utf-32" or line_text.isascii():
        return min(units, len(line_text))
    counted = 0
    for i, ch in enumerate(line_text):
        width = len(ch.encode("utf-8")) if encoding == "utf-8" else (2 if ord(ch) > 0xFFFF else 1)
        if counted + width > units:
            return i
        counted += width
    return len(line_text)
