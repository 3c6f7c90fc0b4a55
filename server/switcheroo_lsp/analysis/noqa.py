"""`# noqa` and `# noqa: OPX101,OPX102`: which findings a comment suppresses, and the comment
the "Ignore OPX... on this line" action writes."""

from __future__ import annotations

import bisect
import re

from ..document.chunks import comments
from ..document.parsed import ParsedDocument

NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*))?", re.IGNORECASE)


def comments_on(doc: ParsedDocument, lines: set[int]) -> dict[int, str]:
    """The comment on each of `lines` (0-based; a `# noqa` inside a string does not count)."""
    out = {}
    starts = doc.start_lines
    for line in lines:
        i = bisect.bisect_right(starts, line) - 1
        if i < 0:
            continue
        chunk = doc.chunks[i]
        by_line = chunk.cache.get("comments")
        if by_line is None:
            by_line = chunk.cache["comments"] = {chunk.rel_pos(o)[0]: c for o, c in comments(chunk.text)}
        comment = by_line.get(line - starts[i])
        if comment is not None:
            out[line] = comment
    return out


def suppresses(comment: str | None, code: str) -> bool:
    if not comment:
        return False
    m = NOQA.search(comment)
    if not m:
        return False
    codes = m.group("codes")
    if not codes:
        return True
    return code.upper() in {c.strip().upper() for c in codes.split(",")}


def drop_suppressed(result) -> None:
    """Remove the findings a `# noqa` suppresses; remember the torch optimizers it keeps."""
    lines = {line for f in result.findings for line in f.noqa_lines}
    flagged = {line for line in lines if "noqa" in result.doc.source.line(line).lower()}
    if not flagged:
        return
    found = comments_on(result.doc, flagged)
    kept, kept_torch = [], set()
    for f in result.findings:
        if any(suppresses(found.get(line), f.code) for line in f.noqa_lines):
            if f.kind == "construct":
                kept_torch.add(result.sites[f.key].identity)
            continue
        kept.append(f)
    result.kept = frozenset(kept_torch)
    # Keys index the findings; re-key after suppression.
    sites = {}
    for i, f in enumerate(kept):
        sites[i] = result.sites[f.key]
        f.key = i
    result.findings, result.sites = kept, sites
