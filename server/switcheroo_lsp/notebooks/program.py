"""A notebook's code cells as one program, and the map between the two (the only one).

The program is the masked text of each code cell that runs Python, in notebook order, each
newline-terminated, with a boundary comment line between consecutive cells:

    <cell a, masked>
    # <boundary>
    <cell b, masked>

Lines and columns inside a cell are the program's, shifted by the cell's first line: masking
keeps every line and every column of the code around it. A rewrite of the program is split
back into cells at the boundary comments (a statement never spans two cells: each cell parses
on its own), so an edit can never leak from one cell into another.

A cell that does not parse is left out of the program (its syntax error is reported), or, in
the editor, an earlier text of it that parsed stands in for it, the way the last good analysis
of a file stands in while its text does not parse.
"""

from __future__ import annotations

import ast
import bisect
import difflib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Mapping

from ..engine import Analysis, ParsedDocument, Pos, Span, analyze
from ..transforms.import_sections import place, section
from .ipython import MARK, Masked, is_continuation_placeholder, is_placeholder, mask, split_lines

BOUNDARY = f"# {MARK}_cell"
# Top-level modules of the imports a rewrite adds; they go into the first code cell with imports.
ADDED_MODULES = frozenset({"optax", "jax", "switcheroo_optax", "flax"})
_ADDED_IMPORT = re.compile(r"(?:import|from)[ \t]+([A-Za-z_]\w*)")
_LINE_SUFFIX = re.compile(r" \(line \d+\)$")


class FixError(Exception):
    """A rewrite of the program that cannot be put back into the cells."""


@dataclass(frozen=True)
class Cell:
    key: str        # how the caller knows the cell: its URI (editor) or its index (files)
    number: int     # 1-based, counting every cell of the notebook
    source: str


@dataclass(frozen=True)
class Broken:
    cell: Cell
    message: str    # "syntax error: ... (line N)", N within the cell
    pos: Pos


@dataclass
class Slot:
    """A cell's place in the program."""
    cell: Cell
    masked: Masked
    text: str                # what the program holds for it: masked, newline-terminated
    start: int = 0           # program line of its first line
    stand_in: bool = False   # an earlier source of the cell that parsed (the current one does not)
    lines: int = field(init=False)

    def __post_init__(self):
        self.lines = len(split_lines(self.text))

    @property
    def end(self) -> int:
        """The program line after its last line."""
        return self.start + self.lines

    # Columns are the same in the cell and in the program; lines are shifted by `start`.
    def line_in_cell(self, program_line: int) -> int:
        return program_line - self.start

    def line_in_program(self, cell_line: int) -> int:
        """Clamped to the cell's lines (an editor may send a position past the end)."""
        return self.start + min(max(cell_line, 0), self.lines - 1)

    def span_in_cell(self, span: Span) -> Span:
        return Span(Pos(self.line_in_cell(span.start.line), span.start.col),
                    Pos(self.line_in_cell(span.end.line), span.end.col))

    def pos_in_program(self, pos: Pos) -> Pos:
        return Pos(self.line_in_program(pos.line), pos.col)


