"""The command line's work on one .ipynb file: findings per cell, and the fixed file."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from ..engine import apply
from ..notebooks import ipynb
from ..notebooks.ipython import split_lines
from ..notebooks.program import Cell, FixError, analyze_cells
from .config import Settings, visible


@dataclass
class NotebookResult:
    rows: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)      # said on stderr, not failures
    new_text: str | None = None                          # the fixed file, if fixing changed it
    diff: str = ""                                       # what fixing changed, per cell


def process(path: str, text: str, settings: Settings, fixing: bool) -> NotebookResult:
    result = NotebookResult()
    try:
        nb = ipynb.parse(text)
    except ipynb.NotebookError as e:
        result.errors.append(f"{path}: {e}")
        return result
    if nb.language != "python":
        result.notes.append(f"{path}: skipped, not a Python notebook (kernel language {nb.language})")
        return result
    cells = [Cell(str(c.index), c.number, c.source) for c in nb.code_cells]
    program, analysis = analyze_cells(cells, target=settings.target)
    for problem in program.broken:
        result.errors.append(f"{path}:cell {problem.cell.number}: {problem.message}")
    if analysis.syntax_error:       # every cell parses alone, yet the program does not
        result.errors.append(f"{path}: {analysis.syntax_error.message}")
        return result
    findings = visible(analysis.findings, settings)
    for f in findings:
        slot = program.locate(f.span.start.line)
        if slot is None:        # a boundary line holds no code
            continue
        span = slot.span_in_cell(f.span)
        result.rows.append({
            "path": path, "cell": slot.cell.number,
            "line": span.start.line + 1, "column": span.start.col + 1,
            "end_line": span.end.line + 1, "end_column": span.end.col + 1,
            "code": f.code, "severity": f.severity, "message": f.message, "fixable": f.fixable,
        })
    if not fixing:
        return result
    if program.broken:
        result.errors.append(f"{path}: not fixed: a code cell does not parse")
        return result
    edits = analysis.fix_all({f.key for f in findings if f.fixable})
    if not edits:
        return result
    try:
        sources = program.new_sources(apply(program.text, edits))
    except FixError as e:
        result.errors.append(f"{path}: not fixed: {e}")
        return result
    if not sources:
        return result
    by_index = {int(key): source for key, source in sources.items()}
    try:
        result.new_text = ipynb.with_sources(nb, by_index)
    except ipynb.NotebookError as e:
        result.errors.append(f"{path}: not fixed: {e}")
        return result
    for index in sorted(by_index):
        cell = nb.cells[index]
        for line in difflib.unified_diff(_lines(cell.source), _lines(by_index[index]),
                                         fromfile=f"a/{path}:cell {cell.number}", tofile=f"b/{path}:cell {cell.number}"):
            # A cell's last line usually has no line break: say so, as diff does.
            result.diff += line if line.endswith(("\n", "\r")) else line + "\n\\ No newline at end of cell\n"
    return result


def _lines(text: str) -> list[str]:
    return [content + brk for content, brk in split_lines(text)]
