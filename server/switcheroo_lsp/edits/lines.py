"""Minimal text edits: each changed run of lines between a chunk's old and new code, never the
whole file (an editor then keeps its cursor, folds and marks everywhere else)."""

from __future__ import annotations

import difflib
import re

from ..analysis.findings import TextEdit
from ..document.text import Source, Span

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def _lines(text: str) -> list[str]:
    """Lines with their breaks; only \\r\\n, \\r and \\n break them (as in the LSP)."""
    return _LINE.findall(text)


def chunk_edits(source: Source, start: int, old: str, new: str) -> list[TextEdit]:
    """Edits turning `old` (the text at offset `start` of the document) into `new`."""
    a, b = _lines(old), _lines(new)
    offsets = [0]
    for line in a:
        offsets.append(offsets[-1] + len(line))
    edits = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        span = Span(source.pos_at(start + offsets[i1]), source.pos_at(start + offsets[i2]))
        edits.append(TextEdit(span, "".join(b[j1:j2])))
    return edits


def apply(text: str, edits: list[TextEdit]) -> str:
    """Apply edits (core positions) to text; used by the CLI and tests."""
    source = Source(text)
    out, cursor = [], 0
    for e in sorted(edits, key=lambda e: (e.span.start, e.span.end)):
        start, end = source.offset(e.span.start), source.offset(e.span.end)
        out.append(text[cursor:start])
        out.append(e.new_text)
        cursor = end
    out.append(text[cursor:])
    return "".join(out)
