"""What a client believes, written from the LSP spec and independently of the server:
line splitting, position units, incremental edits with the spec's clamping, and the
diagnostics a fresh `analyze()` implies for a text."""

from __future__ import annotations

import bisect
import re
from functools import lru_cache

from switcheroo_lsp.engine import analyze
from switcheroo_lsp.frontends.config import Settings, visible

BREAK = re.compile(r"\r\n|\r|\n")       # the only line ends the LSP knows
SEVERITY = {"error": 1, "warning": 2, "information": 3, "hint": 4}


@lru_cache(maxsize=16)
def _index(text: str) -> tuple[list[str], list[int]]:
    return BREAK.split(text), [0] + [m.end() for m in BREAK.finditer(text)]


def lines_of(text: str) -> list[str]:
    return _index(text)[0]


def line_starts(text: str) -> list[int]:
    return _index(text)[1]


def units(s: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(s.encode("utf-8"))
    if encoding == "utf-32":
        return len(s)
    return len(s.encode("utf-16-le")) // 2


def offset(text: str, line: int, character: int, encoding: str) -> int:
    """A position -> an index into text, clamped as the spec says: a character past the end
    of its line means the end of the line (before its line break); a line past the last one
    means the end of the document. A position inside a character (half a surrogate pair, part
    of a UTF-8 sequence) rounds down to the character's start."""
    starts = line_starts(text)
    if line >= len(starts):
        return len(text)
    content = lines_of(text)[line]
    counted = 0
    for i, ch in enumerate(content):
        width = units(ch, encoding)
        if counted + width > character:
            return starts[line] + i
        counted += width
    return starts[line] + len(content)


def position(text: str, index: int, encoding: str) -> tuple[int, int]:
    starts = line_starts(text)
    line = bisect.bisect_right(starts, index) - 1
    return line, units(text[starts[line]:index], encoding)


def apply_change(text: str, change: dict, encoding: str) -> str:
    """One TextDocumentContentChangeEvent, as the spec defines it."""
    if "range" not in change:
        return change["text"]
    r = change["range"]
    start = offset(text, r["start"]["line"], r["start"]["character"], encoding)
    end = offset(text, r["end"]["line"], r["end"]["character"], encoding)
    if end < start:
        start, end = end, start
    return text[:start] + change["text"] + text[end:]


def apply_text_edits(text: str, edits: list[dict], encoding: str) -> str:
    """A server's TextEdits: strict (a server must send in-range, non-overlapping edits)."""
    spans = []
    starts = line_starts(text)
    for e in edits:
        r = e["range"]
        for p in (r["start"], r["end"]):
            assert 0 <= p["line"] < len(starts) or (p["line"] == len(starts) and p["character"] == 0), \
                f"edit position {p} past the end of a {len(starts)}-line document"
            if p["line"] < len(starts):
                assert p["character"] <= units(lines_of(text)[p["line"]], encoding), \
                    f"edit position {p} past the end of its line"
        s = offset(text, r["start"]["line"], r["start"]["character"], encoding)
        t = offset(text, r["end"]["line"], r["end"]["character"], encoding)
        assert s <= t, f"reversed edit range {r}"
        spans.append((s, t, e["newText"]))
    spans.sort(key=lambda x: (x[0], x[1]))
    for (_, e1, _), (s2, _, _) in zip(spans, spans[1:]):
        assert e1 <= s2, f"overlapping edits {spans}"
    for s, t, new in reversed(spans):
        text = text[:s] + new + text[t:]
    return text


def expected_diagnostics(text: str, encoding: str, settings: Settings | None = None) -> list[tuple]:
    """(code, range, severity, message) of every finding of a fresh analysis, sorted."""
    analysis = analyze(text)
    if analysis.syntax_error is not None:
        return None
    return diagnostics_of_analysis(text, analysis, encoding, settings)


def diagnostics_of_analysis(text, analysis, encoding, settings=None) -> list[tuple]:
    lines = lines_of(text)
    out = []
    for f in visible(analysis.findings, settings or Settings()):
        s, e = f.span.start, f.span.end
        rng = ((s.line, units(lines[s.line][:s.col], encoding)), (e.line, units(lines[e.line][:e.col], encoding)))
        out.append((f.code, rng, SEVERITY[f.severity], f.message))
    return sorted(out)


def summarize(diagnostics: list[dict]) -> list[tuple]:
    """A server's diagnostics in the same shape."""
    out = []
    for d in diagnostics:
        r = d["range"]
        out.append((d["code"], ((r["start"]["line"], r["start"]["character"]), (r["end"]["line"], r["end"]["character"])),
                    d.get("severity"), d["message"]))
    return sorted(out)