@dataclass
class Program:
    text: str
    slots: list[Slot]
    broken: list[Broken] = field(default_factory=list)
    skipped: list[Cell] = field(default_factory=list)     # cell magics that do not run Python
    _starts: list[int] = field(default_factory=list, repr=False)

    def slot_of(self, key: str) -> Slot | None:
        return next((s for s in self.slots if s.cell.key == key), None)

    def locate(self, line: int) -> Slot | None:
        """The slot holding program line `line` (None for a boundary line)."""
        i = bisect.bisect_right(self._starts, line) - 1
        if i < 0:
            return None
        slot = self.slots[i]
        return slot if line < slot.end else None

    # -- rewrites back into cells -------------------------------------------------------------
    def new_sources(self, fixed: str) -> dict[str, str]:
        """The cells' new sources after a rewrite of the program (`fixed`), keyed like the cells,
        only those that changed. IPython lines are restored verbatim; imports the rewrite added
        go into the first code cell with imports. Raises FixError when that cannot be done."""
        pieces = self._split(fixed)
        added = _take_added_imports(self.slots, pieces)
        if added:
            _place_imports(self.slots, pieces, added)
        out: dict[str, str] = {}
        for slot, piece in zip(self.slots, pieces):
            if piece == slot.text:
                continue
            if slot.stand_in:
                raise FixError(f"cell {slot.cell.number} does not parse")
            restored = slot.masked.unmask(piece)
            if restored is None:
                raise FixError(f"the rewrite would change IPython syntax in cell {slot.cell.number}")
            if not slot.cell.source.endswith(("\n", "\r")) and restored.endswith("\n"):
                restored = restored[:-2] if restored.endswith("\r\n") else restored[:-1]
            restored = _with_breaks_of(slot.cell.source, restored)
            if restored != slot.cell.source:
                out[slot.cell.key] = restored
        return out

    def _split(self, fixed: str) -> list[str]:
        pieces, current = [], []
        for content, brk in split_lines(fixed):
            if content == BOUNDARY:
                pieces.append("".join(current))
                current = []
            else:
                current.append(content + brk)
        pieces.append("".join(current))
        if len(pieces) != len(self.slots):
            raise FixError("the rewrite moved code across cells")
        return pieces


def build(cells: list[Cell], stand_ins: Mapping[str, str] | None = None,
          exclude: Mapping[str, Broken] | None = None) -> Program:
    """The program of `cells` (code cells, in order). `stand_ins`: per cell key, an earlier source
    to use while the current one does not parse; `exclude`: cells known not to parse."""
    slots, broken, skipped = [], [], []
    for cell in cells:
        masked = mask(cell.source)
        if not masked.runs:
            skipped.append(cell)
            continue
        problem = (exclude or {}).get(cell.key) or _syntax_error(cell, masked.text)
        if problem is None:
            slots.append(Slot(cell, masked, _terminated(masked.text)))
            continue
        broken.append(problem)
        earlier = (stand_ins or {}).get(cell.key)
        if earlier is not None and (cell.key not in (exclude or {})):
            old = mask(earlier)
            if old.runs and _syntax_error(cell, old.text) is None:
                slots.append(Slot(Cell(cell.key, cell.number, earlier), old, _terminated(old.text), stand_in=True))
    pieces, line = [], 0
    for slot in slots:
        slot.start = line
        pieces.append(slot.text)
        line = slot.end + 1           # the boundary line follows
    program = Program(f"{BOUNDARY}\n".join(pieces), slots, broken, skipped)
    program._starts = [s.start for s in slots]
    return program


def analyze_cells(cells: list[Cell], stand_ins: Mapping[str, str] | None = None,
                  previous: ParsedDocument | None = None, target: str | None = None) -> tuple[Program, Analysis]:
    """Build the program and analyse it. Cells are checked with Python's parser first; should
    the core's parser still reject the program, the cell it points at is left out and the rest
    analysed again. `previous`: the parse of the program an earlier analysis had (the core
    reuses its unchanged top-level statements). `target`: what the rewrites write (optax)."""
    exclude: dict[str, Broken] = {}
    while True:
        program = build(cells, stand_ins, exclude)
        analysis = analyze(program.text, target, previous=previous)
        problem = analysis.syntax_error
        if problem is None:
            return program, analysis
        slot = program.locate(problem.pos.line)
        if slot is None or slot.cell.key in exclude:
            return program, analysis     # nothing left to blame: the caller sees syntax_error
        pos = Pos(problem.pos.line - slot.start, problem.pos.col)
        message = f"{_LINE_SUFFIX.sub('', problem.message)} (line {pos.line + 1})"
        exclude[slot.cell.key] = Broken(slot.cell, message, pos)


@lru_cache(maxsize=8192)
def _parse_error(text: str) -> tuple[str, int, int] | None:
    try:
        ast.parse(text)
    except SyntaxError as e:
        return e.msg, (e.lineno or 1) - 1, max((e.offset or 1) - 1, 0)
    except (ValueError, RecursionError, MemoryError) as e:     # NUL bytes, absurd nesting
        return str(e) or type(e).__name__, 0, 0
    return None


