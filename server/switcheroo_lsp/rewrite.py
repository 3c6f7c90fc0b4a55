"""Turn statement-level rewrites into minimal, line-granular text edits.

A plan says, per statement, what replaces it (a list of statement texts; empty = removed)
and what is inserted after it. Statements are rendered per body, so that fixes compose:
two removals on one `a(); b()` line, a block left empty (`pass`), a one-line body
(`if c: opt.zero_grad()`), a construction plus its `init` line. The result is a list of
edits, each covering whole lines, only the lines that change.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from .findings import TextEdit
from .source import Source, Span


@dataclass
class Plan:
    replace: dict[ast.stmt, list[str]] = field(default_factory=dict)
    insert_before: dict[ast.stmt, list[str]] = field(default_factory=dict)
    insert_after: dict[ast.stmt, list[str]] = field(default_factory=dict)
    bodies: dict[ast.stmt, list] = field(default_factory=dict)   # stmt -> the list holding it

    def set(self, stmt: ast.stmt, body: list, texts: list[str]) -> None:
        self.replace[stmt] = texts
        self.bodies[stmt] = body

    def before(self, stmt: ast.stmt, body: list, texts: list[str]) -> None:
        _add_unique(self.insert_before.setdefault(stmt, []), texts)
        self.bodies[stmt] = body

    def after(self, stmt: ast.stmt, body: list, texts: list[str]) -> None:
        _add_unique(self.insert_after.setdefault(stmt, []), texts)
        self.bodies[stmt] = body

    def __bool__(self) -> bool:
        return bool(self.replace or self.insert_after or self.insert_before)


def _add_unique(have: list[str], texts: list[str]) -> None:
    have.extend(t for t in texts if t not in have)


@dataclass
class _Replacement:
    start: int
    end: int
    text: str


def render(source: Source, plan: Plan) -> list[TextEdit]:
    """The plan as whole-line edits, sorted, non-overlapping."""
    by_body: dict[int, list] = {}
    for body in plan.bodies.values():
        by_body[id(body)] = body
    replacements: list[_Replacement] = []
    for body in by_body.values():
        replacements.extend(_render_body(source, plan, body))
    return _to_line_edits(source, replacements)


def _runs(body: list) -> list[list[ast.stmt]]:
    """Statements joined by `;` on one line form a run."""
    runs: list[list[ast.stmt]] = []
    for stmt in body:
        if runs and stmt.lineno == runs[-1][-1].end_lineno:
            runs[-1].append(stmt)
        else:
            runs.append([stmt])
    return runs


def _render_body(source: Source, plan: Plan, body: list) -> list[_Replacement]:
    texts_of: dict[ast.stmt, list[str]] = {}
    for stmt in body:
        touched = stmt in plan.replace or stmt in plan.insert_before or stmt in plan.insert_after
        if touched:
            own = plan.replace.get(stmt)
            if own is None:
                own = [source.segment(source.node_span(stmt))]
            texts_of[stmt] = plan.insert_before.get(stmt, []) + list(own) + plan.insert_after.get(stmt, [])
    if not texts_of:
        return []
    emptied = all(_is_empty(texts_of.get(s)) for s in body)
    nl = source.newline
    out = []
    for i, run in enumerate(_runs(body)):
        if not any(s in texts_of for s in run):
            continue
        new: list[str] = []
        for s in run:
            new.extend(texts_of[s] if s in texts_of else [source.segment(source.node_span(s))])
        if emptied and i == 0:
            new = [t for t in new if t.startswith("#")] + ["pass"]
        elif emptied:
            new = [t for t in new if t.startswith("#")]
        first, last = source.node_span(run[0]), source.node_span(run[-1])
        line_start = source.line_starts[first.start.line]
        prefix = source.line(first.start.line)[:first.start.col]
        tail = source.line(last.end.line)[last.end.col:]
        # Alone on its lines, and starting its logical line (not after `stmt; \`).
        own_lines = (prefix.strip() == "" and (tail.strip() == "" or tail.lstrip().startswith("#"))
                     and source.logical_start(first.start.line) == first.start.line)
        start, end = source.offset(first.start), source.offset(last.end)
        if own_lines and not new:
            # Remove the whole lines, with their trailing comment and line break.
            out.append(_Replacement(line_start, source.line_end_offset(last.end.line, with_break=True), ""))
        elif own_lines and len(run) == 1:
            code = next((i for i, t in enumerate(new) if not t.startswith("#")), None)
            if tail.strip() and code is not None:
                # A trailing comment stays with the first statement that replaces this one.
                new = new[:code] + [new[code] + tail] + new[code + 1:]
                end = source.line_end_offset(last.end.line)
            out.append(_Replacement(start, end, (nl + prefix).join(_newlines(t, nl) for t in new)))
        else:
            # Shares its line with other code: keep it on that line, comments go above it.
            comments = [t for t in new if t.startswith("#")]
            code = [t for t in new if not t.startswith("#")]
            if comments:
                # Above the logical line: a comment cannot sit inside a backslash continuation.
                top = source.logical_start(first.start.line)
                at = source.line_starts[top]
                out.append(_Replacement(at, at, "".join(source.indent_of(top) + c + nl for c in comments)))
            out.append(_Replacement(start, end, "; ".join(_newlines(t, nl) for t in code) or "pass"))
    return out


def _is_empty(texts: list[str] | None) -> bool:
    return texts is not None and all(t.startswith("#") for t in texts)


def _line_range(source: Source, r: _Replacement) -> tuple[int, int]:
    first = source.pos_at(r.start).line
    end = source.pos_at(r.end)
    if end.col == 0 and r.end > r.start and end.line > first:
        return first, end.line - 1        # a whole-line removal ends at the next line's start
    return first, end.line


def _to_line_edits(source: Source, reps: list[_Replacement]) -> list[TextEdit]:
    """Widen each replacement to whole lines and merge those that share lines."""
    reps.sort(key=lambda r: (r.start, r.end))
    groups: list[tuple[int, int, list[_Replacement]]] = []
    for r in reps:
        first, last = _line_range(source, r)
        if groups and first <= groups[-1][1]:
            g_first, g_last, members = groups[-1]
            groups[-1] = (g_first, max(g_last, last), members + [r])
        else:
            groups.append((first, last, [r]))
    edits = []
    text = source.text
    for first, last, members in groups:
        g_start = source.line_starts[first]
        g_end = source.line_end_offset(last, with_break=True)
        pieces, cursor = [], g_start
        for r in members:
            if r.start < cursor:        # overlapping replacements cannot both apply
                continue
            pieces.append(text[cursor:r.start])
            pieces.append(r.text)
            cursor = r.end
        pieces.append(text[cursor:g_end])
        edits.append(TextEdit(Span(source.pos_at(g_start), source.pos_at(g_end)), "".join(pieces)))
    return edits


def _newlines(text: str, nl: str) -> str:
    """Statement texts are built with '\\n'; write them with the file's line break."""
    return text.replace("\r\n", "\n").replace("\n", nl) if nl != "\n" else text


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


def insertion_line_stmt(tree: ast.Module) -> ast.stmt | None:
    """The statement after which new imports go: the last import of the leading import block
    (after a docstring and `from __future__` imports)."""
    last = None
    for i, stmt in enumerate(tree.body):
        if i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(
                stmt.value.value, str):
            continue
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            last = stmt
        elif isinstance(stmt, ast.Try) and all(
                isinstance(s, (ast.Import, ast.ImportFrom)) for s in stmt.body):
            last = stmt
        else:
            break
    return last


