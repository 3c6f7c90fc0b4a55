"""Property-based: an edited document's analysis equals a fresh one of the same text.

The server re-parses only the top-level statements an edit touches (document/parsed.py) and
reuses the walk of every other one. After each edit of a random sequence — characters and
lines typed and deleted, syntax broken and repaired, CRLF, non-ASCII — the diagnostics, every
quick fix, the fix-all and the hover on each finding must be exactly those of a fresh analysis.
"""

from __future__ import annotations

from hypothesis import given, note
from hypothesis import strategies as st

from fuzz_settings import fuzz
from programs import programs
from switcheroo_lsp.engine import analyze
from switcheroo_lsp.frontends.hover import hover

PIECES = ["(", ")", "[", "]", "'", '"', '"""', "#", ":", "\n", "\r\n", "\\\n", "    ", "\t", "é", "😀", "x",
          "opt", ".step()", "else:\n", "def f():\n", "@dec\n", "import torch\n", "zero_grad()", ""]


def observed(analysis) -> tuple:
    """Everything a client sees of an analysis."""
    findings = [(f.code, f.span, f.message, f.severity, f.fixable) for f in analysis.findings]
    fixes = []
    for f in analysis.findings:
        fix = analysis.fix(f.key)
        fixes.append(None if fix is None else (fix.title, [(e.span, e.new_text) for e in fix.edits]))
    hovers = [hover(analysis, f.span.start) for f in analysis.findings]
    error = analysis.syntax_error
    return (findings, fixes, [(e.span, e.new_text) for e in analysis.fix_all()], hovers,
            None if error is None else (error.message, error.pos))


edits = st.lists(st.tuples(st.floats(0, 1), st.integers(0, 8), st.sampled_from(PIECES),
                           st.booleans()), min_size=1, max_size=8)


@fuzz(60)
@given(programs(), edits)
def test_every_edit_analyses_like_a_fresh_parse(program, changes):
    text = program.text
    analysis = analyze(text)
    lines = text.splitlines(keepends=True)
    for where, length, piece, copy_line in changes:
        start = int(where * len(text))
        if copy_line and lines:              # a whole line of the program, pasted elsewhere
            piece = lines[int(where * (len(lines) - 1))]
        text = text[:start] + piece + text[start + length:]
        note(f"edit at {start}: -{length} +{piece!r}")
        analysis = analyze(text, previous=analysis.doc)
        assert observed(analysis) == observed(analyze(text))