def _syntax_error(cell: Cell, text: str) -> Broken | None:
    found = _parse_error(text)
    if found is None:
        return None
    msg, line, col = found
    return Broken(cell, f"syntax error: {msg} (line {line + 1})", Pos(line, col))


def _terminated(text: str) -> str:
    return text if text.endswith(("\n", "\r")) else text + "\n"


def _with_breaks_of(original: str, new: str) -> str:
    """`new` with the line breaks of `original` where `original` uses one kind only: the core
    writes new lines with the program's first line break, which may be another cell's."""
    kinds = {brk for _, brk in split_lines(original) if brk}
    if len(kinds) != 1:
        return new
    [kind] = kinds
    return "".join(c + (kind if b else "") for c, b in split_lines(new))


def _newline_of(text: str) -> str:
    lines = split_lines(text)
    return next((brk for _, brk in lines if brk), "\n")


def _take_added_imports(slots: list[Slot], pieces: list[str]) -> list[str]:
    """Remove from `pieces` the import lines the rewrite added (of ADDED_MODULES); return them
    in order, once each."""
    added: list[str] = []
    for i, (slot, piece) in enumerate(zip(slots, pieces)):
        if piece == slot.text:
            continue
        old = [c for c, _ in split_lines(slot.text)]
        new = split_lines(piece)
        drop: set[int] = set()
        matcher = difflib.SequenceMatcher(None, old, [c for c, _ in new], autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag in ("insert", "replace"):
                for j in range(j1, j2):
                    m = _ADDED_IMPORT.match(new[j][0])
                    if m and m.group(1) in ADDED_MODULES and new[j][0] not in old[i1:i2]:
                        drop.add(j)
                        if new[j][0] not in added:
                            added.append(new[j][0])
        if drop:
            pieces[i] = "".join(c + b for j, (c, b) in enumerate(new) if j not in drop)
    return added


def _place_imports(slots: list[Slot], pieces: list[str], imports: list[str]) -> None:
    """Insert `imports` into the first cell with a top-level import (else the first cell), after
    its leading imports (magics and a docstring may sit among them)."""
    trees = {}
    for i, piece in enumerate(pieces):
        try:
            trees[i] = ast.parse(piece)
        except SyntaxError:
            continue
        if any(isinstance(s, (ast.Import, ast.ImportFrom)) for s in trees[i].body):
            target = i
            break
    else:
        target = 0
    piece = pieces[target]
    lines = split_lines(piece)
    at = _after_leading_imports(trees.get(target), lines)
    nl = _newline_of(piece)
    pieces[target] = "".join(c + b for c, b in lines[:at]) + "".join(f"{imp}{nl}" for imp in imports) + \
        "".join(c + b for c, b in lines[at:])


def _after_leading_imports(tree: ast.Module | None, lines: list[tuple[str, str]]) -> int:
    """The line index where the imports go in the cell: with its leading imports' third-party
    section (import_sections.py), or after its leading magics and docstring when it starts
    with no import."""
    if tree is None:
        return 0
    after = 0
    imports: list[tuple[ast.stmt, str]] = []
    for i, stmt in enumerate(tree.body):
        first = lines[stmt.lineno - 1][0] if stmt.lineno - 1 < len(lines) else ""
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            imports.append((stmt, _section(stmt)))
        elif isinstance(stmt, ast.Try) and stmt.body and all(isinstance(s, (ast.Import, ast.ImportFrom))
                                                              for s in stmt.body):
            imports.append((stmt, _section(stmt.body[0])))
        elif is_placeholder(first) or (i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                                       and isinstance(stmt.value.value, str)):
            if imports:
                continue
            after = stmt.end_lineno
            # A masked magic's backslash continuation lines belong to it.
            while after < len(lines) and is_continuation_placeholder(lines[after][0]):
                after += 1
        else:
            break
    if not imports:
        return after
    at, where = place([s for _, s in imports])
    stmt = imports[at][0]
    return stmt.end_lineno if where == "after" else stmt.lineno - 1


def _section(stmt: ast.stmt) -> str:
    if isinstance(stmt, ast.ImportFrom):
        return section(stmt.module, stmt.level)
    return section(stmt.names[0].name)
